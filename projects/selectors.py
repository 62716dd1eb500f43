"""Reads of the projects app that are more than a `get`."""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from projects.models import (
    AIActTier,
    ApiToken,
    DataClassification,
    Invitation,
    Membership,
    Organization,
    Project,
    Role,
    Stage,
    StageTransition,
    StatusUpdate,
    Team,
)

GATED_STAGES = (Stage.PILOT, Stage.PRODUCTION)


def membership_get(*, user: AbstractBaseUser, organization: Organization) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, organization=organization).first()


def user_has_role(*, user: AbstractBaseUser, organization: Organization, role: Role) -> bool:
    membership = membership_get(user=user, organization=organization)
    return membership is not None and membership.has_role(role)


def organization_list(*, user: AbstractBaseUser) -> QuerySet[Organization]:
    """Return the organizations the user belongs to."""
    if not user.is_authenticated:
        return Organization.objects.none()
    return Organization.objects.filter(memberships__user=user)


def project_list(*, user: AbstractBaseUser) -> QuerySet[Project]:
    """Return the projects of every organization the user belongs to."""
    return Project.objects.filter(organization__in=organization_list(user=user)).select_related("organization", "team")


@dataclass(frozen=True)
class Gate:
    """One condition a project must meet to enter a gated stage."""

    key: str
    label: str
    passed: bool
    # False for gates no override may bypass (a prohibited AI practice).
    overridable: bool = True

    def as_dict(self) -> dict[str, object]:
        return {"key": self.key, "label": self.label, "overridable": self.overridable}


def project_gates(*, project: Project, to_stage: str) -> list[Gate]:
    """Return every gate for entering `to_stage` (empty for ungated stages), passed or not."""
    from ops.models import (
        Budget,
        InfrastructureComponent,
        QualityMetric,
        Risk,
        RiskAssessment,
        RiskCategory,
        RiskStatus,
        Severity,
    )

    if to_stage not in GATED_STAGES:
        return []
    risks = Risk.objects.filter(project=project).exclude(status=RiskStatus.CLOSED)
    assessed = RiskAssessment.objects.filter(risk__project=project)
    gates = [
        Gate("data_classification", "Data classification is set", bool(project.data_classification)),
        Gate("budget", "A budget is recorded", Budget.objects.filter(project=project).exists()),
        Gate(
            "infrastructure",
            "Infrastructure is recorded",
            InfrastructureComponent.objects.filter(project=project).exists(),
        ),
        Gate("risk_review", "A risk review happened (at least one risk assessed)", assessed.exists()),
        Gate(
            "critical_risks_mitigated",
            "No open critical risk without a mitigation plan",
            not risks.filter(status=RiskStatus.OPEN, severity=Severity.CRITICAL, mitigation_plan="").exists(),
        ),
        Gate("quality_metrics", "Quality metrics are recorded", QualityMetric.objects.filter(project=project).exists()),
    ]
    if project.ai_act_tier == AIActTier.HIGH:
        gates += [
            Gate(
                "compliance_risk",
                "A compliance risk is assessed (EU AI Act high-risk system)",
                assessed.filter(risk__category=RiskCategory.COMPLIANCE).exists(),
            ),
            Gate(
                "human_oversight_owner",
                "A human-oversight owner is named (EU AI Act high-risk system)",
                project.human_oversight_owner_id is not None,
            ),
        ]
    gates.append(
        Gate(
            "ai_act_not_prohibited",
            "The EU AI Act tier is not unacceptable (a prohibited practice never enters pilot or production)",
            project.ai_act_tier != AIActTier.UNACCEPTABLE,
            overridable=False,
        )
    )
    if to_stage == Stage.PRODUCTION:
        gates.append(
            Gate("ai_act_assessed", "The EU AI Act tier is assessed", project.ai_act_tier != AIActTier.UNASSESSED)
        )
        if project.data_classification in DataClassification.personal():
            gates.append(
                Gate(
                    "privacy_risk",
                    "A data-privacy risk is assessed (the project handles personal data)",
                    assessed.filter(risk__category=RiskCategory.DATA_PRIVACY).exists(),
                )
            )
    return gates


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
    from tracker.api import hash_key

    return Invitation.objects.select_related("organization", "invited_by").filter(key_hash=hash_key(key)).first()


def status_update_list(*, user: AbstractBaseUser) -> QuerySet[StatusUpdate]:
    return StatusUpdate.objects.filter(project__in=project_list(user=user)).select_related("project", "author")


def stage_transition_list(*, user: AbstractBaseUser) -> QuerySet[StageTransition]:
    return StageTransition.objects.filter(project__in=project_list(user=user)).select_related("project", "by")


def audit_history(*, project: Project | None = None, obj: object | None = None) -> QuerySet:
    """Return the recorded changes of a project (everything in it) or of one object, newest first."""
    from projects.models import AuditEvent

    events = AuditEvent.objects.select_related("actor", "token")
    if project is not None:
        events = events.filter(project_id=project.pk)
    if obj is not None:
        events = events.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk))
    return events
