"""The risk register: create, reassess, accept and close risks."""

import datetime as dt
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from ops.catalogue import CATALOGUE
from ops.models import NistGenAIRisk, OwaspLLMRisk, Risk, RiskAssessment, RiskSource, RiskStatus, Severity
from projects import audit
from projects.models import Membership, Organization, Project, Role
from projects.services import membership_require, organization_today
from projects.services_helpers import model_update
from tracker.exceptions import Conflict, NotPermitted, ValidationFailed, reject_unknown_fields, validate_model
from webhooks.models import EventType
from webhooks.outbox import emit

RISK_FIELDS = {
    "description",
    "treatment",
    "owner",
    "mitigation_plan",
    "residual_likelihood",
    "residual_impact",
    "next_review_date",
    "nist_refs",
    "owasp_refs",
}
UPDATE_FIELDS = RISK_FIELDS | {"title", "category", "likelihood", "impact", "status"}
# Accepting a risk is a manager's decision; so is keeping an acceptance through a reassessment.
RISK_ACCEPT_ROLE = Role.MANAGER


def _risk_validate(risk: Risk) -> None:
    errors: dict[str, list[str]] = {}
    for field, choices in (("nist_refs", NistGenAIRisk), ("owasp_refs", OwaspLLMRisk)):
        refs = getattr(risk, field)
        if not isinstance(refs, list) or any(ref not in choices.values for ref in refs):
            errors[field] = [f"A list of codes from: {', '.join(choices.values)}."]
    if risk.owner_id and not Membership.objects.filter(user_id=risk.owner_id, organization=risk.organization).exists():
        errors["owner"] = ["The owner must be a member of the organization."]
    if risk.project_id and risk.project.organization_id != risk.organization_id:
        errors["project"] = ["Unknown project."]
    if errors:
        raise ValidationFailed(next(iter(errors.values()))[0], errors=errors)
    validate_model(risk, exclude=["organization", "project", "owner", "accepted_by"])


def _assess(risk: Risk, by: AbstractBaseUser | None, note: str = "") -> RiskAssessment:
    """Log the rating the risk was just saved with; its `last_reviewed_at` says when (set before the save)."""
    return RiskAssessment.objects.create(
        risk=risk, assessed_at=risk.last_reviewed_at, by=by, likelihood=risk.likelihood, impact=risk.impact, note=note
    )


@transaction.atomic
def risk_create(
    *,
    by: AbstractBaseUser,
    title: str,
    category: str,
    likelihood: int,
    impact: int,
    project: Project | None = None,
    organization: Organization | None = None,
    **fields: Any,
) -> Risk:
    """Register a risk of a project (or, with `organization` only, of the whole portfolio)."""
    organization = project.organization if project else organization
    if organization is None:
        raise ValidationFailed("A risk belongs to a project or an organization.", errors={"project": ["Required."]})
    membership_require(user=by, organization=organization, role=Role.CONTRIBUTOR)
    reject_unknown_fields(fields, RISK_FIELDS)
    risk = Risk(
        organization=organization,
        project=project,
        title=title,
        category=category,
        likelihood=likelihood,
        impact=impact,
        source=RiskSource.MANUAL,
        last_reviewed_at=timezone.now(),
        **fields,
    )
    _risk_validate(risk)
    risk.save()
    risk.refresh_from_db(fields=["score", "severity"])
    audit.record_created(risk)
    _assess(risk, by, "Initial assessment")
    emit(organization, EventType.RISK_CREATED, risk)
    return risk


def risk_create_from_catalogue(*, project: Project, by: AbstractBaseUser, key: str, **fields: Any) -> Risk:
    """Add a risk of the built-in catalogue to a project; `fields` override the catalogue's."""
    entry = CATALOGUE.get(key)
    if entry is None:
        raise ValidationFailed(f"No catalogue risk “{key}”.", errors={"key": ["Unknown catalogue risk."]})
    values = {
        "title": entry.title,
        "category": entry.category,
        "description": entry.description,
        "mitigation_plan": entry.mitigation_plan,
        "likelihood": entry.likelihood,
        "impact": entry.impact,
        "nist_refs": list(entry.nist_refs),
        "owasp_refs": list(entry.owasp_refs),
    } | fields
    return risk_create(project=project, by=by, **values)


def risk_close_role(*, risk: Risk) -> Role:
    """Return the role that may close the risk: a critical one only a manager, as it clears a stage gate."""
    return Role.MANAGER if risk.severity == Severity.CRITICAL else Role.CONTRIBUTOR


def _locked(risk: Risk) -> Risk:
    """Return the risk's row, locked until the transaction ends: decisions check the state they change."""
    return Risk.objects.select_for_update().get(pk=risk.pk)


ACCEPTANCE_FIELDS = {"accepted_by", "accepted_at", "acceptance_justification", "acceptance_expires", "status_note"}


def _acceptance_end(why: str) -> dict[str, Any]:
    """Return the changes that clear an acceptance; the audit history keeps who had accepted the risk."""
    return {
        "accepted_by": None,
        "accepted_at": None,
        "acceptance_justification": "",
        "acceptance_expires": None,
        "status_note": why,
    }


