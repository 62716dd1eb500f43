"""The project page's ops sections and their forms, registered into projects.panels by `OpsConfig.ready()`."""

import datetime as dt

from django.conf import settings

from ops.forms import (
    BudgetForm,
    CatalogueForm,
    CostEntryForm,
    InfrastructureForm,
    QualityMetricForm,
    RiskForm,
    UsageForm,
)
from ops.selectors.billing import project_billing
from ops.selectors.dashboard import MonthFigure, project_costs, project_infrastructure, project_risks
from ops.selectors.energy import project_energy
from ops.selectors.portfolio import latest_metrics
from projects.models import Project, Role
from projects.panels import Panel, PanelForm, register


def chart_data(months: list[MonthFigure]) -> dict:
    """Return the spend-vs-budget series the chart script draws."""
    return {
        "labels": [m.label for m in months],
        "series": [
            {"label": "Spend", "data": [float(m.spend) for m in months], "type": "bar"},
            {"label": "Budget", "data": [float(m.budget) for m in months], "type": "line"},
        ],
    }


def _costs(*, project: Project, today: dt.date) -> dict:
    costs = project_costs(project=project, as_of=today)
    return vars(costs) | {"cost_chart": chart_data(costs.months), "months_incomplete": costs.months_incomplete}


COST = PanelForm(
    "cost",
    "Add a cost",
    lambda *, project, today, data=None: CostEntryForm(
        data, initial={"date": today}, organization=project.organization
    ),
    "ops:cost-create",
    "Add cost",
)
USAGE = PanelForm(
    "usage",
    "Log token usage",
    lambda *, project, today, data=None: UsageForm(data, initial={"date": today}),
    "ops:usage-create",
    "Log usage",
)
BUDGET = PanelForm(
    "budget",
    "Set a budget",
    lambda *, project, today, data=None: BudgetForm(
        data, initial={"period_start": today.replace(month=1, day=1), "period_end": today.replace(month=12, day=31)}
    ),
    "ops:budget-create",
    "Set budget",
    role=Role.MANAGER,
)
CATALOGUE = PanelForm(
    "catalogue",
    "Add from the catalogue",
    lambda *, project, today, data=None: CatalogueForm(data),
    "ops:risk-catalogue",
    template="ops/includes/catalogue_form.html",
    starts_open=lambda figures: not figures["risks"],
)
RISK = PanelForm(
    "risk",
    "Add a risk",
    lambda *, project, today, data=None: RiskForm(data, organization=project.organization),
    "ops:risk-create",
    "Add risk",
    template="ops/includes/risk_form.html",
)
INFRASTRUCTURE = PanelForm(
    "infrastructure",
    "Record infrastructure",
    lambda *, project, today, data=None: InfrastructureForm(data),
    "ops:infrastructure-create",
    "Record component",
)
METRIC = PanelForm(
    "metric",
    "Record a quality metric",
    lambda *, project, today, data=None: QualityMetricForm(data, initial={"date": today}),
    "ops:metric-create",
    "Record metric",
)

register(Panel("costs", "Costs", "ops/sections/costs.html", 30, _costs, forms=(COST, USAGE, BUDGET)))
register(
    Panel(
        "billing",
        "Billed",
        "ops/sections/billing.html",
        35,
        lambda *, project, today: {
            "billing": project_billing(project=project, as_of=today),
            "billing_threshold": settings.RISK_SIGNAL_BILLING_DRIFT_PCT,
        },
    )
)
register(
    Panel(
        "risks",
        "Risks",
        "ops/sections/risks.html",
        40,
        lambda *, project, today: vars(project_risks(project=project)),
        forms=(CATALOGUE, RISK),
    )
)
register(
    Panel(
        "infrastructure",
        "Infrastructure",
        "ops/sections/infrastructure.html",
        50,
        lambda *, project, today: {"infrastructure": project_infrastructure(project=project)},
        forms=(INFRASTRUCTURE,),
    )
)
register(
    Panel(
        "metrics",
        "Quality",
        "ops/sections/metrics.html",
        60,
        lambda *, project, today: {"metrics": latest_metrics(project=project, as_of=today)},
        forms=(METRIC,),
    )
)
register(
    Panel(
        "energy",
        "Energy",
        "ops/sections/energy.html",
        55,
        lambda *, project, today: project_energy(project=project),
    )
)
