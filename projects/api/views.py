"""API views of the projects app: thin, the services decide."""

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from projects import selectors, services
from projects.api import filters
from projects.api.serializers import (
    ApiTokenCreatedSerializer,
    ApiTokenCreateSerializer,
    ApiTokenSerializer,
    CostCentreCreateSerializer,
    CostCentreSerializer,
    InvitationCreateSerializer,
    InvitationResendSerializer,
    InvitationSerializer,
    MembershipSerializer,
    OrganizationSerializer,
    ProjectCreateSerializer,
    ProjectSerializer,
    ServiceTokenCreatedSerializer,
    ServiceTokenCreateSerializer,
    ServiceTokenSerializer,
    StatusUpdateSerializer,
    TeamCreateSerializer,
    TeamSerializer,
    TransitionRequestSerializer,
    TransitionSerializer,
)
from projects.figures import project_list_with_figures
from projects.models import Project
from tracker.api import TransitionErrorSerializer
from tracker.api_views import AuditEventSerializer, HistoryMixin, ScopedViewSet
from tracker.exceptions import NotPermitted

READ = (mixins.ListModelMixin, mixins.RetrieveModelMixin)


@extend_schema_view(
    list=extend_schema(summary="List your organizations"),
    update=extend_schema(summary="Update an organization (admins)"),
    partial_update=extend_schema(summary="Update an organization (admins)"),
)
class OrganizationViewSet(*READ, mixins.UpdateModelMixin, ScopedViewSet):
    """The organizations you belong to: name, currency, locale and timezone; admins change them."""

    selector = selectors.organization_list
    serializer_class = OrganizationSerializer
    search_fields = ["name", "slug"]
    ordering_fields = ["name", "created_at"]

    def perform_update(self, serializer):
        serializer.instance = services.organization_update(
            organization=serializer.instance, by=self.request.user, **serializer.validated_data
        )


