"""What every API endpoint shares: one error shape, authentication, pagination, throttling.

Nothing here may import DRF views: the settings load these classes while DRF itself imports.
The schema and the base viewset live in `tracker.api_views`.
"""

import base64
import datetime as dt
import decimal
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import django_filters
from django import forms
from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.signals import setting_changed
from django.db import connections
from django.db.models import DateTimeField, Expression, Q, Value
from django.db.models.expressions import RawSQL
from django.dispatch import receiver
from django.http import Http404, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django_filters.filterset import filterset_factory
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from redis.exceptions import RedisError
from rest_framework import ISO_8601, exceptions, filters, parsers, renderers, serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.relations import PKOnlyObject
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.utils.urls import remove_query_param, replace_query_param

from tracker.db import STATEMENT_TIMEOUT_MESSAGE, statement_timeout_caught
from tracker.exceptions import DomainError, ErrorCode, TooManyRequests, TransitionRefused, error_body
from tracker.security import client_address

logger = logging.getLogger(__name__)

# --- Errors -------------------------------------------------------------------------------------


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested error detail into {"field": [...], "rows.3.amount": [...]}."""
    errors: dict[str, list[str]] = {}
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            name = api_settings.NON_FIELD_ERRORS_KEY if key == "non_field_errors" else str(key)
            errors.update(_flatten(value, f"{prefix}.{name}" if prefix else name))
    elif isinstance(detail, list) and any(isinstance(item, Mapping | list) for item in detail):
        for index, item in enumerate(detail):
            if item:
                errors.update(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
    else:
        items = detail if isinstance(detail, list) else [detail]
        errors[prefix or api_settings.NON_FIELD_ERRORS_KEY] = [str(item) for item in items]
    return errors


def _first(errors: Mapping[str, list[str]]) -> str:
    field, messages = next(iter(errors.items()))
    return messages[0] if field == api_settings.NON_FIELD_ERRORS_KEY else f"{field}: {messages[0]}"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Answer every error with {"detail", "code", "errors": {field: [messages]}} (+ "missing" for gates)."""
    if isinstance(exc, DomainError):
        body = {**error_body(exc.message, exc.code, exc.errors), **exc.extra}
        if isinstance(exc, TransitionRefused):
            body["missing"] = exc.missing
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else {}
        return Response(body, status=exc.status_code, headers=headers)
    if isinstance(exc, DjangoValidationError):
        errors = (
            {k: [str(m) for m in v] for k, v in exc.message_dict.items()}
            if hasattr(exc, "error_dict")
            else {api_settings.NON_FIELD_ERRORS_KEY: [str(m) for m in exc.messages]}
        )
        exc = exceptions.ValidationError(errors)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif statement_timeout_caught(exc, path=context["request"].path):
        return Response(error_body(STATEMENT_TIMEOUT_MESSAGE, "statement_timeout"), status=503)
    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: let Django log it and answer 500
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(math.ceil(exc.wait))
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        body = error_body(_first(errors) if errors else "Invalid input.", "invalid", errors)
    else:
        codes = exc.get_codes()
        body = error_body(str(exc.detail), codes if isinstance(codes, str) else "error")
    return Response(body, status=exc.status_code, headers=headers)


class GateSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="The gate's code (projects.gates).")
    label = serializers.CharField()
    overridable = serializers.BooleanField()


ERRORS_HELP = (
    "Messages per field: a body field (`amount`), a query parameter (`ordering`, `page_size`), a field of a bulk "
    "row (`entries.<index>.<field>`, e.g. `entries.3.amount`), or `non_field_errors`; empty when no field is to blame."
)


class ErrorSerializer(serializers.Serializer):
    """The one error shape of the API."""

    detail = serializers.CharField(help_text="A sentence saying what went wrong.")
    code = serializers.ChoiceField(choices=ErrorCode.choices, help_text="A stable machine-readable code.")
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), help_text=ERRORS_HELP)


def _error_serializer(name: str, doc: str, codes: list[ErrorCode], base: type = ErrorSerializer, **fields: Any) -> type:
    """An error component whose `code` lists only the codes its status carries (a closed enum per status)."""
    # Annotated on a class of its own: DRF copies field instances by their arguments, losing an annotation.
    field_class = extend_schema_field({"type": "string", "enum": [str(c) for c in codes]})(
        type(f"{name}Code", (serializers.CharField,), {})
    )
    code = field_class(help_text="; ".join(f"`{c}`: {c.label}" for c in codes))
    return type(f"{name}Serializer", (base,), {"__doc__": doc, "__module__": __name__, "code": code, **fields})


