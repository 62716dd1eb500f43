"""The stage gates that read ops data, registered into projects.gates by `OpsConfig.ready()`."""

from django.db.models import OuterRef
from django.db.models.lookups import IsNull

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
from projects.gates import Gate, register
from projects.models import AIActTier, DataClassification, Stage
from tracker.db import row_absent, row_exists


def _assessed(**filters: object) -> IsNull:
    return row_exists(RiskAssessment.objects.filter(risk__project=OuterRef("pk"), **filters))


register(Gate("budget", "A budget is recorded", lambda: row_exists(Budget.objects.filter(project=OuterRef("pk"))), 20))
register(
    Gate(
        "infrastructure",
        "Infrastructure is recorded",
        lambda: row_exists(InfrastructureComponent.objects.filter(project=OuterRef("pk"))),
        30,
    )
)
register(Gate("risk_review", "A risk review happened (at least one risk assessed)", _assessed, 40))
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
    )
)
register(
    Gate(
        "quality_metrics",
        "Quality metrics are recorded",
        lambda: row_exists(QualityMetric.objects.filter(project=OuterRef("pk"))),
        60,
    )
)
register(
    Gate(
        "compliance_risk",
        "A compliance risk is assessed (EU AI Act high-risk system)",
        lambda: _assessed(risk__category=RiskCategory.COMPLIANCE),
        70,
        applies=lambda project: project.ai_act_tier == AIActTier.HIGH,
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
    )
)
