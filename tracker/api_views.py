"""The API's base viewset and its OpenAPI schema: shared error responses and token security."""

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

from django.db.models import QuerySet
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import get_doc
from drf_spectacular.utils import OpenApiResponse, extend_schema_serializer
from rest_framework import serializers, viewsets
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import SAFE_METHODS
from rest_framework.settings import api_settings

from tracker.api import ERROR_EXAMPLES, ERROR_RESPONSES, OrganizationRateThrottle, creator_field, rate_limit_headers
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
# Response headers, defined once under components/headers (schema_postprocess) and referenced per response.
HEADERS = {
    "X-Request-ID": {
        "description": "The request's id (the one sent if well-formed, else a new one): quote it when asking for help.",
        "schema": {"type": "string"},
        "required": True,
    },
    "RateLimit-Limit": {
        "description": "Requests allowed in the window of the tightest rate limit the request counted against.",
        "schema": {"type": "integer"},
    },
    "RateLimit-Remaining": {"description": "Requests left in that window.", "schema": {"type": "integer"}},
    "RateLimit-Reset": {"description": "Seconds until that window frees a request.", "schema": {"type": "integer"}},
    "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}, "required": True},
    "WWW-Authenticate": {
        "description": "How to authenticate: `Bearer`.",
        "schema": {"type": "string"},
        "required": True,
    },
}
RATE_LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
# Refused before the throttles count the request: no RateLimit-* headers.
UNCOUNTED = {"401", "406", "413"}


class ApiAutoSchema(AutoSchema):
    """Document what every operation really answers: its errors, with examples, and the headers of each answer.

    The query parameters are exactly those the view reads (`ScopedViewSet.query_params`): filters and ordering on
    lists only, pagination where it pages, so a history lists its own parameters, not its parent list's.
    """

    def get_filter_backends(self):
        return super().get_filter_backends() if getattr(self.view, "action", None) == "list" else []

    def _get_pagination_parameters(self):
        parameters = super()._get_pagination_parameters()
        known = self.view.query_params() if hasattr(self.view, "query_params") else None
        return [p for p in parameters if known is None or p["name"] in known]

    def get_description(self):
        # An operation without a docstring of its own says what its resource is.
        return super().get_description() or get_doc(type(self.view))

    def _error_statuses(self) -> list[int]:
        statuses = [401, 403, 404, 429, 503]
        if self.method != "DELETE":
            statuses.append(400)  # a GET's query string is checked too
        if issubclass(self.view.content_negotiation_class, DefaultContentNegotiation):
            statuses.append(406)
        if self.method in WRITE_METHODS or self.method == "DELETE":
            statuses.append(409)
        if self.method == "POST":
            statuses.append(422)  # an Idempotency-Key sent again with another body (tracker/api_conditional.py)
        if self.method in WRITE_METHODS:
            statuses.append(413)
            if self.view.parser_classes:
                statuses.append(415)
        return statuses

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for status in self._error_statuses():
            code = str(status)
            if code not in responses:
                error = ERROR_RESPONSES[status]
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(error.serializer, description=error.description), code
                )
        for code, response in responses.items():
            self._add_examples(response)
            headers = response.setdefault("headers", {})
            names = ["X-Request-ID"] if code in UNCOUNTED else ["X-Request-ID", *RATE_LIMIT_HEADERS]
            names += {"401": ["WWW-Authenticate"], "429": ["Retry-After"]}.get(code, [])
            headers.update({name: {"$ref": f"#/components/headers/{name}"} for name in names})
            if not response.get("description"):
                response["description"] = ERROR_RESPONSES[int(code)].description if code >= "400" else "OK"
        return dict(sorted(responses.items()))

    @staticmethod
    def _add_examples(response: dict) -> None:
        """Give an error response the examples of its component."""
        media = response.get("content", {}).get("application/json", {})
        component = media.get("schema", {}).get("$ref", "").rpartition("/")[2]
        examples = error_examples().get(component, {})
        if examples:
            media["examples"] = {
                name.title().replace(" ", ""): {"summary": name, "value": value} for name, value in examples.items()
            }


@cache
def error_examples() -> dict[str, dict[str, dict]]:
    """Return the examples of each error component, by its name in the schema."""
    examples = {error.serializer: {"Example": error.example} for error in ERROR_RESPONSES.values()}
    examples.update(ERROR_EXAMPLES)
    return {serializer.__name__.removesuffix("Serializer"): values for serializer, values in examples.items()}


def schema_postprocess(result, generator, request, public):
    """Complete the schema: the shared headers, every tag with its resource's description, the gate codes."""
    from projects.audit import AUDITED_MODELS
    from projects.gates import GATES

    result.setdefault("components", {})["headers"] = HEADERS
    views = {path: callback.cls for path, _regex, _method, callback in generator.endpoints}
    tags: dict[str, str] = {}
    for path, operations in result["paths"].items():
        for operation in operations.values():
            for tag in operation.get("tags", []):
                if path in views and not tags.get(tag):
                    tags[tag] = get_doc(views[path])
    result["tags"] = [{"name": name, "description": text} for name, text in sorted(tags.items())]
    # Codes that registries hold (filled once the apps are ready): the stage gates, the audited models.
    audited = sorted(label.lower() for label in AUDITED_MODELS)
    for component, field, codes in [
        ("Gate", "key", sorted(GATES)),
        ("AuditEvent", "object_type", audited),
        ("ChangeFeedEvent", "object_type", audited),
    ]:
        schema = result["components"]["schemas"].get(component)
        if schema:
            schema["properties"][field]["enum"] = codes
    return result


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


@extend_schema_serializer(deprecate_fields=["actor"])
class AuditEventSerializer(serializers.Serializer):
    """One recorded change (read-only: history is never edited)."""

    id = serializers.IntegerField()
    at = serializers.DateTimeField()
    created_by = creator_field("actor_id")
    actor = serializers.IntegerField(source="actor_id", allow_null=True, help_text="Deprecated: use created_by.")
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
