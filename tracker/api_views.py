"""The API's base viewset and its OpenAPI schema: shared error responses and token security."""

from collections.abc import Callable
from typing import TYPE_CHECKING

from django.db.models import QuerySet
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
from tracker.api_conditional import ConditionalMixin, IdempotentMixin
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
