"""Every write of the projects app: organizations, members, teams, projects, stages, status."""

import datetime as dt
import math
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from projects import audit, hooks
from projects.models import (
    AIActTier,
    ApiToken,
    CostCentre,
    DataClassification,
    Invitation,
    Membership,
    NotificationKind,
    NotificationSubscription,
    Organization,
    Project,
    Role,
    ServiceAccount,
    Stage,
    StageTransition,
    StatusUpdate,
    Team,
    TokenScope,
)
from projects.selectors import membership_get, transition_check
from projects.services_helpers import model_update
from tracker.exceptions import (
    Conflict,
    NotPermitted,
    TooManyRequests,
    TransitionRefused,
    ValidationFailed,
    reject_unknown_fields,
    validate_model,
)
from webhooks.models import EventType
from webhooks.outbox import emit

User = get_user_model()

PROJECT_FIELDS = {
    "name",
    "slug",
    "summary",
    "team",
    "industry",
    "use_case",
    "business_owner",
    "technical_lead",
    "human_oversight_owner",
    "start_date",
    "target_date",
    "data_classification",
    "ai_act_tier",
    "archived",
    "otel_service_names",
    "cost_centre",
    "tags",
}
# A project's OpenTelemetry service names (the OTLP receiver maps spans by them): how many, how long.
MAX_SERVICE_NAMES = 20
MAX_SERVICE_NAME_LENGTH = 200


def membership_require(*, user: AbstractBaseUser, organization: Organization, role: Role) -> Membership:
    """Return the user's membership, or refuse when its role is below `role`."""
    membership = membership_get(user=user, organization=organization)
    if membership is None or not membership.has_role(role):
        raise NotPermitted(f"This needs the {Role(role).label.lower()} role in {organization.name}.")
    return membership


def organization_today(organization: Organization) -> dt.date:
    return timezone.localdate(timezone=organization.tzinfo)


def _unique_slug(queryset, base: str, *, exclude_pk: int | None = None) -> str:
    """Return `base`, or `base-2`, `base-3`… whichever is free in `queryset`."""
    base = (slugify(base) or "item")[:70]
    taken = set(queryset.exclude(pk=exclude_pk).filter(slug__startswith=base).values_list("slug", flat=True))
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


def _check_members(organization: Organization, **users: Any) -> None:
    """Refuse people who are not members of the organization."""
    errors = {}
    for field, user in users.items():
        if user is not None and not Membership.objects.filter(user=user, organization=organization).exists():
            errors[field] = [f"{user} is not a member of {organization.name}."]
    if errors:
        raise ValidationFailed(next(iter(errors.values()))[0], errors=errors)


def organization_create(
    *,
    name: str,
    slug: str = "",
    currency: str = "USD",
    timezone_name: str = "UTC",
    owner: AbstractBaseUser | None = None,
) -> Organization:
    """Create an organization; its `owner`, when given, becomes its first admin."""
    organization = Organization(
        name=name,
        slug=slug or _unique_slug(Organization.objects.all(), name),
        currency=currency,
        timezone=timezone_name,
    )
    validate_model(organization)
    with transaction.atomic():
        organization.save()
        audit.record_created(organization)
        if owner is not None:
            audit.record_created(Membership.objects.create(user=owner, organization=organization, role=Role.ADMIN))
    return organization


def _members_manage_require(*, by: AbstractBaseUser, organization: Organization, as_operator: bool) -> None:
    """Organization admins manage members; so do platform operators, from the admin site (`as_operator`)."""
    if not as_operator:
        membership_require(user=by, organization=organization, role=Role.ADMIN)
    elif not (by.is_active and by.is_staff and by.has_perm("projects.change_membership")):
        raise NotPermitted("Only platform operators manage memberships from the admin site.")


