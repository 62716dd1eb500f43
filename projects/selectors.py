"""Reads of the projects app that are more than a `get`."""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q, QuerySet

from projects.gates import GateCheck, project_gates
from projects.models import (
    ApiToken,
    CostCentre,
    Invitation,
    Membership,
    NotificationKind,
    NotificationSubscription,
    Organization,
    Project,
    Role,
    Stage,
    StageTransition,
    StatusUpdate,
    Team,
)


def membership_get(*, user: AbstractBaseUser, organization: Organization) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, organization=organization).first()


def organization_list(*, user: AbstractBaseUser) -> QuerySet[Organization]:
    """Return the organizations the user belongs to."""
    if not user.is_authenticated:
        return Organization.objects.none()
    return Organization.objects.filter(memberships__user=user)


def project_list(*, user: AbstractBaseUser) -> QuerySet[Project]:
    """Return the projects of every organization the user belongs to."""
    return Project.objects.filter(organization__in=organization_list(user=user)).select_related("organization", "team")


def api_token_list(*, user: AbstractBaseUser) -> QuerySet[ApiToken]:
    """Return the user's personal API tokens, newest first, revoked and expired ones included."""
    if not user.is_authenticated:
        return ApiToken.objects.none()
    return ApiToken.objects.filter(user=user, organization=None)


def service_token_list(*, user: AbstractBaseUser) -> QuerySet[ApiToken]:
    """Return the service tokens of the organizations the user administers, newest first."""
    if not user.is_authenticated:
        return ApiToken.objects.none()
    administered = Membership.objects.filter(user=user, role=Role.ADMIN).values("organization")
    return ApiToken.objects.filter(organization__in=administered).select_related("organization", "created_by")


def team_list(*, user: AbstractBaseUser) -> QuerySet[Team]:
    return Team.objects.filter(organization__in=organization_list(user=user)).select_related("organization")


def cost_centre_list(*, user: AbstractBaseUser) -> QuerySet[CostCentre]:
    return CostCentre.objects.filter(organization__in=organization_list(user=user)).select_related("organization")


def cost_centre_list_with_counts(*, organization: Organization) -> QuerySet[CostCentre]:
    """Return the organization's cost centres by code, with their owner and how many projects and budgets each has."""
    return (
        CostCentre.objects.filter(organization=organization)
        .select_related("owner", "organization")
        .annotate(project_count=Count("projects", distinct=True), budget_count=Count("budgets", distinct=True))
        .order_by("code")
    )


def team_list_with_counts(*, organization: Organization) -> QuerySet[Team]:
    """Return the organization's teams, active first, with their lead and how many projects each holds."""
    return (
        Team.objects.filter(organization=organization)
        .select_related("lead")
        .annotate(project_count=Count("projects"))
        .order_by("archived", "name")
    )


def notification_unsubscribed(*, organization: Organization, kind: NotificationKind) -> QuerySet:
    """Return the ids of the organization's members who chose not to receive `kind` (a subquery).

    The one home of the rule every sender applies: no choice recorded means subscribed.
    """
    return NotificationSubscription.objects.filter(organization=organization, kind=kind, enabled=False).values(
        "user_id"
    )


def notification_choices(*, user: AbstractBaseUser, organization: Organization) -> dict[str, bool]:
    """Return the member's choice for every kind of e-mail of the organization (default: subscribed)."""
    recorded = dict(
        NotificationSubscription.objects.filter(user=user, organization=organization).values_list("kind", "enabled")
    )
    return {kind: recorded.get(kind, True) for kind in NotificationKind.values}


def membership_list(*, user: AbstractBaseUser) -> QuerySet[Membership]:
    """Return the memberships of every organization the user belongs to."""
    # Service accounts are the means of service tokens, not members: listed, they could be re-roled or removed.
    return Membership.objects.filter(
        organization__in=organization_list(user=user), user__service_account=None
    ).select_related("user", "organization")


def invitation_list(*, user: AbstractBaseUser) -> QuerySet[Invitation]:
    """Return the pending invitations (expired ones included) of the organizations the user is an admin of."""
    if not user.is_authenticated:
        return Invitation.objects.none()
    administered = Membership.objects.filter(user=user, role=Role.ADMIN).values("organization")
    return (
        Invitation.objects.pending().filter(organization__in=administered).select_related("organization", "invited_by")
    )


def invitation_by_key(*, key: str) -> Invitation | None:
    """Return the invitation whose link carries `key`, whatever its state."""
    from projects.tokens import hash_key

    return Invitation.objects.select_related("organization", "invited_by").filter(key_hash=hash_key(key)).first()


def status_update_list(*, user: AbstractBaseUser) -> QuerySet[StatusUpdate]:
    return StatusUpdate.objects.filter(project__in=project_list(user=user)).select_related("project", "author")