@dataclass(frozen=True)
class ErrorResponse:
    """How the schema documents one error status: its body's component, a description and an example."""

    serializer: type[serializers.Serializer]
    description: str
    example: dict[str, Any]


E = ErrorCode
ValidationErrorSerializer = _error_serializer(
    "ValidationError", "A 400: what is wrong, per field.", [E.INVALID, E.PARSE_ERROR, E.BAD_REQUEST]
)
ConflictSerializer = _error_serializer(
    "Conflict",
    "A 409: the request clashes with what is stored (slug, external id, price date, a price in use, the last admin).",
    [E.CONFLICT, E.TOO_MANY_PENDING_REPORTS, E.EXTERNAL_ID_CONFLICT, E.IDEMPOTENCY_KEY_IN_USE],
)
TransitionErrorSerializer = _error_serializer(
    "TransitionError",
    "A 409 of a stage move: every unmet gate is in `missing`.",
    [E.TRANSITION_REFUSED],
    missing=GateSerializer(many=True, help_text="Every unmet stage gate."),
)
QueueUnavailableSerializer = _error_serializer(
    "QueueUnavailable",
    "A 503 of a report request: the report is saved pending (poll it by `report`) and is built once the queue is back.",
    [E.QUEUE_UNAVAILABLE, E.STATEMENT_TIMEOUT],
    report=serializers.IntegerField(
        required=False, help_text="With queue_unavailable: the saved report's id, to follow at /api/v1/reports/{id}/."
    ),
)
# A 405 (a method the path does not take) belongs to no operation: OpenAPI has nowhere to list it.
ERROR_RESPONSES: dict[int, ErrorResponse] = {
    400: ErrorResponse(
        ValidationErrorSerializer,
        "Invalid body, filter or query string (an unknown parameter too).",
        error_body("amount: Ensure this value is greater than or equal to 0.", E.INVALID, {"amount": ["…"]}),
    ),
    401: ErrorResponse(
        _error_serializer(
            "AuthenticationError", "A 401.", [E.NOT_AUTHENTICATED, E.AUTHENTICATION_FAILED, E.TOKEN_EXPIRED]
        ),
        "No valid credentials: send `Authorization: Bearer <token>`.",
        error_body("Authentication credentials were not provided.", E.NOT_AUTHENTICATED),
    ),
    403: ErrorResponse(
        _error_serializer("ForbiddenError", "A 403.", [E.PERMISSION_DENIED]),
        "The caller's role or token scope does not allow it.",
        error_body("This needs the manager role in Acme.", E.PERMISSION_DENIED),
    ),
    404: ErrorResponse(
        _error_serializer("NotFoundError", "A 404.", [E.NOT_FOUND]),
        "Unknown, or another organization's (the same answer, on purpose), or a page past the last.",
        error_body("Not found.", E.NOT_FOUND),
    ),
    406: ErrorResponse(
        _error_serializer("NotAcceptableError", "A 406.", [E.NOT_ACCEPTABLE]),
        "The Accept header names no type this endpoint answers (it answers application/json).",
        error_body("Could not satisfy the request Accept header.", E.NOT_ACCEPTABLE),
    ),
    409: ErrorResponse(
        ConflictSerializer,
        "Clashes with what is stored; nothing was written.",
        error_body("A project with this slug already exists.", E.CONFLICT, {"slug": ["Already taken."]}),
    ),
    413: ErrorResponse(
        _error_serializer("RequestTooLargeError", "A 413.", [E.REQUEST_TOO_LARGE]),
        "The body is over MAX_REQUEST_BODY_BYTES (20 MiB by default); nothing was read.",
        error_body("Request body too large: 30000000 bytes, the limit is 20971520 bytes.", E.REQUEST_TOO_LARGE),
    ),
    415: ErrorResponse(
        _error_serializer("UnsupportedMediaTypeError", "A 415.", [E.UNSUPPORTED_MEDIA_TYPE]),
        "The body is not application/json.",
        error_body('Unsupported media type "text/plain" in request.', E.UNSUPPORTED_MEDIA_TYPE),
    ),
    422: ErrorResponse(
        _error_serializer("UnprocessableError", "A 422.", [E.IDEMPOTENCY_KEY_REUSED]),
        "The Idempotency-Key was used with another request body; nothing was written.",
        error_body("This Idempotency-Key was used with another request body.", E.IDEMPOTENCY_KEY_REUSED),
    ),
    429: ErrorResponse(
        _error_serializer("ThrottledError", "A 429.", [E.THROTTLED]),
        "A rate limit: retry after `Retry-After` seconds.",
        error_body("Request was throttled. Expected available in 12 seconds.", E.THROTTLED),
    ),
    503: ErrorResponse(
        _error_serializer("UnavailableError", "A 503.", [E.STATEMENT_TIMEOUT]),
        "The request took too long in the database; nothing was written. Retry, or narrow the filters.",
        error_body(STATEMENT_TIMEOUT_MESSAGE, E.STATEMENT_TIMEOUT),
    ),
}
# Other examples of a status, by the component that carries them.
ERROR_EXAMPLES: dict[type, dict[str, dict[str, Any]]] = {
    ConflictSerializer: {
        "Slug taken": error_body("A project with this slug already exists.", E.CONFLICT, {"slug": ["Already taken."]}),
        "External id recorded": error_body(
            "A cost with external id “gw-2026-01-01” is already recorded for this project.",
            E.CONFLICT,
            {"external_id": ["Already recorded."]},
        ),
        "Price date taken": error_body(
            "gpt-4o from OpenAI already has a price from 2026-01-01.",
            E.CONFLICT,
            {"valid_from": ["A price from this date exists."]},
        ),
        "Price in use": error_body(
            "Costs were priced with this price; add a new price from a later date instead.",
            E.CONFLICT,
            {"valid_from": ["In use by recorded costs."]},
        ),
        "Last admin": error_body(
            "An organization keeps at least one admin: make someone else admin first.",
            E.CONFLICT,
            {"role": ["The last admin."]},
        ),
    },
    TransitionErrorSerializer: {
        "Unmet gates": {
            **error_body("Cannot enter Pilot: unmet gates.", E.TRANSITION_REFUSED),
            "missing": [{"key": "budget", "label": "A budget is recorded", "overridable": True}],
        }
    },
    QueueUnavailableSerializer: {
        "Queue down": {
            **error_body("The report is saved but could not be queued: …", E.QUEUE_UNAVAILABLE),
            "report": 42,
        }
    },
}