def _last_admin_refuse(*, membership: Membership) -> None:
    """Refuse to take away the organization's last admin.

    The admin rows are locked first: two admins demoting or removing each other at once are
    serialised, and the second is judged on the first's result (the first is then no admin).
    """
    admins = list(
        Membership.objects.select_for_update()
        .filter(organization_id=membership.organization_id, role=Role.ADMIN)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if admins == [membership.pk]:
        raise Conflict(
            "An organization keeps at least one admin: make someone else admin first.",
            errors={"role": ["The last admin."]},
        )


@transaction.atomic
def membership_create(
    *, organization: Organization, user: AbstractBaseUser, role: str, by: AbstractBaseUser
) -> Membership:
    """Add someone to an organization directly (platform operators only); tenants invite by e-mail."""
    _members_manage_require(by=by, organization=organization, as_operator=True)
    if ServiceAccount.objects.filter(user=user).exists():
        # Its one membership is its scope's role in its own organization: anything else would widen the scope.
        raise ValidationFailed("A service account is not a person.", errors={"user": ["Not a person."]})
    membership = Membership(organization=organization, user=user, role=role)
    validate_model(membership)
    membership.save()
    audit.record_created(membership)
    return membership


@transaction.atomic
def membership_role_set(
    *, membership: Membership, role: str, by: AbstractBaseUser, as_operator: bool = False
) -> Membership:
    """Change a member's role (admins; operators from the admin site); the last admin stays admin."""
    _members_manage_require(by=by, organization=membership.organization, as_operator=as_operator)
    if role not in Role.values:
        raise ValidationFailed(f"Unknown role “{role}”.", errors={"role": [f"Choose one of {', '.join(Role.values)}."]})
    if ServiceAccount.objects.filter(user_id=membership.user_id).exists():
        # Its one membership is its scope's role in its own organization: anything else would widen the scope.
        raise ValidationFailed("A service account's role follows its scope.", errors={"role": ["A service account."]})
    if role != Role.ADMIN:
        _last_admin_refuse(membership=membership)
    membership.refresh_from_db(fields=["role"])
    model_update(instance=membership, data={"role": role}, fields={"role"}, validate=validate_model)
    return membership


def _team_validate(team: Team) -> None:
    _check_members(team.organization, lead=team.lead)
    validate_model(team, exclude=["organization"])


@transaction.atomic
def team_create(
    *,
    organization: Organization,
    name: str,
    by: AbstractBaseUser,
    description: str = "",
    lead: AbstractBaseUser | None = None,
) -> Team:
    """Create a team (admins only); its `lead`, when given, must be a member."""
    membership_require(user=by, organization=organization, role=Role.ADMIN)
    team = Team(
        organization=organization,
        name=name,
        description=description,
        lead=lead,
        slug=_unique_slug(organization.teams.all(), name),
    )
    _team_validate(team)
    team.save()
    audit.record_created(team)
    return team


COST_CENTRE_FIELDS = {"code", "name", "owner"}


def _cost_centre_validate(cost_centre: CostCentre) -> None:
    _check_members(cost_centre.organization, owner=cost_centre.owner)
    # The code's uniqueness is the database's: a taken code is the 409 of `_cost_centre_code_taken`.
    validate_model(cost_centre, exclude=["organization", "owner"])


def _cost_centre_code_taken() -> Conflict:
    return Conflict("A cost centre with this code already exists.", errors={"code": ["This code is taken."]})


def cost_centre_create(
    *, organization: Organization, by: AbstractBaseUser, code: str, name: str, owner: AbstractBaseUser | None = None
) -> CostCentre:
    """Add a cost centre (managers and up); its owner hears of its budget's thresholds."""
    membership_require(user=by, organization=organization, role=Role.MANAGER)
    cost_centre = CostCentre(organization=organization, code=code, name=name, owner=owner)
    _cost_centre_validate(cost_centre)
    try:
        with transaction.atomic():
            cost_centre.save()
            audit.record_created(cost_centre)
    except IntegrityError as exc:  # a concurrent create took the code after the check
        raise _cost_centre_code_taken() from exc
    return cost_centre


@transaction.atomic
def cost_centre_update(*, cost_centre: CostCentre, by: AbstractBaseUser, **changes: Any) -> CostCentre:
    """Change a cost centre's code, name or owner (managers and up); its projects and budgets stay with it."""
    membership_require(user=by, organization=cost_centre.organization, role=Role.MANAGER)
    model_update(
        instance=cost_centre,
        data=changes,
        fields=COST_CENTRE_FIELDS,
        validate=_cost_centre_validate,
        conflict=_cost_centre_code_taken(),
    )
    return cost_centre


@transaction.atomic
def cost_centre_delete(*, cost_centre: CostCentre, by: AbstractBaseUser) -> None:
    """Delete a cost centre (admins only): its projects stay, without one; its budgets go with it.

    Each change is recorded: the budgets' deletion with the cost centre's, each project's lost cost centre.
    """
    membership_require(user=by, organization=cost_centre.organization, role=Role.ADMIN)
    projects = list(cost_centre.projects.select_for_update())
    before = [(project, audit.snapshot(project)) for project in projects]
    audit.record_deleted(cost_centre)  # with the budgets (and their crossings) it cascades to
    cost_centre.delete()
    for project in projects:
        project.cost_centre = None
    audit.record_changed_many(before)


def project_create(*, organization: Organization, by: AbstractBaseUser, name: str, **fields: Any) -> Project:
    """Create a project in `ideation` (contributors and up)."""
    membership_require(user=by, organization=organization, role=Role.CONTRIBUTOR)
    reject_unknown_fields(fields, PROJECT_FIELDS - {"name"})
    project = Project(
        organization=organization, name=name, stage=Stage.IDEATION, stage_entered_at=timezone.now(), **fields
    )
    if not project.slug:
        project.slug = _unique_slug(organization.projects.all(), name)
    _project_validate(project)
    try:
        with transaction.atomic():
            project.save()
            audit.record_created(project)
    except IntegrityError as exc:
        raise _slug_taken() from exc
    return project


def _slug_taken() -> Conflict:
    return Conflict("A project with this slug already exists.", errors={"slug": ["Already taken."]})


@transaction.atomic
def project_update(*, project: Project, by: AbstractBaseUser, **changes: Any) -> Project:
    """Change a project's descriptive fields; the stage moves only through `project_transition`.

    Lowering a set EU AI Act tier or data classification needs a manager: both decide the gates.
    """
    membership = membership_require(user=by, organization=project.organization, role=Role.CONTRIBUTOR)
    reject_unknown_fields(changes, PROJECT_FIELDS)  # before reading them
    if not membership.has_role(Role.MANAGER) and (lowered := _lowered_classifications(project, changes)):
        raise NotPermitted(
            "Only a manager can lower a project's EU AI Act tier or data classification.",
            errors={field: ["Only a manager can lower it."] for field in lowered},
        )
    model_update(
        instance=project, data=changes, fields=PROJECT_FIELDS, validate=_project_validate, conflict=_slug_taken()
    )
    return project


# The fields the stage gates judge a project by, each from its least strict value (not set yet) up.
GATING_FIELDS = {"ai_act_tier": AIActTier.values, "data_classification": ["", *DataClassification.values]}


def _lowered_classifications(project: Project, changes: dict[str, Any]) -> list[str]:
    """Return the gating fields `changes` would lower from a value already set."""
    lowered = []
    for field, order in GATING_FIELDS.items():
        new, current = changes.get(field), getattr(project, field)
        # An unknown value is left to the model's validation, which refuses it.
        if new in order and current in order[1:] and order.index(new) < order.index(current):
            lowered.append(field)
    return lowered


def _project_validate(project: Project) -> None:
    if project.team_id and project.team.organization_id != project.organization_id:
        raise ValidationFailed("The team belongs to another organization.", errors={"team": ["Unknown team."]})
    if project.cost_centre_id and project.cost_centre.organization_id != project.organization_id:
        raise ValidationFailed(
            "The cost centre belongs to another organization.", errors={"cost_centre": ["Unknown cost centre."]}
        )
    # A project already in an archived team stays there; no other joins it.
    if (
        project.team_id
        and project.team.archived
        and (project.pk is None or not Project.objects.filter(pk=project.pk, team_id=project.team_id).exists())
    ):
        message = f"The team “{project.team.name}” is archived: it takes no new project."
        raise ValidationFailed(message, errors={"team": [message]})
    _check_members(
        project.organization,
        business_owner=project.business_owner,
        technical_lead=project.technical_lead,
        human_oversight_owner=project.human_oversight_owner,
    )
    _service_names_validate(project)
    validate_model(
        project,
        exclude=["organization"],
        constraint_errors={"project_target_after_start": ("target_date", "The target date is before the start date.")},
    )


def _service_names_validate(project: Project) -> None:
    """Tidy the project's service names (trimmed, each once) and refuse a name another project of its organization has.

    A service's spans must land in one project; should two saves race to the same name, the receiver
    maps it to the older project.
    """
    names = project.otel_service_names
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ValidationFailed("A list of service names.", errors={"otel_service_names": ["A list of text."]})
    names = list(dict.fromkeys(name.strip() for name in names if name.strip()))
    problems = []
    if len(names) > MAX_SERVICE_NAMES:
        problems.append(f"At most {MAX_SERVICE_NAMES} service names.")
    if any(len(name) > MAX_SERVICE_NAME_LENGTH or "\x00" in name for name in names):
        problems.append(f"Each service name is at most {MAX_SERVICE_NAME_LENGTH} characters.")
    others = (
        Project.objects.filter(organization_id=project.organization_id)
        .exclude(pk=project.pk)
        .exclude(otel_service_names=[])
        .values_list("otel_service_names", flat=True)
        if names
        else ()
    )
    taken = sorted({name for other in others for name in other}.intersection(names))
    if problems or taken:
        problems += [f"“{name}” belongs to another project." for name in taken]
        raise ValidationFailed(problems[0], errors={"otel_service_names": problems})
    project.otel_service_names = names


@transaction.atomic
def project_transition(
    *, project: Project, to_stage: str, by: AbstractBaseUser, note: str = "", override_reason: str = ""
) -> StageTransition:
    """Move a project to `to_stage`, enforcing the lifecycle and the stage gates.

    Refuses with every unmet gate listed. A manager may bypass overridable gates with a written
    justification, which the transition records. The project row is locked, so two concurrent
    moves of one project are serialised and the second is judged against the first's result.
    """
    membership = membership_require(user=by, organization=project.organization, role=Role.CONTRIBUTOR)
    if to_stage not in Stage.values:
        raise ValidationFailed(
            f"Unknown stage “{to_stage}”.", errors={"to_stage": [f"Choose one of {', '.join(Stage.values)}."]}
        )
    override_reason = override_reason.strip()
    if override_reason and not membership.has_role(Role.MANAGER):
        raise NotPermitted("Only a manager can override stage gates.")
    locked = Project.objects.select_for_update().get(pk=project.pk)
    check = transition_check(project=locked, to_stage=to_stage, note=note)
    if check.error:
        raise ValidationFailed(check.error, errors={"to_stage": [check.error]})
    unmet = check.unmet
    if unmet:
        blocking = [g for g in unmet if not g.overridable]
        if blocking or not override_reason:
            reason = "no override can bypass: " + blocking[0].label if blocking else "unmet gates"
            raise TransitionRefused(
                f"Cannot enter {Stage(to_stage).label}: {reason}.", missing=[g.as_dict() for g in unmet]
            )
    transition = StageTransition.objects.create(
        project=locked,
        from_stage=locked.stage,
        to_stage=to_stage,
        at=timezone.now(),
        by=by,
        note=note.strip(),
        overridden_gates=[g.key for g in unmet],
        override_reason=override_reason if unmet else "",
    )
    audit.record_created(transition)
    before = audit.snapshot(locked)
    locked.stage, locked.stage_entered_at = to_stage, transition.at
    locked.save(update_fields=["stage", "stage_entered_at", "updated_at"])
    audit.record_changed(locked, before=before)
    project.stage, project.stage_entered_at = locked.stage, locked.stage_entered_at
    emit(project.organization, EventType.PROJECT_STAGE_CHANGED, transition)
    return transition


STATUS_FIELDS = {"accomplishments", "blockers", "next_steps"}


@transaction.atomic
def status_update_create(
    *, project: Project, by: AbstractBaseUser, date: dt.date, health: str, progress: int, summary: str, **fields: Any
) -> StatusUpdate:
    """Log a status update; the newest one (by date) sets the project's health and progress."""
    membership_require(user=by, organization=project.organization, role=Role.CONTRIBUTOR)
    reject_unknown_fields(fields, STATUS_FIELDS)
    update = StatusUpdate(
        project=project, author=by, date=date, health=health, progress=progress, summary=summary, **fields
    )
    validate_model(update, exclude=["project", "author"])
    if date > organization_today(project.organization):
        raise ValidationFailed("A status update cannot be dated in the future.", errors={"date": ["In the future."]})
    update.save()
    audit.record_created(update)
    locked = Project.objects.select_for_update().get(pk=project.pk)
    if locked.last_status_date is None or date >= locked.last_status_date:
        before = audit.snapshot(locked)
        locked.health, locked.progress, locked.last_status_date = health, progress, date
        locked.save(update_fields=["health", "progress", "last_status_date", "updated_at"])
        audit.record_changed(locked, before=before)
        project.health, project.progress, project.last_status_date = health, progress, date
    emit(project.organization, EventType.STATUS_UPDATE_CREATED, update)
    return update


ORGANIZATION_FIELDS = {"name", "currency", "timezone", "locale"}


@transaction.atomic
def organization_update(*, organization: Organization, by: AbstractBaseUser, **changes: Any) -> Organization:
    """Change an organization's name, currency, time zone or locale (admins only).

    A new currency converts the amounts kept in the organization again from their originals
    (`projects.hooks.currency_changed`), in the same transaction: refused as a whole if one cannot be.
    The organization's row is locked, so two admins' changes are serialised.
    """
    membership_require(user=by, organization=organization, role=Role.ADMIN)
    reject_unknown_fields(changes, ORGANIZATION_FIELDS)
    Organization.objects.select_for_update().filter(pk=organization.pk).first()
    before = organization.currency
    changed = model_update(instance=organization, data=changes, fields=ORGANIZATION_FIELDS, validate=validate_model)
    if "currency" in changed:
        hooks.currency_changed(organization=organization, before=before, by=by)
    return organization


TEAM_FIELDS = {"name", "description", "lead", "archived"}


@transaction.atomic
def team_update(*, team: Team, by: AbstractBaseUser, **changes: Any) -> Team:
    """Rename, describe, lead or archive a team (admins only); its slug stays, links keep working.

    An archived team keeps its projects; it is offered for no other project until restored.
    """
    membership_require(user=by, organization=team.organization, role=Role.ADMIN)
    model_update(instance=team, data=changes, fields=TEAM_FIELDS, validate=_team_validate)
    return team


@transaction.atomic
def team_delete(*, team: Team, by: AbstractBaseUser) -> None:
    """Delete a team (admins only); its projects stay, without a team (each recorded as changed)."""
    membership_require(user=by, organization=team.organization, role=Role.ADMIN)
    projects = list(team.projects.select_for_update())
    before = [(project, audit.snapshot(project)) for project in projects]
    audit.record_deleted(team)
    team.delete()
    for project in projects:
        project.team = None
    audit.record_changed_many(before)


@transaction.atomic
def membership_delete(*, membership: Membership, by: AbstractBaseUser, as_operator: bool = False) -> None:
    """Remove a member (admins; operators from the admin site); the last admin cannot be removed."""
    _members_manage_require(by=by, organization=membership.organization, as_operator=as_operator)
    _last_admin_refuse(membership=membership)
    audit.record_deleted(membership)
    membership.delete()


@transaction.atomic
def notification_subscriptions_set(
    *, user: AbstractBaseUser, organization: Organization, choices: dict[str, bool]
) -> list[NotificationSubscription]:
    """Record which e-mails of the organization the member receives (`choices`: kind → on); return what changed.

    Only the member sets their own; a kind left out keeps its state. Each change is recorded in the
    history; the row's unique constraint keeps one choice per member, organization and kind.
    """
    membership_require(user=user, organization=organization, role=Role.VIEWER)
    if unknown := sorted(set(choices) - set(NotificationKind.values)):
        raise ValidationFailed(f"Unknown notification “{unknown[0]}”.", errors={unknown[0]: ["Unknown."]})
    current = {
        row.kind: row
        for row in NotificationSubscription.objects.select_for_update().filter(user=user, organization=organization)
    }
    changed = []
    for kind, enabled in choices.items():
        row = current.get(kind)
        if row is None:
            if enabled:
                continue  # no row is the default: subscribed
            row = NotificationSubscription.objects.create(
                user=user, organization=organization, kind=kind, enabled=False
            )
            audit.record_created(row)
        elif row.enabled != enabled:
            model_update(instance=row, data={"enabled": bool(enabled)}, fields={"enabled"}, validate=validate_model)
        else:
            continue
        changed.append(row)
    return changed


INVITATION_SUBJECT = "Your invitation to LLMOps Tracker"  # constant: names go in the body, never in a header


def _invitation_key() -> tuple[str, str]:
    """Return a new random link key and its hash (only the hash is stored)."""
    from projects.tokens import hash_key

    raw = secrets.token_urlsafe(32)
    return raw, hash_key(raw)


def _invitation_send(*, invitation: Invitation, key: str) -> None:
    """E-mail the invitation's link once the transaction commits; a failed send is logged, and can be resent."""
    context = {
        "invitation": invitation,
        "inviter": invitation.invited_by,
        "link": settings.SITE_URL.rstrip("/") + reverse("projects:invitation-accept", kwargs={"key": key}),
    }
    text = render_to_string("projects/email/invitation.txt", context)
    transaction.on_commit(
        lambda: send_mail(INVITATION_SUBJECT, text, settings.DEFAULT_FROM_EMAIL, [invitation.email]), robust=True
    )


def _retry_after(moment: dt.datetime) -> int:
    return max(1, math.ceil((moment - timezone.now()).total_seconds()))


@transaction.atomic
def invitation_create(
    *, organization: Organization, email: str, by: AbstractBaseUser, role: str = Role.VIEWER
) -> Invitation:
    """Invite someone by e-mail address (admins only) and send them the link.

    The answer never depends on whether the address has an account, here or in another
    organization: nothing of other tenants can be learnt by inviting. An admin sends at most
    INVITATIONS_PER_HOUR invitations per organization per hour.
    """
    inviter = membership_require(user=by, organization=organization, role=Role.ADMIN)
    now = timezone.now()
    invitation = Invitation(
        organization=organization,
        email=email.strip(),
        role=role,
        invited_by=by,
        created_at=now,
        last_sent_at=now,
        expires_at=now + dt.timedelta(days=settings.INVITATION_TTL_DAYS),
    )
    validate_model(invitation, exclude=["organization", "invited_by", "key_hash"])
    # The inviter's membership row serialises their invitations, so the hourly count cannot be raced.
    Membership.objects.select_for_update().filter(pk=inviter.pk).exists()
    recent = Invitation.objects.filter(
        organization=organization, invited_by=by, created_at__gt=now - dt.timedelta(hours=1)
    ).order_by("created_at")
    if len(sent := list(recent.values_list("created_at", flat=True))) >= settings.INVITATIONS_PER_HOUR:
        raise TooManyRequests(
            f"You have sent {len(sent)} invitations in the last hour: try again later.",
            retry_after=_retry_after(sent[0] + dt.timedelta(hours=1)),
        )
    if Membership.objects.filter(organization=organization, user__email__iexact=invitation.email).exists():
        raise Conflict(
            f"A member of {organization.name} already has this address.", errors={"email": ["Already a member."]}
        )
    if Invitation.objects.pending().filter(organization=organization, email__iexact=invitation.email).exists():
        raise Conflict(
            "This address already has a pending invitation: resend it instead.",
            errors={"email": ["Already invited."]},
        )
    key, invitation.key_hash = _invitation_key()
    invitation.save()
    audit.record_created(invitation)
    _invitation_send(invitation=invitation, key=key)
    return invitation


@transaction.atomic
def invitation_resend(*, invitation: Invitation, by: AbstractBaseUser) -> Invitation:
    """Send a pending invitation again with a new link (the old one stops working) and a new expiry.

    Once per INVITATION_RESEND_MINUTES per invitation.
    """
    membership_require(user=by, organization=invitation.organization, role=Role.ADMIN)
    locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if not locked.is_pending:
        raise Conflict("This invitation was accepted or revoked: it cannot be sent again.")
    next_send = locked.last_sent_at + dt.timedelta(minutes=settings.INVITATION_RESEND_MINUTES)
    if next_send > timezone.now():
        raise TooManyRequests(
            f"This invitation was sent at {locked.last_sent_at:%H:%M} UTC: it can be sent again "
            f"{settings.INVITATION_RESEND_MINUTES} minutes later.",
            retry_after=_retry_after(next_send),
        )
    before = audit.snapshot(locked)
    key, locked.key_hash = _invitation_key()
    locked.last_sent_at = timezone.now()
    locked.expires_at = locked.last_sent_at + dt.timedelta(days=settings.INVITATION_TTL_DAYS)
    locked.send_count += 1
    locked.save(update_fields=["key_hash", "last_sent_at", "expires_at", "send_count"])
    audit.record_changed(locked, before=before)
    _invitation_send(invitation=locked, key=key)
    return locked


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, by: AbstractBaseUser) -> Invitation:
    """Revoke a pending invitation (admins only): its link stops working. Revoking twice keeps the first time."""
    membership_require(user=by, organization=invitation.organization, role=Role.ADMIN)
    locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if locked.accepted_at is not None:
        raise Conflict("This invitation was already accepted: remove the member instead.")
    if locked.revoked_at is None:
        before = audit.snapshot(locked)
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])
        audit.record_changed(locked, before=before)
    return locked


