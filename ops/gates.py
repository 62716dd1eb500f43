"""The stage gates that read ops data, registered into projects.gates by `OpsConfig.ready()`."""

from urllib.parse import urlencode

from django.db.models import OuterRef
from django.db.models.lookups import IsNull
from django.urls import reverse

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
from projects.gates import Gate, form_url, register
from projects.models import AIActTier, DataClassification, Project, Role, Stage
from tracker.db import row_absent, row_exists


def _assessed(**filters: object) -> IsNull:
    return row_exists(RiskAssessment.objects.filter(risk__project=OuterRef("pk"), **filters))


def _risks(project: Project) -> str:
    return f"{reverse('ops:risks')}?{urlencode({'project': project.pk})}"


register(
    Gate(
        "budget",
        "A budget is recorded",
        lambda: row_exists(Budget.objects.filter(project=OuterRef("pk"))),
        20,
        fix=form_url("budget"),
        hint="Record the budget",
        fix_role=Role.MANAGER,
    )
)
register(
    Gate(
        "infrastructure",
        "Infrastructure is recorded",
        lambda: row_exists(InfrastructureComponent.objects.filter(project=OuterRef("pk"))),
        30,
        fix=form_url("infrastructure"),
        hint="Record an infrastructure component",
    )
)
register(
    Gate(
        "risk_review",
        "A risk review happened (at least one risk assessed)",
        _assessed,
        40,
        fix=_risks,
        hint="Assess a risk of the project in the register",
    )
)
register(
    Gate(
        "critical_risks_mitigated",
        "No open critical risk without a mitigation plan",
        lambda: row_absent(
            Risk.objects.filter(
                project=OuterRef("pk"), status=RiskStatus.OPEN, severity=Severity.CRITICAL, mitigation_plan=""
            )
        ),
        50,
        fix=_risks,
        hint="Write a mitigation plan for each open critical risk",
    )
)
register(
    Gate(
        "quality_metrics",
        "Quality metrics are recorded",
        lambda: row_exists(QualityMetric.objects.filter(project=OuterRef("pk"))),
        60,
        fix=form_url("metric"),
        hint="Record a quality metric",
    )
)
register(
    Gate(
        "compliance_risk",
        "A compliance risk is assessed (EU AI Act high-risk system)",
        lambda: _assessed(risk__category=RiskCategory.COMPLIANCE),
        70,
        applies=lambda project: project.ai_act_tier == AIActTier.HIGH,
        fix=form_url("catalogue"),
        hint="Add and assess a compliance risk (the catalogue has them)",
    )
)
register(
    Gate(
        "privacy_risk",
        "A data-privacy risk is assessed (the project handles personal data)",
        lambda: _assessed(risk__category=RiskCategory.DATA_PRIVACY),
        110,
        stages=(Stage.PRODUCTION,),
        applies=lambda project: project.data_classification in DataClassification.personal(),
        fix=form_url("catalogue"),
        hint="Add and assess a data-privacy risk (the catalogue has them)",
    )
)