@transaction.atomic
def risk_update(*, risk: Risk, by: AbstractBaseUser, note: str = "", **changes: Any) -> Risk:
    """Change a risk; a new likelihood or impact is a reassessment and is recorded as one.

    Status moves here only between open and mitigating (or stays as it is): accepting and closing
    are decisions with their own services. Moving an accepted risk to open or mitigating ends its
    acceptance, and so does a reassessment by someone who may not accept risks: the acceptance
    covered the rating a manager saw, not the new one.
    """
    membership = membership_require(user=by, organization=risk.organization, role=Role.CONTRIBUTOR)
    reject_unknown_fields(changes, UPDATE_FIELDS)
    risk = _locked(risk)
    if "status" in changes and changes["status"] != risk.status and changes["status"] not in RiskStatus.active():
        raise ValidationFailed(
            "Use accept or close to accept or close a risk.", errors={"status": ["Only open or mitigating here."]}
        )
    data = dict(changes)
    severity_was = risk.severity
    reassessed = any(f in data and data[f] != getattr(risk, f) for f in ("likelihood", "impact"))
    if risk.status == RiskStatus.ACCEPTED:
        status = data.get("status", risk.status)
        if reassessed and status == RiskStatus.ACCEPTED and not membership.has_role(RISK_ACCEPT_ROLE):
            rating = f"{data.get('likelihood', risk.likelihood)} × {data.get('impact', risk.impact)}"
            data["status"] = RiskStatus.OPEN
            data |= _acceptance_end(
                f"Acceptance ended: reassessed from {risk.likelihood} × {risk.impact} to {rating} "
                f"by {by.get_username()}, who may not accept risks."
            )
        elif status != RiskStatus.ACCEPTED:
            data |= _acceptance_end(f"Acceptance ended by {by.get_username()}.")
    if reassessed:
        data["last_reviewed_at"] = timezone.now()
    model_update(
        instance=risk,
        data=data,
        fields=UPDATE_FIELDS | ACCEPTANCE_FIELDS | {"last_reviewed_at"},
        validate=_risk_validate,
    )
    risk.refresh_from_db(fields=["score", "severity"])
    if reassessed:
        _assess(risk, by, note)
    emit(risk.organization, EventType.RISK_UPDATED, risk)
    if Severity.values.index(risk.severity) > Severity.values.index(severity_was):
        emit(risk.organization, EventType.RISK_ESCALATED, risk)
    return risk


@transaction.atomic
def risk_accept(*, risk: Risk, by: AbstractBaseUser, justification: str, expires: dt.date) -> Risk:
    """Accept an open or mitigating risk (managers only), with a justification and when the acceptance expires.

    The acceptance lasts at most RISK_ACCEPTANCE_MAX_DAYS: it has to be decided again, not granted for ever.
    """
    membership_require(user=by, organization=risk.organization, role=RISK_ACCEPT_ROLE)
    errors = {}
    if not justification.strip():
        errors["justification"] = ["Say why the risk is acceptable."]
    today = organization_today(risk.organization)
    latest = today + dt.timedelta(days=settings.RISK_ACCEPTANCE_MAX_DAYS)
    if expires <= today:
        errors["expires"] = ["The acceptance must expire in the future."]
    elif expires > latest:
        errors["expires"] = [f"At most {settings.RISK_ACCEPTANCE_MAX_DAYS} days ahead: {latest} or earlier."]
    if errors:
        raise ValidationFailed(next(iter(errors.values()))[0], errors=errors)
    risk = _locked(risk)
    if risk.status not in RiskStatus.active():
        raise Conflict(
            f"The risk is {risk.get_status_display().lower()}: only an open or mitigating risk can be accepted.",
            errors={"status": [f"Already {risk.get_status_display().lower()}."]},
        )
    before = audit.snapshot(risk)
    risk.status, risk.accepted_by, risk.accepted_at = RiskStatus.ACCEPTED, by, timezone.now()
    risk.acceptance_justification, risk.acceptance_expires = justification.strip(), expires
    risk.status_note = justification.strip()
    risk.save(
        update_fields=[
            "status",
            "accepted_by",
            "accepted_at",
            "acceptance_justification",
            "acceptance_expires",
            "status_note",
            "updated_at",
        ]
    )
    audit.record_changed(risk, before=before)
    emit(risk.organization, EventType.RISK_ACCEPTED, risk)
    return risk


@transaction.atomic
def risk_close(*, risk: Risk, by: AbstractBaseUser, note: str) -> Risk:
    """Close an open or mitigating risk with a note saying why it no longer applies.

    An accepted risk is reopened first (`risk_update` with status open), so that a close and an
    acceptance sent together cannot both win. A critical risk needs a manager (`risk_close_role`).
    """
    membership = membership_require(user=by, organization=risk.organization, role=Role.CONTRIBUTOR)
    if not note.strip():
        raise ValidationFailed("Say why the risk is closed.", errors={"note": ["This field is required."]})
    risk = _locked(risk)
    if risk.status not in RiskStatus.active():
        raise Conflict(
            f"The risk is {risk.get_status_display().lower()}: only an open or mitigating risk can be closed.",
            errors={"status": [f"Already {risk.get_status_display().lower()}."]},
        )
    role = risk_close_role(risk=risk)
    if not membership.has_role(role):
        raise NotPermitted(f"Closing a {risk.severity} risk needs the {role.label.lower()} role.")
    before = audit.snapshot(risk)
    risk.status, risk.closed_at, risk.status_note = RiskStatus.CLOSED, timezone.now(), note.strip()
    risk.save(update_fields=["status", "closed_at", "status_note", "updated_at"])
    audit.record_changed(risk, before=before)
    emit(risk.organization, EventType.RISK_CLOSED, risk)
    return risk