def _invitation_claim(*, key: str) -> Invitation:
    """Lock and return the pending, unexpired invitation of this link key, or refuse."""
    from projects.tokens import hash_key

    invitation = (
        Invitation.objects.select_for_update(of=("self",))
        .select_related("organization")
        .filter(key_hash=hash_key(key))
        .first()
    )
    if invitation is None or invitation.revoked_at is not None:
        raise Conflict("This invitation link is not valid: ask for a new invitation.")
    if invitation.accepted_at is not None:
        raise Conflict("This invitation was already accepted.")
    if invitation.is_expired:
        raise Conflict("This invitation has expired: ask the person who invited you to send it again.")
    return invitation


@transaction.atomic
def invitation_accept(*, key: str, user: AbstractBaseUser) -> Membership:
    """Join the invitation's organization, with its role, as the signed-in `user`.

    The account's e-mail address need not be the invited one: whoever holds the link may accept.
    """
    invitation = _invitation_claim(key=key)
    if Membership.objects.filter(organization=invitation.organization, user=user).exists():
        raise Conflict(f"You are already a member of {invitation.organization.name}.")
    membership = Membership.objects.create(organization=invitation.organization, user=user, role=invitation.role)
    audit.record_created(membership)
    before = audit.snapshot(invitation)
    invitation.accepted_at, invitation.accepted_by = timezone.now(), user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit.record_changed(invitation, before=before)
    return membership