# --- Serializers --------------------------------------------------------------------------------


class StrictSerializer(serializers.Serializer):
    """Refuse fields the endpoint does not accept instead of silently dropping them."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(set(data) - writable)
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


def creator_field(source: str) -> serializers.IntegerField:
    """The one name of who created a row: `created_by`, the user's id (null: the system, or a deleted user).

    Older names (`by`, `author`, `requested_by`, `actor`, `invited_by`) stay in v1 as deprecated aliases,
    marked so in the schema with `extend_schema_serializer(deprecate_fields=...)`.
    """
    return serializers.IntegerField(
        source=source, read_only=True, allow_null=True, help_text="Who created it: a user id; null for the system."
    )


def _identity(value: Any) -> Any:
    return value


class _Never:
    """A type no value has: the pass-through type of a field whose every value is converted."""


# The fields whose DRF `to_representation` gives back a value of this exact type unchanged (int(3) is 3,
# str("a") is "a"), so the read path copies it without a call. Exact types: int(True) would be 1, not true.
_UNCHANGED: dict[type, type] = {
    serializers.BooleanField: bool,
    serializers.CharField: str,
    serializers.FloatField: float,
    serializers.IntegerField: int,
}


def _unchanged_type(field: serializers.Field) -> type:
    """Return the type whose values `field` represents as they are (`_Never` when none)."""
    if isinstance(field, serializers.ChoiceField):
        # A str choice maps to its own key, equal to itself, when every key is a str.
        keys = field.choice_strings_to_values.values()
        plain = type(field).to_representation is serializers.ChoiceField.to_representation
        return str if plain and all(isinstance(key, str) for key in keys) else _Never
    for kind, unchanged in _UNCHANGED.items():
        if type(field).to_representation is kind.to_representation:
            return unchanged
    return _Never


def _datetime_writer(field: serializers.DateTimeField) -> Callable[[Any], Any] | None:
    """DRF's ISO 8601 output of a DateTimeField, with its timezone looked up once, not per value."""
    output_format = getattr(field, "format", api_settings.DATETIME_FORMAT)
    zone = field.timezone if hasattr(field, "timezone") else field.default_timezone()
    if zone is None or not isinstance(output_format, str) or output_format.lower() != ISO_8601:
        return None

    def write(value: Any) -> Any:
        if not isinstance(value, dt.datetime) or timezone.is_naive(value):
            return field.to_representation(value)
        text = value.astimezone(zone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return write


def _date_writer(field: serializers.DateField) -> Callable[[Any], Any] | None:
    """DRF's ISO 8601 output of a DateField, without its per-value checks for a date."""
    output_format = getattr(field, "format", api_settings.DATE_FORMAT)
    if not isinstance(output_format, str) or output_format.lower() != ISO_8601:
        return None

    def write(value: Any) -> Any:
        return value.isoformat() if type(value) is dt.date else field.to_representation(value)

    return write


def _decimal_writer(field: serializers.DecimalField) -> Callable[[Any], Any] | None:
    """DRF's string output of a DecimalField, with its quantum and context made once, not per value."""
    coerce = getattr(field, "coerce_to_string", api_settings.COERCE_DECIMAL_TO_STRING)
    if field.decimal_places is None or field.normalize_output or field.localize or not coerce:
        return None
    quantum = decimal.Decimal(".1") ** field.decimal_places
    context = decimal.getcontext().copy()
    if field.max_digits is not None:
        context.prec = field.max_digits
    rounding = field.rounding

    def write(value: Any) -> Any:
        if not isinstance(value, decimal.Decimal):
            value = decimal.Decimal(str(value).strip())  # as DRF does (a figure already formatted as text)
        return f"{value.quantize(quantum, rounding=rounding, context=context):f}"

    return write


def _plain_writer(field: serializers.Field) -> Callable[[Any], Any] | None:
    """A faster equivalent of the field's `to_representation`, for the kinds where DRF's costs the most."""
    if isinstance(field, serializers.DateTimeField):
        return _datetime_writer(field)
    if isinstance(field, serializers.DateField):
        return _date_writer(field)
    if isinstance(field, serializers.DecimalField):
        return _decimal_writer(field)
    return None


# One read of a plan: the output name, the attribute (None: DRF's way, through the bound field),
# the type passed on unchanged and the writer of any other value.
ReadStep = tuple[str, str | None, type, Any]
# Read plans by (serializer class, model, current timezone): a serializer's fields come from its class.
_READ_PLANS: dict[tuple[type, type, Any], list[ReadStep]] = {}


@receiver(setting_changed)
def _read_plans_forget(*, setting: str, **kwargs: Any) -> None:
    """Drop the plans when what they were made from changes (tests override settings; DRF reloads alike)."""
    if setting in ("REST_FRAMEWORK", "TIME_ZONE", "USE_TZ"):
        _READ_PLANS.clear()


class StrictModelSerializer(StrictSerializer, serializers.ModelSerializer):
    """A model serializer refusing unknown fields, with a faster read path for lists.

    Reading a row field by field through DRF's `get_attribute` machinery costs more than the
    query. Fields that read one plain attribute (model fields, annotations, foreign-key ids) are
    read from the row's `__dict__` by a plan made once per serializer class, a value of the type
    the field would give back unchanged without a call; the others take DRF's way.
    Building a ModelSerializer's fields costs a few milliseconds, so a serializer whose fields are
    all plain never builds them to read: its plan is kept by class (every serializer here declares
    its fields on the class, none per instance).
    """

    def to_representation(self, instance):
        plan = self.__dict__.get("_read_plan")
        if plan is None:
            plan = self._read_plan = self._bound_read_plan(type(instance))
        data = {}
        row = instance.__dict__
        for name, attname, unchanged, field in plan:
            if attname is None:
                try:
                    value = field.get_attribute(instance)
                except serializers.SkipField:
                    continue
                if isinstance(value, PKOnlyObject):
                    value = value.pk
                    data[name] = None if value is None else value
                    continue
                data[name] = None if value is None else field.to_representation(value)
            else:
                # A deferred field is not in __dict__ yet: its descriptor loads it.
                value = row[attname] if attname in row else getattr(instance, attname)
                data[name] = value if value is None or type(value) is unchanged else field(value)
        return data

    def _bound_read_plan(self, model: type) -> list[ReadStep]:
        """Return the class's plan, its DRF-way entries bound to this serializer's own fields."""
        key = (type(self), model, timezone.get_current_timezone())
        plan = _READ_PLANS.get(key)
        if plan is None:
            plan = _READ_PLANS[key] = self._make_read_plan(model)
        if all(step[1] is not None for step in plan):
            return plan
        fields = self.fields
        return [
            (name, None, _Never, fields[name]) if attname is None else (name, attname, kind, w)
            for name, attname, kind, w in plan
        ]

    def _make_read_plan(self, model: type) -> list[ReadStep]:
        plan: list[ReadStep] = []
        for field in self._readable_fields:
            source = field.source_attrs
            simple = (
                len(source) == 1
                and not isinstance(
                    field,
                    serializers.BaseSerializer
                    | serializers.SerializerMethodField
                    | serializers.ManyRelatedField
                    # A ModelField (e.g. a GeneratedField) reads from the instance, not from a value.
                    | serializers.ModelField,
                )
                and not callable(getattr(model, source[0], None))
            )
            if not simple:
                plan.append((field.field_name, None, _Never, None))  # bound per serializer (_bound_read_plan)
            elif isinstance(field, serializers.PrimaryKeyRelatedField) and field.pk_field is None:
                plan.append((field.field_name, model._meta.get_field(source[0]).attname, int, _identity))
            elif write := _plain_writer(field):
                plan.append((field.field_name, source[0], _Never, write))
            else:
                plan.append((field.field_name, source[0], _unchanged_type(field), field.to_representation))
        return plan

    def get_validators(self) -> list:
        # Uniqueness across rows is the services' call (they answer 409); DRF's own check would make
        # every field of a unique constraint required and query outside the caller's scope.
        return []


# --- Parsing ------------------------------------------------------------------------------------


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, except that too deeply nested input is a 400, not a RecursionError (500)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise exceptions.ParseError("JSON parse error - the document is nested too deeply.") from exc


class JSONRenderer(renderers.JSONRenderer):
    """DRF's JSON renderer, except that text no UTF-8 can hold is written as a \\u escape, not a 500.

    A lone surrogate ("\\ud800", valid JSON) reaches an answer when an error names what was sent: an
    unknown field, an invalid choice.
    """

    def render(self, data, accepted_media_type=None, renderer_context=None):
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:
            self.ensure_ascii = True
            return super().render(data, accepted_media_type, renderer_context)


# The field incremental sync orders by; a view may name another (the change feed: `at`).
SYNC_FIELD = "updated_at"
# What the query string may carry besides filters (each list refuses anything else, see ScopedViewSet).
NOT_FILTERS = {
    "page",
    "page_size",
    "cursor",
    api_settings.SEARCH_PARAM,
    api_settings.ORDERING_PARAM,
    api_settings.URL_FORMAT_OVERRIDE,
}


class UtcDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 date-time, converted to UTC: PostgreSQL refuses offsets beyond ±15:59, and years out of range."""

    def to_python(self, value):
        value = super().to_python(value)
        try:
            return value.astimezone(dt.UTC) if value is not None else None
        except OverflowError as exc:
            raise DjangoValidationError("Enter a date-time between the years 1 and 9999.", code="invalid") from exc


class DateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):
    """A row id: a whole number (a decimal such as 1.5 is a 400, not a query for nothing)."""

    field_class = forms.IntegerField


class StrictFilterSet(django_filters.FilterSet):
    """A FilterSet refusing a value of the wrong type: django-filter already does, except for booleans.

    Its boolean widget reads anything but true/false/1/0 as "no filter", so `?archived=maybe` would list
    every row.
    """

    BOOLEANS = {"true", "false", "1", "0"}

    def is_valid(self) -> bool:
        valid = super().is_valid()
        for name, field in self.filters.items():
            raw = self.data.get(name)
            if isinstance(field, django_filters.BooleanFilter) and raw is not None and raw.lower() not in self.BOOLEANS:
                self.form.add_error(name, "Use true or false.")
                valid = False
        return valid


class SyncFilterSet(StrictFilterSet):
    """The base of every API FilterSet: what incremental sync needs on every list.

    `updated_after`/`created_after` take an ISO 8601 date or date-time and include the bound.
    """

    updated_after = DateTimeFilter(field_name="updated_at", lookup_expr="gte")
    updated_before = DateTimeFilter(field_name="updated_at", lookup_expr="lte")
    created_after = DateTimeFilter(field_name="created_at", lookup_expr="gte")


class FilterBackend(DjangoFilterBackend):
    """django-filter's backend over a SyncFilterSet, skipped when the query string names no filter.

    A view without its own FilterSet gets the sync filters alone. Building and validating the filter
    form costs about a millisecond a request, and most list calls only page, search or order.
    """

    def get_filterset_class(self, view, queryset=None):
        declared = super().get_filterset_class(view, queryset)
        if declared is not None:
            return declared
        model = queryset.model if queryset is not None else view.get_queryset().model
        return _sync_filterset(model)

    def query_params(self, view) -> set[str]:
        return set(self.get_filterset_class(view).base_filters)

    def filter_queryset(self, request, queryset, view):
        if request.query_params.keys() <= NOT_FILTERS:
            return queryset
        return super().filter_queryset(request, queryset, view)


@cache
def _sync_filterset(model: type) -> type[SyncFilterSet]:
    return filterset_factory(model, filterset=SyncFilterSet, fields=[])


class SearchFilter(filters.SearchFilter):
    """DRF's `?search=`, bounded: a NUL byte (PostgreSQL cannot compare text with one) is a 400, and so are
    more than SEARCH_MAX_TERMS terms or one longer than SEARCH_MAX_TERM_LENGTH (each term is matched
    against every search field of every row)."""

    def query_params(self, view) -> set[str]:
        return {self.search_param} if getattr(view, "search_fields", None) else set()

    def get_search_terms(self, request) -> list[str]:
        terms = super().get_search_terms(request)
        most, longest = settings.SEARCH_MAX_TERMS, settings.SEARCH_MAX_TERM_LENGTH
        if any("\x00" in term for term in terms):
            message = "Null characters are not allowed."
        elif len(terms) > most:
            message = f"At most {most} search terms are allowed ({len(terms)} given)."
        elif any(len(term) > longest for term in terms):
            message = f"A search term may have at most {longest} characters."
        else:
            return terms
        raise exceptions.ValidationError({self.search_param: [message]})


class OrderingFilter(filters.OrderingFilter):
    """DRF's `?ordering=`, strict: a field the endpoint does not offer is a 400, not silently ignored.

    Every list whose rows have `updated_at` may be ordered by it (then it pages by cursor, see Pagination).
    """

    def get_valid_fields(self, queryset, view, context=None):
        fields = super().get_valid_fields(queryset, view, context or {})
        sync_field = getattr(view, "sync_field", SYNC_FIELD)
        has_field = any(field.name == sync_field for field in queryset.model._meta.get_fields())
        if has_field and sync_field not in dict(fields):
            fields = [*fields, (sync_field, sync_field)]
        return fields

    def query_params(self, view) -> set[str]:
        return {self.ordering_param}

    def get_ordering(self, request, queryset, view):
        raw = request.query_params.get(self.ordering_param)
        if not raw:
            return self.get_default_ordering(view)
        valid = {name for name, _ in self.get_valid_fields(queryset, view, {"request": request})}
        fields = [term.strip() for term in raw.split(",")]
        unknown = [term for term in fields if term.lstrip("-") not in valid]
        if unknown:
            allowed = ", ".join(sorted(valid))
            message = f"Unknown ordering: {', '.join(unknown)}. Allowed: {allowed} (- for descending)."
            raise exceptions.ValidationError({self.ordering_param: [message]})
        return fields

    def get_schema_operation_parameters(self, view):
        names = sorted(name for name, _ in self.get_valid_fields(view.get_queryset(), view, {}))
        return [
            {
                "name": self.ordering_param,
                "required": False,
                "in": "query",
                "description": f"Sort by this field (- descending); `{SYNC_FIELD}` and `-{SYNC_FIELD}` page by cursor.",
                "schema": {"type": "string", "enum": [value for name in names for value in (name, f"-{name}")]},
            }
        ]


# --- Pagination and throttling ------------------------------------------------------------------


@dataclass(frozen=True)
class Keyset:
    """A cursor's ordering: by `field` then id, ascending or descending."""

    field: str
    descending: bool


def sync_horizon(*, using: str = "default") -> Expression:
    """Return the newest timestamp a cursor page may serve, as an expression its query evaluates.

    A row's `updated_at` (or an event's `at`) is taken inside its transaction, before it commits, so a
    row can become visible after rows with later timestamps. Stopping short of the start of the oldest
    transaction still open (less `API_SYNC_CLOCK_MARGIN_SECONDS` for the app's clock against the
    database's) means nothing older can appear later: a cursor never passes a row that is not yet
    committed. Open transactions are read from pg_stat_activity, which shows the sessions of the app's
    own database role, in the page's own statement (a subquery, evaluated once): no round trip of its own.
    """
    margin = dt.timedelta(seconds=settings.API_SYNC_CLOCK_MARGIN_SECONDS)
    if connections[using].vendor != "postgresql":
        return Value(timezone.now() - margin, output_field=DateTimeField())  # SQLite (`make run`): one writer
    return RawSQL(
        "(SELECT least(clock_timestamp(), min(xact_start)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND backend_type = 'client backend'"
        " AND pid <> pg_backend_pid() AND xact_start IS NOT NULL) - %s",
        [margin],
        output_field=DateTimeField(),
    )


class Pagination(PageNumberPagination):
    """`?page=N&page_size=M` (50 rows by default, at most 200), or a cursor when ordered for sync.

    A list asked for `?ordering=updated_at` or `-updated_at` (and the change feed, always) pages by
    keyset on (updated_at, id): `next` carries `cursor=`, rows inserted or changed between two pages
    neither repeat nor vanish, and no count is taken. `resume` is the link to follow later for what
    changed since. Page numbers stay for the other orderings (the web UI's way).
    """

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    cursor_query_param = "cursor"

    def query_params(self, view) -> set[str]:
        """The query parameters this paginator reads."""
        if getattr(view, "cursor_only", False):
            return {self.page_size_query_param, self.cursor_query_param}
        params = {self.page_size_query_param, self.page_query_param}
        # Only a list may be ordered for sync, so only a list pages by cursor (a history by page number).
        return params | {self.cursor_query_param} if getattr(view, "action", None) == "list" else params

    def get_page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= self.max_page_size:
            raise exceptions.ValidationError(
                {self.page_size_query_param: [f"A whole number from 1 to {self.max_page_size} is required."]}
            )
        return size

    def paginate_queryset(self, queryset, request, view=None):
        self.keyset = self._keyset(request, view)
        if self.keyset is None:
            if self.cursor_query_param in request.query_params:
                raise exceptions.ValidationError(
                    {self.cursor_query_param: [f"A cursor pages only ?ordering={SYNC_FIELD} or -{SYNC_FIELD}."]}
                )
            page = request.query_params.get(self.page_query_param, "1")
            if not (page.isdecimal() or page == "last"):
                raise exceptions.ValidationError({self.page_query_param: ["A page number is required."]})
            return super().paginate_queryset(queryset, request, view)
        return self._cursor_page(queryset, request)

    def _keyset(self, request, view) -> Keyset | None:
        field = getattr(view, "sync_field", SYNC_FIELD)
        ordering = request.query_params.get(api_settings.ORDERING_PARAM)
        cursor_only = getattr(view, "cursor_only", False)
        if ordering is None and cursor_only:
            ordering = field
        if ordering not in (field, f"-{field}"):
            if cursor_only:
                raise exceptions.ValidationError({api_settings.ORDERING_PARAM: [f"Order by {field} or -{field}."]})
            return None
        return Keyset(field=field, descending=ordering.startswith("-"))

    def _cursor_page(self, queryset, request) -> list:
        self.request = request
        self.page_size = self.get_page_size(request)
        field, descending = self.keyset.field, self.keyset.descending
        after = self._decode(request.query_params.get(self.cursor_query_param))
        rows = queryset.filter(**{f"{field}__lt": sync_horizon(using=queryset.db)})
        if after is not None:
            at, pk = after
            if descending:
                rows = rows.filter(Q(**{f"{field}__lt": at}) | Q(**{field: at, "pk__lt": pk}))
            else:
                rows = rows.filter(Q(**{f"{field}__gt": at}) | Q(**{field: at, "pk__gt": pk}))
        order = [f"-{field}", "-pk"] if descending else [field, "pk"]
        page = list(rows.order_by(*order)[: self.page_size + 1])
        self.has_next = len(page) > self.page_size
        page = page[: self.page_size]
        last = (getattr(page[-1], field), page[-1].pk) if page else after
        self.last_cursor = None if last is None else self._encode(last)
        return page

    def _decode(self, raw: str | None) -> tuple[dt.datetime, int] | None:
        if raw is None:
            return None
        try:
            at, pk = base64.urlsafe_b64decode(raw.encode("ascii") + b"==").decode("ascii").split("|")
            position = dt.datetime.fromisoformat(at), int(pk)
        except (ValueError, UnicodeError):
            position = None
        if position is None or timezone.is_naive(position[0]):
            raise exceptions.ValidationError({self.cursor_query_param: ["Invalid cursor."]})
        return position

    @staticmethod
    def _encode(position: tuple[dt.datetime, int]) -> str:
        at, pk = position
        return base64.urlsafe_b64encode(f"{at.isoformat()}|{pk}".encode("ascii")).decode("ascii").rstrip("=")

    def _cursor_link(self, cursor: str | None) -> str:
        url = remove_query_param(self.request.build_absolute_uri(), self.page_query_param)
        if cursor is None:
            return remove_query_param(url, self.cursor_query_param)
        return replace_query_param(url, self.cursor_query_param, cursor)

    def get_paginated_response(self, data):
        if self.keyset is None:
            return super().get_paginated_response(data)
        return Response(
            {
                "next": self._cursor_link(self.last_cursor) if self.has_next else None,
                "previous": None,
                "resume": self._cursor_link(self.last_cursor),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema):
        paged = super().get_paginated_response_schema(schema)
        paged["required"] = ["results"]
        paged["properties"]["count"]["description"] = "Rows in all pages (page numbers only)."
        paged["properties"]["resume"] = {
            "type": "string",
            "format": "uri",
            "description": "Cursor pages only: follow it later for the rows changed since this page.",
            "example": "https://tracker.example/api/v1/projects/?ordering=updated_at&cursor=MjAyNi0wMS0wMVQwMDowMDowMCswMDowMHw0Mg",
        }
        return paged

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
        if getattr(view, "cursor_only", False):
            parameters = [p for p in parameters if p["name"] != self.page_query_param]
        parameters.append(
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "The position to continue from, as given in `next` or `resume` of a cursor page.",
                "schema": {"type": "string"},
            }
        )
        return parameters


@dataclass(frozen=True)
class RateLimit:
    """Where a caller stands against one rate limit: what the RateLimit-* headers say."""

    limit: int
    remaining: int
    reset: int  # seconds until the oldest counted request leaves the window


def rate_limit_headers(request) -> dict[str, str]:
    """The IETF draft's RateLimit-Limit/-Remaining/-Reset for the most constrained limit the request counted against."""
    limits = getattr(request, "rate_limits", ())
    if not limits:
        return {}  # not counted: refused before throttling (401/403), or the cache is down
    tightest = min(limits, key=lambda rate: (rate.remaining, -rate.reset))
    return {
        "RateLimit-Limit": str(tightest.limit),
        "RateLimit-Remaining": str(tightest.remaining),
        "RateLimit-Reset": str(tightest.reset),
    }


class RateThrottle(SimpleRateThrottle):
    """DRF's sliding-window throttle over one or more counters, failing open, noting where the caller stands.

    A request is allowed when every counter of `get_idents` has room, and is then counted in all of them.
    """

    def get_rate(self) -> str | None:
        # Read at call time, so a settings override (tests, the benchmark) applies.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_idents(self, request) -> list[str]:
        raise NotImplementedError

    def get_ident(self, request) -> str:
        """Key anonymous callers on the address behind the trusted proxies, as sign-in does."""
        return client_address(request)

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        # Fail open while the cache (Redis) is down: refusing every API call would turn a cache
        # outage into a full API outage; going unthrottled for that time is the lesser harm, and logged.
        try:
            return self._count(request)
        except RedisError as exc:
            logger.warning("API throttling skipped: the cache is unavailable: %s", exc)
            return True

    def _count(self, request) -> bool:
        self.now = self.timer()
        keys = [self.cache_format % {"scope": self.scope, "ident": ident} for ident in self.get_idents(request)]
        stored = self.cache.get_many(keys)
        histories = {key: [at for at in stored.get(key, []) if at > self.now - self.duration] for key in keys}
        self.history = max(histories.values(), key=len, default=[])  # the fullest counter decides (and DRF's wait())
        allowed = len(self.history) < self.num_requests
        if allowed:
            for history in histories.values():
                history.insert(0, self.now)
            self.cache.set_many(histories, self.duration)
        oldest = self.history[-1] if self.history else self.now
        request.rate_limits = [
            *getattr(request, "rate_limits", ()),
            RateLimit(
                limit=self.num_requests,
                remaining=max(self.num_requests - len(self.history), 0),
                reset=math.ceil(oldest + self.duration - self.now),
            ),
        ]
        return allowed


class UserRateThrottle(RateThrottle):
    """The `api` rate per user: their browser session and every token of theirs share one counter."""

    scope = "api"

    def get_idents(self, request) -> list[str]:
        if request.user and request.user.is_authenticated:
            return [f"user-{request.user.pk}"]
        return [self.get_ident(request)]


class OrganizationRateThrottle(RateThrottle):
    """The `expensive` rate per organization (bulk ingestion, report requests), whichever member calls.

    A request counts against every organization of the caller: it is known before the body is read, and
    a member of several organizations can spend no more of any one than its other members can.
    """

    scope = "expensive"

    def get_idents(self, request) -> list[str]:
        from projects.selectors import organization_list

        return [f"organization-{pk}" for pk in organization_list(user=request.user).values_list("pk", flat=True)]


class OtlpRateThrottle(RateThrottle):
    """The `otlp` rate per organization: the OTLP receiver's exports, whichever service token sends them."""

    scope = "otlp"

    def get_idents(self, request) -> list[str]:
        return [f"organization-{request.auth.organization_id}"]


@csrf_exempt  # nothing is written; a browser-style CSRF refusal would answer HTML instead of JSON
def not_found(request, *args, **kwargs) -> JsonResponse:
    """Answer any unknown API path (e.g. a malformed id) with the API's JSON 404, not an HTML page."""
    return JsonResponse(error_body("Not found.", "not_found"), status=404)
