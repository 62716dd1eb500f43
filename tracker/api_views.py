"""The API's base viewset and its OpenAPI schema: shared error responses and token security."""

import hashlib
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.db.models import QuerySet
from django.http import HttpResponse
from django.utils.cache import get_conditional_response, patch_cache_control, set_response_etag
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers, viewsets
from rest_framework.permissions import SAFE_METHODS
from rest_framework.settings import api_settings

from tracker.api import (
    ERROR_EXAMPLES,
    ErrorSerializer,
    OrganizationRateThrottle,
    TransitionErrorSerializer,
    rate_limit_headers,
)
from tracker.exceptions import ValidationFailed

if TYPE_CHECKING:
    from projects.models import Organization


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "projects.tokens.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A personal API token (see docs/api.md)."}


# --- Schema -------------------------------------------------------------------------------------

WRITE_METHODS = {"POST", "PUT", "PATCH"}


class ApiAutoSchema(AutoSchema):
    """Document the shared error responses on every operation, with examples."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        codes = ["401", "403", "404", "429", "503"]  # 503: the database ceiling of web requests tripped
        if self.method in WRITE_METHODS or self._is_list_view():
            codes.append("400")
        if self.method in WRITE_METHODS or self.method == "DELETE":
            codes.append("409")
        for code in codes:
            if code not in responses:
                serializer = TransitionErrorSerializer if code == "409" else ErrorSerializer
                responses[code] = self._get_response_for_code(serializer, code)
                examples = responses[code]["content"]["application/json"].setdefault("examples", {})
                example = ERROR_EXAMPLES[code]
                examples[example.name.replace(" ", "")] = {"value": example.value, "summary": example.name}
        return dict(sorted(responses.items()))


IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# The headers that belong to an answer rather than to the moment it is sent (rate limits, request id).
KEPT_HEADERS = ("Content-Type", "Location")
# Printable ASCII, as Stripe's keys (a UUID fits many times over).
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
_MAX_IDEMPOTENT_PATH = 1024  # the key's row holds the path (projects.models.IdempotencyKey)


class _Replay(Exception):
    def __init__(self, response: HttpResponse):
        self.response = response


def _idempotency_caller(request) -> str:
    """A user (their session and personal tokens alike), or a service token on its own."""
    token = request.auth
    if token is not None and getattr(token, "is_service", False):
        return f"service-token:{token.pk}"
    return f"user:{request.user.pk}"


def _idempotency_fingerprint(request) -> str:
    """Hash the query string and the parsed body, so the same JSON sent with other spacing or key order matches."""
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{request.META.get('QUERY_STRING', '')}\n{body}".encode()).hexdigest()


class IdempotentMixin:
    """`Idempotency-Key` on every POST: a retry with the same key and body gets the first answer, unwritten again.

    The key is claimed (projects.idempotency) once the caller is authenticated, allowed and within its
    rate, before the view runs. The answer is kept when the view answered below 500, except a 429: a 5xx
    or a 429 asks for a retry, so the key is released. The same key with another body is a 422, and a
    retry while the first request runs a 409. A replay says `Idempotent-Replayed: true`.
    """

    # Fields an answer shows once and that are never stored (a new token's key): a replay goes without them.
    idempotency_withheld_fields: frozenset[str] = frozenset()
    idempotency_claim = None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if request.method != "POST" or key is None:
            return
        from projects.idempotency import Claim, idempotency_key_claim

        if not _IDEMPOTENCY_KEY.fullmatch(key):
            message = "Up to 255 printable ASCII characters, no spaces."
            raise ValidationFailed(f"{IDEMPOTENCY_HEADER}: {message}", errors={IDEMPOTENCY_HEADER: [message]})
        if len(request.path) > _MAX_IDEMPOTENT_PATH:
            message = f"Idempotency keys are kept for paths of up to {_MAX_IDEMPOTENT_PATH} characters."
            raise ValidationFailed(message, errors={IDEMPOTENCY_HEADER: [message]})
        outcome = idempotency_key_claim(
            caller=_idempotency_caller(request),
            path=request.path,
            key=key,
            fingerprint=_idempotency_fingerprint(request),
        )
        if isinstance(outcome, Claim):
            self.idempotency_claim = outcome
            return
        replay = HttpResponse(outcome.body, status=outcome.status, headers=outcome.headers)
        replay[REPLAYED_HEADER] = "true"
        raise _Replay(replay)

    def handle_exception(self, exc):
        if isinstance(exc, _Replay):
            return exc.response
        return super().handle_exception(exc)

    def raise_uncaught_exception(self, exc):
        self._idempotency_finish(None)  # a bug (500): the retry runs again
        super().raise_uncaught_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if self.idempotency_claim is not None:
            self._idempotency_finish(response)
        return response

    def _idempotency_finish(self, response: HttpResponse | None) -> None:
        from projects.idempotency import StoredAnswer, idempotency_key_release, idempotency_key_store

        claim, self.idempotency_claim = self.idempotency_claim, None
        if claim is None:
            return
        status = response.status_code if response is not None else 500
        if status >= 500 or status == 429 or response.streaming:
            idempotency_key_release(claim=claim)
            return
        response.render()
        body = response.content
        data = getattr(response, "data", None)
        if self.idempotency_withheld_fields and isinstance(data, dict):
            kept = {name: value for name, value in data.items() if name not in self.idempotency_withheld_fields}
            body = response.accepted_renderer.render(kept, response.accepted_media_type, response.renderer_context)
        headers = {name: response[name] for name in KEPT_HEADERS if response.has_header(name)}
        idempotency_key_store(claim=claim, answer=StoredAnswer(status=status, headers=headers, body=body))


class ConditionalMixin:
    """A strong `ETag` (MD5 of the rendered body, Django's) on every GET answer; `If-None-Match` → 304.

    The tag changes whenever the body does, whatever changed it. Streamed answers (exports) get none:
    their body is not known before it is sent. `Cache-Control: private, no-cache` lets the caller keep
    the answer and revalidate it each time; no shared cache keeps an answer meant for one caller.
    """

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if request.method not in ("GET", "HEAD") or response.status_code != 200 or response.streaming:
            return response
        response.render()
        set_response_etag(response)
        patch_cache_control(response, private=True, no_cache=True)
        return get_conditional_response(request, etag=response.get("ETag"), response=response)


class ScopedViewSet(IdempotentMixin, ConditionalMixin, viewsets.GenericViewSet):
    """A viewset whose rows come from a selector scoped to the caller (others' rows answer 404).

    `create_serializer_class` describes the body of a create when it accepts more (the parent).
    `expensive_actions` (bulk ingestion, report requests) also count against the caller's organizations.
    Every answer says where the caller stands against its rate limits (RateLimit-* headers).
    """

    selector: Callable[..., QuerySet]
    create_serializer_class: type[serializers.Serializer] | None = None
    # Service tokens (projects.tokens.ServiceTokenScope): the scopes that may write here (an @action may
    # say so for itself), or whether they are shut out entirely.
    service_token_write_scopes: tuple[str, ...] = ()
    service_tokens_refused = False
    expensive_actions: frozenset[str] = frozenset()
    paginated_actions = frozenset({"list", "history"})

    def get_throttles(self):
        throttles = super().get_throttles()
        if self.action in self.expensive_actions:
            throttles.append(OrganizationRateThrottle())
        return throttles

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        for name, value in rate_limit_headers(request).items():
            response[name] = value
        return response

    def get_queryset(self) -> QuerySet:
        return type(self).selector(user=self.request.user)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication, permissions, throttles first
        if request.method in SAFE_METHODS:
            unknown = sorted(set(request.query_params) - self.query_params())
            if unknown:
                raise ValidationFailed(
                    f"Unknown query parameter: {', '.join(unknown)}.",
                    errors={name: ["Unknown query parameter."] for name in unknown},
                )

    def query_params(self) -> set[str]:
        """Return what this action reads from the query string; anything else is a 400."""
        known = {api_settings.URL_FORMAT_OVERRIDE}
        if self.action == "list":
            for backend in self.filter_backends:
                known |= backend().query_params(self)
        if self.action in self.paginated_actions and self.paginator is not None:
            known |= self.paginator.query_params(self)
        return known

    def only_organization(self) -> "Organization":
        """Return the caller's organization when there is exactly one; otherwise the body must say which."""
        from projects.selectors import organization_list

        organizations = list(organization_list(user=self.request.user)[:2])
        if len(organizations) != 1:
            raise ValidationFailed(
                "Say which organization this belongs to.", errors={"organization": ["This field is required."]}
            )
        return organizations[0]

    def get_serializer_class(self):
        if self.action == "create" and self.create_serializer_class is not None:
            return self.create_serializer_class
        return super().get_serializer_class()


class AuditEventSerializer(serializers.Serializer):
    """One recorded change (read-only: history is never edited)."""

    id = serializers.IntegerField()
    at = serializers.DateTimeField()
    actor = serializers.IntegerField(source="actor_id", allow_null=True, help_text="User id; null for the system.")
    token = serializers.IntegerField(source="token_id", allow_null=True, help_text="API token id, when one was used.")
    actor_repr = serializers.CharField(help_text="Who, as it read at the time.")
    action = serializers.ChoiceField(choices=["create", "update", "delete"])
    object_type = serializers.CharField(help_text="app_label.model, e.g. ops.risk")
    object_id = serializers.CharField()
    object_repr = serializers.CharField()
    changes = serializers.DictField(
        child=serializers.ListField(child=serializers.JSONField(), min_length=2, max_length=2),
        help_text="field: [old, new]",
    )


class HistoryMixin:
    """`GET …/{id}/history/`: the object's recorded changes, newest first, paginated."""

    def history_response(self, events: QuerySet):
        page = self.paginate_queryset(events)
        return self.get_paginated_response(AuditEventSerializer(page, many=True).data)