@transaction.atomic
def invitation_accept_new_user(*, key: str, username: str, password: str) -> Membership:
    """Create an account (username and password, Django's password validators) and accept the invitation."""
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError as DjangoValidationError

    invitation = _invitation_claim(key=key)
    user = User(username=username.strip(), email=invitation.email)
    try:
        validate_password(password, user)
    except DjangoValidationError as exc:
        raise ValidationFailed(exc.messages[0], errors={"password": exc.messages}) from exc
    user.set_password(password)
    validate_model(user, exclude=["last_login", "date_joined"])
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:
        raise Conflict("This username is taken: choose another.", errors={"username": ["Taken."]}) from exc
    return invitation_accept(key=key, user=user)


def user_password_confirm(*, user: AbstractBaseUser, password: str, request: HttpRequest | None) -> None:
    """Refuse unless `password` is the user's current password: re-authentication before minting a token.

    It goes through `authenticate()`, so wrong guesses from a stolen session count towards the
    sign-in back-off like any other.
    """
    from projects.auth import signin_refusal

    confirmed = authenticate(request, username=user.get_username(), password=password or "")
    if confirmed is None or confirmed.pk != user.pk:
        refusal = signin_refusal(request)
        message = refusal.message if refusal else "That is not your current password."
        raise ValidationFailed(message, errors={"password": [message]})