class TeamViewSet(*READ, mixins.CreateModelMixin, mixins.UpdateModelMixin, mixins.DestroyModelMixin, ScopedViewSet):
    """Teams of your organizations; admins create, rename and delete them."""

    selector = selectors.team_list
    serializer_class = TeamSerializer
    create_serializer_class = TeamCreateSerializer
    filterset_class = filters.TeamFilter
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at"]

    def perform_create(self, serializer):
        serializer.instance = services.team_create(by=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.team_update(
            team=serializer.instance, by=self.request.user, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.team_delete(team=instance, by=self.request.user)


@extend_schema_view(
    list=extend_schema(summary="List the cost centres of your organizations"),
    create=extend_schema(summary="Add a cost centre (managers and admins); a taken code is a 409"),
    update=extend_schema(summary="Change a cost centre's code, name or owner (managers and admins)"),
    partial_update=extend_schema(summary="Change a cost centre's code, name or owner (managers and admins)"),
    destroy=extend_schema(
        summary="Delete a cost centre (admins): its projects stay without one, its budgets are deleted with it"
    ),
)
class CostCentreViewSet(
    *READ, mixins.CreateModelMixin, mixins.UpdateModelMixin, mixins.DestroyModelMixin, ScopedViewSet
):
    """Cost centres: where finance charges spend back to. A project names one; chargeback groups by it."""

    selector = selectors.cost_centre_list
    serializer_class = CostCentreSerializer
    create_serializer_class = CostCentreCreateSerializer
    filterset_class = filters.CostCentreFilter
    search_fields = ["code", "name"]
    ordering_fields = ["code", "name", "created_at"]

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        organization = data.pop("organization", None) or self.only_organization()
        serializer.instance = services.cost_centre_create(organization=organization, by=self.request.user, **data)

    def perform_update(self, serializer):
        serializer.instance = services.cost_centre_update(
            cost_centre=serializer.instance, by=self.request.user, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.cost_centre_delete(cost_centre=instance, by=self.request.user)


@extend_schema_view(
    update=extend_schema(summary="Change a member's role (admins); the last admin stays admin (409)"),
    partial_update=extend_schema(summary="Change a member's role (admins); the last admin stays admin (409)"),
    destroy=extend_schema(summary="Remove a member (admins); the last admin cannot be removed (409)"),
)
class MembershipViewSet(*READ, mixins.UpdateModelMixin, mixins.DestroyModelMixin, ScopedViewSet):
    """Who belongs to your organizations; admins change roles and remove members. People join by invitation."""

    selector = selectors.membership_list
    serializer_class = MembershipSerializer
    filterset_class = filters.MembershipFilter
    search_fields = ["user__username", "user__email"]
    ordering_fields = ["role", "created_at"]

    def perform_update(self, serializer):
        membership = serializer.instance
        serializer.instance = services.membership_role_set(
            membership=membership, role=serializer.validated_data.get("role", membership.role), by=self.request.user
        )

    def perform_destroy(self, instance):
        services.membership_delete(membership=instance, by=self.request.user)


@extend_schema_view(
    list=extend_schema(summary="List the pending invitations of the organizations you are an admin of"),
    create=extend_schema(summary="Invite someone by e-mail address (admins); the same answer whoever it is"),
    destroy=extend_schema(summary="Revoke a pending invitation (admins)"),
    resend=extend_schema(
        summary="Send an invitation again, with a new link (admins; rate-limited: 429)",
        request=InvitationResendSerializer,
    ),
)
class InvitationViewSet(*READ, mixins.CreateModelMixin, mixins.DestroyModelMixin, ScopedViewSet):
    """Invitations to join an organization: the invited person accepts through the link e-mailed to them."""

    selector = selectors.invitation_list
    serializer_class = InvitationSerializer
    create_serializer_class = InvitationCreateSerializer
    filterset_class = filters.InvitationFilter
    search_fields = ["email"]
    ordering_fields = ["created_at", "expires_at", "email"]

    def perform_create(self, serializer):
        serializer.instance = services.invitation_create(by=self.request.user, **serializer.validated_data)

    def perform_destroy(self, instance):
        services.invitation_revoke(invitation=instance, by=self.request.user)

    @action(detail=True, methods=["post"])
    def resend(self, request: Request, pk: str) -> Response:
        InvitationResendSerializer(data=request.data).is_valid(raise_exception=True)
        invitation = services.invitation_resend(invitation=self.get_object(), by=request.user)
        return Response(InvitationSerializer(invitation).data)


@extend_schema_view(
    list=extend_schema(summary="List projects with latest health, spend to date, budget and open risks"),
    transition=extend_schema(
        summary="Move a project to another stage",
        request=TransitionRequestSerializer,
        responses={
            201: TransitionSerializer,
            409: OpenApiResponse(TransitionErrorSerializer, description="Unmet gates, each listed in `missing`."),
        },
    ),
)
class ProjectViewSet(*READ, mixins.CreateModelMixin, mixins.UpdateModelMixin, HistoryMixin, ScopedViewSet):
    """Projects of your organizations. Archive a project (`archived: true`) instead of deleting it."""

    selector = project_list_with_figures  # with the figures ops registers (projects/figures.py)
    serializer_class = ProjectSerializer
    create_serializer_class = ProjectCreateSerializer
    filterset_class = filters.ProjectFilter
    search_fields = ["name", "slug", "summary"]
    ordering_fields = ["name", "stage", "health", "start_date", "target_date", "created_at", "spend_to_date"]
    ordering_fields += ["open_risks", "critical_risks"]

    def get_queryset(self) -> QuerySet[Project]:
        projects = super().get_queryset()
        # A list shows organization and team as ids: joining their rows would only cost.
        return projects.select_related(None) if self.action == "list" else projects

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        organization = data.pop("organization", None) or self.only_organization()
        project = services.project_create(organization=organization, by=self.request.user, **data)
        serializer.instance = self.get_queryset().get(pk=project.pk)

    def perform_update(self, serializer):
        project = services.project_update(
            project=serializer.instance, by=self.request.user, **serializer.validated_data
        )
        serializer.instance = self.get_queryset().get(pk=project.pk)

    @action(detail=True, methods=["post"])
    def transition(self, request: Request, pk: str) -> Response:
        project = self.get_object()
        body = TransitionRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        moved = services.project_transition(project=project, by=request.user, **body.validated_data)
        return Response(TransitionSerializer(moved).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="The project's history: every recorded change to it and what belongs to it, newest first",
        responses=AuditEventSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def history(self, request: Request, pk: str) -> Response:
        return self.history_response(selectors.audit_history(project=self.get_object()))


class StatusUpdateViewSet(*READ, mixins.CreateModelMixin, ScopedViewSet):
    """Status updates: a history, so they are logged, never edited. The newest sets the project's health."""

    selector = selectors.status_update_list
    serializer_class = StatusUpdateSerializer
    filterset_class = filters.StatusUpdateFilter
    search_fields = ["summary", "blockers"]
    ordering_fields = ["date", "created_at", "health"]

    def perform_create(self, serializer):
        serializer.instance = services.status_update_create(by=self.request.user, **serializer.validated_data)


class StageTransitionViewSet(*READ, ScopedViewSet):
    """Stage history of your projects (read-only: history is never edited)."""

    selector = selectors.stage_transition_list
    serializer_class = TransitionSerializer
    filterset_class = filters.StageTransitionFilter
    search_fields = ["note", "override_reason"]
    ordering_fields = ["at"]


class ChangeFeedEventSerializer(AuditEventSerializer):
    organization = serializers.IntegerField(source="organization_id")
    project = serializers.IntegerField(source="project_id", allow_null=True)


@extend_schema_view(
    list=extend_schema(
        summary="The change feed: every recorded change in your organizations, oldest first, by cursor (managers)",
        description=(
            "Creations, updates and deletions of every audited object, paged by cursor on (at, id): follow `next`"
            " to the end, keep `resume` and follow it later for what happened since. Membership, token and"
            " invitation events are shown to admins only."
        ),
    ),
    retrieve=extend_schema(summary="One recorded change"),
)
class AuditEventViewSet(*READ, ScopedViewSet):
    """The organization-wide change feed, built on the history (read-only: history is never edited)."""

    selector = selectors.audit_event_feed
    serializer_class = ChangeFeedEventSerializer
    filterset_class = filters.AuditEventFilter
    ordering_fields: list[str] = []
    sync_field = "at"
    cursor_only = True


def _reauthenticated(view: ScopedViewSet, request: Request) -> dict:
    """Validate a token-creation body and confirm the caller's password; return the body without it.

    Tokens are minted from a signed-in session only, never with another token.
    """
    if request.auth is not None:
        raise NotPermitted("Create tokens from a signed-in session, not with another token.")
    body = view.get_serializer(data=request.data)
    body.is_valid(raise_exception=True)
    data = dict(body.validated_data)
    services.user_password_confirm(user=request.user, password=data.pop("password"), request=request._request)
    return data


@extend_schema_view(
    create=extend_schema(
        summary="Create a personal API token (signed-in browser session and your password only)",
        request=ApiTokenCreateSerializer,
        responses={201: ApiTokenCreatedSerializer},
    ),
    destroy=extend_schema(summary="Revoke a token"),
)
class ApiTokenViewSet(*READ, mixins.CreateModelMixin, mixins.DestroyModelMixin, ScopedViewSet):
    """Your personal API tokens. The key is shown once, when created; only its hash is kept."""

    selector = selectors.api_token_list
    serializer_class = ApiTokenSerializer
    create_serializer_class = ApiTokenCreateSerializer
    search_fields = ["name"]
    ordering_fields = ["created_at", "expires_at", "last_used_at", "name"]
    service_tokens_refused = True
    idempotency_withheld_fields = frozenset({"key"})  # shown once, never stored: a replayed create omits it

    def create(self, request: Request, *args, **kwargs) -> Response:
        data = _reauthenticated(self, request)
        token, key = services.api_token_create(user=request.user, name=data["name"], expires_at=data.get("expires_at"))
        token.key = key
        return Response(ApiTokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        services.api_token_revoke(token=instance, by=self.request.user)


@extend_schema_view(
    list=extend_schema(summary="List the service tokens of the organizations you administer"),
    create=extend_schema(
        summary="Create a service token (admins; signed-in browser session and your password only)",
        request=ServiceTokenCreateSerializer,
        responses={201: ServiceTokenCreatedSerializer},
    ),
    destroy=extend_schema(summary="Revoke a service token (admins)"),
)
class ServiceTokenViewSet(*READ, mixins.CreateModelMixin, mixins.DestroyModelMixin, ScopedViewSet):
    """Tokens of an organization, not of a person: for integrations, OTLP exporters and imports.

    A `read` token reads like a viewer; an `ingest` token also writes through the ingest endpoints
    (bulk costs, usage) and nothing else. They outlive their creator's password and membership.
    """

    selector = selectors.service_token_list
    serializer_class = ServiceTokenSerializer
    create_serializer_class = ServiceTokenCreateSerializer
    filterset_class = filters.ServiceTokenFilter
    search_fields = ["name"]
    ordering_fields = ["created_at", "expires_at", "last_used_at", "name"]
    service_tokens_refused = True
    idempotency_withheld_fields = frozenset({"key"})  # shown once, never stored: a replayed create omits it

    def create(self, request: Request, *args, **kwargs) -> Response:
        token, key = services.service_token_create(by=request.user, **_reauthenticated(self, request))
        token.key = key
        return Response(ServiceTokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        services.api_token_revoke(token=instance, by=self.request.user)