def stage_transition_list(*, user: AbstractBaseUser) -> QuerySet[StageTransition]:
    return StageTransition.objects.filter(project__in=project_list(user=user)).select_related("project", "by")


# Who may act on members and tokens may read about them: these events are for admins only.
ADMIN_ONLY_AUDIT_TYPES = ("projects.membership", "projects.apitoken", "projects.invitation", "webhooks.webhookendpoint")


def audit_event_feed(*, user: AbstractBaseUser) -> QuerySet:
    """Return the change feed of the organizations the user manages: every recorded change, deletions included.

    Managers and admins read it; the membership, token and invitation events of an organization only its admins.
    """
    from projects.models import AuditEvent

    if not user.is_authenticated:
        return AuditEvent.objects.none()
    memberships = Membership.objects.filter(user=user)
    managed = memberships.filter(role__in=[Role.MANAGER, Role.ADMIN]).values("organization")
    administered = memberships.filter(role=Role.ADMIN).values("organization")
    return AuditEvent.objects.filter(organization__in=managed).exclude(
        Q(object_type__in=ADMIN_ONLY_AUDIT_TYPES) & ~Q(organization__in=administered)
    )


def activity_list(*, user: AbstractBaseUser, organization: Organization, project: Project | None = None) -> QuerySet:
    """Return the activity feed of one of the user's organizations (or of one project in it), newest first.

    Every member reads it; the membership, token and invitation events only the organization's admins.
    """
    from projects.activity import told_elsewhere
    from projects.models import AuditEvent

    events = AuditEvent.objects.filter(organization=organization).exclude(told_elsewhere()).select_related("project")
    if project is not None:
        events = events.filter(project_id=project.pk)
    if not Membership.objects.filter(user=user, organization=organization, role=Role.ADMIN).exists():
        events = events.exclude(object_type__in=ADMIN_ONLY_AUDIT_TYPES)
    return events.order_by("-at", "-id")


@dataclass(frozen=True)
class Lifecycle:
    transitions: list[StageTransition]
    next_stage: str | None
    gates: list[GateCheck]  # of the next stage, passed or not


def project_lifecycle(*, project: Project) -> Lifecycle:
    """Return the project's stage history and the gates of its next stage (two queries)."""
    next_stage = Stage.following(project.stage)
    return Lifecycle(
        transitions=list(StageTransition.objects.filter(project=project).select_related("by").order_by("at")),
        next_stage=next_stage,
        gates=project_gates(project=project, to_stage=next_stage) if next_stage else [],
    )


def status_update_history(*, project: Project) -> QuerySet[StatusUpdate]:
    """Return every status update of the project, newest first (the page's timeline and its history)."""
    return StatusUpdate.objects.filter(project=project).select_related("author").order_by("-date", "-created_at", "-pk")


def stage_move_error(from_stage: str, to_stage: str, note: str) -> str:
    """Return why the lifecycle forbids the move, or "" when it allows it."""
    if from_stage == to_stage:
        return f"The project is already in {Stage(to_stage).label}."
    if from_stage == Stage.RETIRED:
        return "A retired project cannot move."
    if to_stage == Stage.RETIRED:
        return ""
    step = Stage.order(to_stage) - Stage.order(from_stage)
    if step > 1:
        following = Stage(Stage.values[Stage.order(from_stage) + 1]).label
        return f"Move one stage at a time: after {Stage(from_stage).label} comes {following}."
    if step < 0 and not note.strip():
        return "Moving back to an earlier stage needs a note saying why."
    return ""


@dataclass(frozen=True)
class TransitionCheck:
    """What the transition service will say of a move, before it is tried."""

    error: str  # why the lifecycle forbids it ("" when it allows it)
    unmet: list[GateCheck]  # the gates a forward move misses (a manager may override the overridable ones)

    @property
    def blocking(self) -> list[GateCheck]:
        return [gate for gate in self.unmet if not gate.overridable]


def transition_check(*, project: Project, to_stage: str, note: str = "") -> TransitionCheck:
    """Return whether moving `project` to `to_stage` is allowed and which gates it misses (at most one query)."""
    error = stage_move_error(project.stage, to_stage, note)
    forward = not error and Stage.order(to_stage) > Stage.order(project.stage)
    unmet = [gate for gate in project_gates(project=project, to_stage=to_stage) if not gate.passed] if forward else []
    return TransitionCheck(error, unmet)


def project_status_updates(*, project: Project, limit: int = 8) -> list[StatusUpdate]:
    """Return the project's newest status updates, newest first."""
    return list(status_update_history(project=project)[:limit])


def audit_history(*, project: Project | None = None, obj: object | None = None) -> QuerySet:
    """Return the recorded changes of a project (everything in it) or of one object, newest first."""
    from projects.models import AuditEvent

    events = AuditEvent.objects.select_related("actor", "token")
    if project is not None:
        events = events.filter(project_id=project.pk)
    if obj is not None:
        events = events.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk))
    return events