def _expiry_check(expires_at: dt.datetime | None, *, required: bool) -> None:
    now = timezone.now()
    latest = now + dt.timedelta(days=settings.API_TOKEN_MAX_LIFETIME_DAYS)
    if expires_at is None:
        if required:
            raise ValidationFailed("A personal token needs an expiry date.", errors={"expires_at": ["Required."]})
        return
    if timezone.is_naive(expires_at):
        raise ValidationFailed("Give the expiry with a time zone.", errors={"expires_at": ["No time zone."]})
    if expires_at <= now:
        raise ValidationFailed("The expiry date is in the past.", errors={"expires_at": ["In the past."]})
    if required and expires_at > latest:
        message = f"A personal token lives at most {settings.API_TOKEN_MAX_LIFETIME_DAYS} days."
        raise ValidationFailed(message, errors={"expires_at": [message]})


def _api_token_make(*, user: AbstractBaseUser, name: str, **fields: Any) -> tuple[ApiToken, str]:
    from projects.tokens import hash_key

    name = name.strip()
    if not name:
        raise ValidationFailed("Name the token, e.g. after the integration using it.", errors={"name": ["Required."]})
    raw = "llmt_" + secrets.token_urlsafe(32)
    token = ApiToken(user=user, name=name, prefix=raw[:8], key_hash=hash_key(raw), **fields)
    validate_model(token, exclude=["user", "organization", "created_by"])
    token.save()
    audit.record_created(token)
    return token, raw


