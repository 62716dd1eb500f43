"""What every API endpoint shares: one error shape, authentication, pagination, throttling.

Nothing here may import DRF views: the settings load these classes while DRF itself imports.
The schema and the base viewset live in `tracker.api_views`.
"""

import datetime as dt
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiExample
from redis.exceptions import RedisError
from rest_framework import ISO_8601, exceptions, filters, parsers, renderers, serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.relations import PKOnlyObject
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from tracker.db import STATEMENT_TIMEOUT_MESSAGE, statement_timeout_caught
from tracker.exceptions import DomainError, TooManyRequests, TransitionRefused
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


def _body(detail: str, code: str, errors: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
    return {"detail": detail, "code": code, "errors": dict(errors or {})}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Answer every error with {"detail", "code", "errors": {field: [messages]}} (+ "missing" for gates)."""
    if isinstance(exc, DomainError):
        body = _body(exc.message, exc.code, exc.errors)
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
        return Response(_body(STATEMENT_TIMEOUT_MESSAGE, "statement_timeout"), status=503)
    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: let Django log it and answer 500
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(math.ceil(exc.wait))
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        body = _body(_first(errors) if errors else "Invalid input.", "invalid", errors)
    else:
        codes = exc.get_codes()
        body = _body(str(exc.detail), codes if isinstance(codes, str) else "error")
    return Response(body, status=exc.status_code, headers=headers)


class GateSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    overridable = serializers.BooleanField()


class ErrorSerializer(serializers.Serializer):
    """The one error shape of the API."""

    detail = serializers.CharField(help_text="A sentence saying what went wrong.")
    code = serializers.CharField(help_text="A stable machine-readable code, e.g. invalid, not_found.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text='Messages per field; bulk rows as "rows.<index>.<field>".',
    )


class TransitionErrorSerializer(ErrorSerializer):
    missing = GateSerializer(many=True, help_text="Every unmet stage gate.", required=False)


ERROR_EXAMPLES = {
    "400": OpenApiExample(
        "Invalid input",
        value=_body("amount: Ensure this value is greater than or equal to 0.", "invalid", {"amount": ["…"]}),
        status_codes=["400"],
        response_only=True,
    ),
    "401": OpenApiExample(
        "No credentials",
        value=_body("Authentication credentials were not provided.", "not_authenticated"),
        status_codes=["401"],
        response_only=True,
    ),
    "403": OpenApiExample(
        "Role too low",
        value=_body("This needs the manager role in Acme.", "permission_denied"),
        status_codes=["403"],
        response_only=True,
    ),
    "404": OpenApiExample(
        "Unknown or another organization's",
        value=_body("Not found.", "not_found"),
        status_codes=["404"],
        response_only=True,
    ),
    "409": OpenApiExample(
        "Conflict",
        value={
            **_body("Cannot enter Pilot: unmet gates.", "transition_refused"),
            "missing": [{"key": "budget", "label": "A budget is recorded", "overridable": True}],
        },
        status_codes=["409"],
        response_only=True,
    ),
    "503": OpenApiExample(
        "Too long in the database",
        value=_body(STATEMENT_TIMEOUT_MESSAGE, "statement_timeout"),
        status_codes=["503"],
        response_only=True,
    ),
    "429": OpenApiExample(
        "Throttled",
        value=_body("Request was throttled. Expected available in 12 seconds.", "throttled"),
        status_codes=["429"],
        response_only=True,
    ),
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


def _identity(value: Any) -> Any:
    return value


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


class StrictModelSerializer(StrictSerializer, serializers.ModelSerializer):
    """A model serializer refusing unknown fields, with a faster read path for lists.

    Reading a row field by field through DRF's `get_attribute` machinery costs more than the
    query. Fields that read one plain attribute (model fields, annotations, foreign-key ids) are
    read with `getattr` from a plan made once per serializer; the others take DRF's way.
    """

    def to_representation(self, instance):
        plan = self.__dict__.get("_read_plan")
        if plan is None:
            plan = self._read_plan = self._make_read_plan(type(instance))
        data = {}
        for name, attname, field in plan:
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
                value = getattr(instance, attname)
                data[name] = None if value is None else field(value)
        return data

    def _make_read_plan(self, model: type) -> list[tuple[str, str | None, Any]]:
        plan = []
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
                plan.append((field.field_name, None, field))
            elif isinstance(field, serializers.PrimaryKeyRelatedField) and field.pk_field is None:
                plan.append((field.field_name, model._meta.get_field(source[0]).attname, _identity))
            elif isinstance(field, serializers.DateTimeField) and (write := _datetime_writer(field)):
                plan.append((field.field_name, source[0], write))
            else:
                plan.append((field.field_name, source[0], field.to_representation))
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


class FilterBackend(DjangoFilterBackend):
    """django-filter's backend, skipped when the query string names no filter.

    Building and validating the filter form costs about a millisecond a request, and most list
    calls only page, search or order.
    """

    def filter_queryset(self, request, queryset, view):
        not_filters = {"page", Pagination.page_size_query_param, api_settings.SEARCH_PARAM, api_settings.ORDERING_PARAM}
        if request.query_params.keys() <= not_filters:
            return queryset
        return super().filter_queryset(request, queryset, view)


class SearchFilter(filters.SearchFilter):
    """DRF's `?search=`, bounded: a NUL byte (PostgreSQL cannot compare text with one) is a 400, and so are
    more than SEARCH_MAX_TERMS terms or one longer than SEARCH_MAX_TERM_LENGTH (each term is matched
    against every search field of every row)."""

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


# --- Pagination and throttling ------------------------------------------------------------------


class Pagination(PageNumberPagination):
    """`?page=N&page_size=M`: 50 rows by default, at most 200."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


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
    return JsonResponse(_body("Not found.", "not_found"), status=404)
