"""Every write of the projects app: organizations, members, teams, projects, stages, status."""

import datetime as dt
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from projects.models import (
    ApiToken,
    Membership,
    Organization,
    Project,
    Role,
    Stage,
    StageTransition,
    StatusUpdate,
    Team,
)
from projects.selectors import membership_get, project_gates
from tracker.exceptions import (
    Conflict,
    NotPermitted,
    TransitionRefused,
    ValidationFailed,
    reject_unknown_fields,
    validate_model,
)

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
}


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
        if owner is not None:
            Membership.objects.create(user=owner, organization=organization, role=Role.ADMIN)
    return organization


def membership_set(
    *, organization: Organization, user: AbstractBaseUser, role: Role, by: AbstractBaseUser
) -> Membership:
    """Add a member or change a member's role (admins only)."""
    membership_require(user=by, organization=organization, role=Role.ADMIN)
    if role not in Role.values:
        raise ValidationFailed(f"Unknown role “{role}”.", errors={"role": [f"Choose one of {', '.join(Role.values)}."]})
    membership, _ = Membership.objects.update_or_create(user=user, organization=organization, defaults={"role": role})
    return membership


def team_create(*, organization: Organization, name: str, by: AbstractBaseUser, description: str = "") -> Team:
    membership_require(user=by, organization=organization, role=Role.ADMIN)
    team = Team(
        organization=organization, name=name, description=description, slug=_unique_slug(organization.teams.all(), name)
    )
    validate_model(team)
    team.save()
    return team


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
    except IntegrityError as exc:
        raise Conflict("A project with this slug already exists.", errors={"slug": ["Already taken."]}) from exc
    return project


def project_update(*, project: Project, by: AbstractBaseUser, **changes: Any) -> Project:
    """Change a project's descriptive fields; the stage moves only through `project_transition`."""
    membership_require(user=by, organization=project.organization, role=Role.CONTRIBUTOR)
    reject_unknown_fields(changes, PROJECT_FIELDS)
    for field, value in changes.items():
        setattr(project, field, value)
    _project_validate(project)
    try:
        with transaction.atomic():
            project.save(update_fields=[*changes, "updated_at"])
    except IntegrityError as exc:
        raise Conflict("A project with this slug already exists.", errors={"slug": ["Already taken."]}) from exc
    return project


def _project_validate(project: Project) -> None:
    if project.team_id and project.team.organization_id != project.organization_id:
        raise ValidationFailed("The team belongs to another organization.", errors={"team": ["Unknown team."]})
    _check_members(
        project.organization,
        business_owner=project.business_owner,
        technical_lead=project.technical_lead,
        human_oversight_owner=project.human_oversight_owner,
    )
    validate_model(
        project,
        exclude=["organization"],
        constraint_errors={"project_target_after_start": ("target_date", "The target date is before the start date.")},
    )


def _move_error(from_stage: str, to_stage: str, note: str) -> str:
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
    if error := _move_error(locked.stage, to_stage, note):
        raise ValidationFailed(error, errors={"to_stage": [error]})

    forward = Stage.order(to_stage) > Stage.order(locked.stage)
    unmet = [g for g in project_gates(project=locked, to_stage=to_stage) if not g.passed] if forward else []
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
    locked.stage, locked.stage_entered_at = to_stage, transition.at
    locked.save(update_fields=["stage", "stage_entered_at", "updated_at"])
    project.stage, project.stage_entered_at = locked.stage, locked.stage_entered_at
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
    locked = Project.objects.select_for_update().get(pk=project.pk)
    if locked.last_status_date is None or date >= locked.last_status_date:
        locked.health, locked.progress, locked.last_status_date = health, progress, date
        locked.save(update_fields=["health", "progress", "last_status_date", "updated_at"])
        project.health, project.progress, project.last_status_date = health, progress, date
    return update


ORGANIZATION_FIELDS = {"name", "currency", "timezone"}


def organization_update(*, organization: Organization, by: AbstractBaseUser, **changes: Any) -> Organization:
    """Change an organization's name, currency or time zone (admins only)."""
    membership_require(user=by, organization=organization, role=Role.ADMIN)
    reject_unknown_fields(changes, ORGANIZATION_FIELDS)
    for field, value in changes.items():
        setattr(organization, field, value)
    validate_model(organization)
    organization.save(update_fields=[*changes, "updated_at"])
    return organization


def team_update(*, team: Team, by: AbstractBaseUser, **changes: Any) -> Team:
    """Rename or describe a team (admins only); its slug stays, links keep working."""
    membership_require(user=by, organization=team.organization, role=Role.ADMIN)
    reject_unknown_fields(changes, {"name", "description"})
    for field, value in changes.items():
        setattr(team, field, value)
    validate_model(team, exclude=["organization"])
    team.save(update_fields=[*changes, "updated_at"])
    return team


def team_delete(*, team: Team, by: AbstractBaseUser) -> None:
    """Delete a team (admins only); its projects stay, without a team."""
    membership_require(user=by, organization=team.organization, role=Role.ADMIN)
    team.delete()


@transaction.atomic
def membership_delete(*, membership: Membership, by: AbstractBaseUser) -> None:
    """Remove a member (admins only); the last admin of an organization cannot be removed."""
    membership_require(user=by, organization=membership.organization, role=Role.ADMIN)
    admins = Membership.objects.select_for_update().filter(organization=membership.organization, role=Role.ADMIN)
    if membership.role == Role.ADMIN and [m.pk for m in admins] == [membership.pk]:
        raise Conflict("An organization keeps at least one admin.", errors={"role": ["The last admin."]})
    membership.delete()


def api_token_create(*, user: AbstractBaseUser, name: str) -> tuple[ApiToken, str]:
    """Create a personal API token; return it with its raw key, which is never stored and shown once."""
    import secrets

    from tracker.api import hash_key

    name = name.strip()
    if not name:
        raise ValidationFailed("Name the token, e.g. after the integration using it.", errors={"name": ["Required."]})
    raw = "llmt_" + secrets.token_urlsafe(32)
    token = ApiToken(user=user, name=name, prefix=raw[:8], key_hash=hash_key(raw))
    validate_model(token, exclude=["user"])
    token.save()
    return token, raw


def api_token_revoke(*, token: ApiToken, by: AbstractBaseUser) -> ApiToken:
    """Revoke a token (its owner only); revoking twice keeps the first time."""
    if token.user_id != by.pk:
        raise NotPermitted("Only the token's owner can revoke it.")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def user_sessions_revoke(*, user: AbstractBaseUser) -> int:
    """Sign the user out everywhere: delete every live session of theirs; return how many."""
    from django.contrib.auth import SESSION_KEY
    from django.contrib.sessions.models import Session

    mine = [
        session.pk
        for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if str(session.get_decoded().get(SESSION_KEY)) == str(user.pk)
    ]
    Session.objects.filter(pk__in=mine).delete()
    return len(mine)