def api_token_expiry_default() -> dt.datetime:
    return timezone.now() + dt.timedelta(days=settings.API_TOKEN_LIFETIME_DAYS)


@transaction.atomic
def api_token_create(
    *,
    user: AbstractBaseUser,
    name: str,
    expires_at: dt.datetime | None = None,
    created_by: AbstractBaseUser | None = None,
) -> tuple[ApiToken, str]:
    """Create a personal API token; return it with its raw key, which is never stored and shown once.

    It expires at `expires_at` (default API_TOKEN_LIFETIME_DAYS from now). A user holds at most
    API_TOKENS_PER_USER live tokens. A request minting a token for its own user confirms the
    password first (`user_password_confirm`); the admin and the command are operators' paths.
    """
    expires_at = expires_at or api_token_expiry_default()
    _expiry_check(expires_at, required=True)
    User.objects.select_for_update().filter(pk=user.pk).first()  # serialise the cap per user
    limit = settings.API_TOKENS_PER_USER
    if ApiToken.objects.live().filter(user=user, organization=None).count() >= limit:
        raise Conflict(f"You already have {limit} live API tokens, the most allowed: revoke one you no longer use.")
    return _api_token_make(user=user, name=name, expires_at=expires_at, created_by=created_by or user)


def _service_account(organization: Organization, scope: TokenScope) -> ServiceAccount:
    """Return the organization's service account for `scope`, creating it (and its membership) the first time."""
    account = ServiceAccount.objects.filter(organization=organization, scope=scope).select_related("user").first()
    if account is not None:
        return account
    # ":" is not allowed in people's usernames, so no person can be (or become) this user.
    user = User(username=f"service:{organization.pk}:{scope}", first_name=f"{organization.name} service"[:150])
    user.set_unusable_password()
    user.save()
    audit.record_created(Membership.objects.create(user=user, organization=organization, role=scope.role))
    return ServiceAccount.objects.create(user=user, organization=organization, scope=scope)


@transaction.atomic
def service_token_create(
    *,
    organization: Organization,
    scope: str,
    name: str,
    by: AbstractBaseUser,
    expires_at: dt.datetime | None = None,
) -> tuple[ApiToken, str]:
    """Create a service token of the organization (admins only); return it with its raw key, shown once.

    It acts as the organization's service account for `scope` (`read`: a viewer's reads; `ingest`:
    reads and the ingest endpoints), whoever created it, and lives until revoked or `expires_at`.
    An organization holds at most API_SERVICE_TOKENS_PER_ORGANIZATION live service tokens.
    """
    membership_require(user=by, organization=organization, role=Role.ADMIN)
    if scope not in TokenScope.values:
        message = f"Choose one of {', '.join(TokenScope.values)}."
        raise ValidationFailed(f"Unknown scope “{scope}”.", errors={"scope": [message]})
    _expiry_check(expires_at, required=False)
    Organization.objects.select_for_update().filter(pk=organization.pk).first()  # serialise the cap and the account
    limit = settings.API_SERVICE_TOKENS_PER_ORGANIZATION
    if ApiToken.objects.live().filter(organization=organization).count() >= limit:
        raise Conflict(f"{organization.name} already has {limit} live service tokens, the most allowed: revoke one.")
    account = _service_account(organization, TokenScope(scope))
    return _api_token_make(
        user=account.user, name=name, organization=organization, scope=scope, expires_at=expires_at, created_by=by
    )


def api_token_revoke(*, token: ApiToken, by: AbstractBaseUser) -> ApiToken:
    """Revoke a token: a personal one by its owner, a service one by its organization's admins.

    Revoking twice keeps the first time.
    """
    if token.is_service:
        membership_require(user=by, organization=token.organization, role=Role.ADMIN)
    elif token.user_id != by.pk:
        raise NotPermitted("Only the token's owner can revoke it.")
    if token.revoked_at is None:
        before = audit.snapshot(token)
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit.record_changed(token, before=before)
    return token


@transaction.atomic
def api_tokens_revoke_personal(*, user: AbstractBaseUser) -> int:
    """Revoke every live personal token of the user (password changed, signed out everywhere); return how many.

    One event per token; a user holds at most API_TOKENS_PER_USER.
    """
    tokens = list(ApiToken.objects.select_for_update().filter(user=user, organization=None, revoked_at=None))
    before = [(token, audit.snapshot(token)) for token in tokens]
    now = timezone.now()
    for token in tokens:
        token.revoked_at = now
    ApiToken.objects.bulk_update(tokens, ["revoked_at"])
    audit.record_changed_many(before)
    return len(tokens)


TOKEN_EXPIRY_SUBJECT = "Your LLMOps Tracker API token expires soon"


def api_token_expiry_warnings_send(*, now: dt.datetime | None = None) -> int:
    """E-mail the owner of each live personal token expiring within API_TOKEN_EXPIRY_WARNING_DAYS; return how many.

    Each token is announced once: `expiry_warned_at` is claimed in the same transaction as the
    sending, so a rerun or a concurrent run skips it and a failed send is retried next time. The
    subject is constant; the token's name appears in the body only.
    """
    from django.core.mail import send_mail
    from django.template.loader import render_to_string
    from django.urls import reverse

    now = now or timezone.now()
    due = (
        ApiToken.objects.live()
        .filter(
            organization=None,
            expiry_warned_at=None,
            expires_at__lte=now + dt.timedelta(days=settings.API_TOKEN_EXPIRY_WARNING_DAYS),
            user__is_active=True,
        )
        .exclude(user__email="")
        .select_related("user")
        .order_by("expires_at", "pk")
    )
    link = settings.SITE_URL.rstrip("/") + reverse("projects:tokens")
    sent = 0
    for token in due:
        with transaction.atomic():
            if not ApiToken.objects.filter(pk=token.pk, expiry_warned_at=None).update(expiry_warned_at=now):
                continue  # a concurrent run announced it
            body = render_to_string("projects/email/token_expiry.txt", {"token": token, "link": link})
            send_mail(TOKEN_EXPIRY_SUBJECT, body, settings.DEFAULT_FROM_EMAIL, [token.user.email])
        sent += 1
    return sent


@transaction.atomic
def user_sessions_revoke(*, user: AbstractBaseUser) -> int:
    """Sign the user out everywhere: delete every live session of theirs, revoke their personal tokens.

    Return how many sessions ended. Service tokens stay: they belong to their organizations.
    """
    from django.contrib.auth import SESSION_KEY
    from django.contrib.sessions.models import Session

    mine = [
        session.pk
        for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if str(session.get_decoded().get(SESSION_KEY)) == str(user.pk)
    ]
    Session.objects.filter(pk__in=mine).delete()
    api_tokens_revoke_personal(user=user)
    return len(mine)
