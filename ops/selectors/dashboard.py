"""Reads behind the dashboard, the project page's ops sections and the risk page.

Each figure is one aggregate query, so a page costs the same number of queries whatever the
size of the portfolio; Python only reshapes the few rows the database returns.
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Case, Count, IntegerField, Q, QuerySet, Sum, Value, When

from ops.models import (
    Budget,
    BudgetThresholdCrossing,
    CostCategory,
    CostEntry,
    InfrastructureComponent,
    Report,
    Risk,
    RiskSource,
    RiskStatus,
    Severity,
)
from ops.selectors.portfolio import (
    ProjectBudgets,
    Spend,
    attention_rank,
    attention_reasons,
    budget_status_of,
    created_on,
    monthly_spend,
    project_cost_figures,
    status_stale,
    with_budget_status,
    with_overdue_reviews,
)
from projects.gates import gates_annotate, gates_unmet
from projects.models import Health, Organization, Project, Stage
from projects.selectors import project_list
from projects.services import organization_today

MONTHS = 12
TOP = 5


@dataclass(frozen=True)
class MonthFigure:
    month: dt.date
    spend: Decimal
    budget: Decimal
    incomplete: bool = False  # the month's spend leaves out unpriced usage (`portfolio.Spend.incomplete`)

    @property
    def label(self) -> str:
        return self.month.strftime("%b %Y")


@dataclass(frozen=True)
class HeatCell:
    likelihood: int
    impact: int
    count: int

    @property
    def severity(self) -> str:
        return Severity.for_score(self.likelihood * self.impact).value


@dataclass
class PortfolioOverview:
    project_count: int
    health: dict[str, int]
    funnel: list[tuple[str, str, int]]
    months: list[MonthFigure]
    top_risks: list[Risk]
    needs_attention: list[Project]
    latest_reports: list[Report]

    @property
    def months_incomplete(self) -> bool:
        return any(m.incomplete for m in self.months)


@dataclass
class ProjectCosts:
    months: list[MonthFigure]
    by_category: list[dict]
    token_usage: list[dict]
    budgets: ProjectBudgets
    spend: Spend
    # The thresholds its budgets crossed, newest first (ops/services/budgets.py), the latest few.
    crossings: list[BudgetThresholdCrossing]

    @property
    def months_incomplete(self) -> bool:
        return any(m.incomplete for m in self.months)


@dataclass
class ProjectRisks:
    risks: list[Risk]
    heatmap: list[list[HeatCell]]


def _month_starts(today: dt.date, count: int = MONTHS) -> list[dt.date]:
    first = today.replace(day=1)
    months = []
    for _ in range(count):
        months.append(first)
        first = (first - dt.timedelta(days=1)).replace(day=1)
    return months[::-1]


def _next_month(month: dt.date) -> dt.date:
    return (month + dt.timedelta(days=32)).replace(day=1)


def _monthly(projects: QuerySet[Project], budgets: QuerySet[Budget], today: dt.date) -> list[MonthFigure]:
    """Return spend (`portfolio.monthly_spend`) and budget per month for the last twelve months.

    A budget is spread evenly over the days of its period. Budgets are summed per period in the
    database, so Python sees one row per distinct period, not one per budget.
    """
    months = _month_starts(today)
    start, end = months[0], _next_month(months[-1]) - dt.timedelta(days=1)
    spend = monthly_spend(projects=projects, months=[(m, _next_month(m) - dt.timedelta(days=1)) for m in months])
    periods = (
        budgets.filter(period_start__lte=end, period_end__gte=start)
        .order_by()
        .values("period_start", "period_end")
        .annotate(total=Sum("amount"))
    )
    budget: dict[dt.date, Decimal] = defaultdict(Decimal)
    for row in periods:
        days = (row["period_end"] - row["period_start"]).days + 1
        per_day = row["total"] / days
        for month in months:
            overlap = (
                min(row["period_end"], _next_month(month) - dt.timedelta(days=1)) - max(row["period_start"], month)
            ).days + 1
            if overlap > 0:
                budget[month] += per_day * overlap
    return [
        MonthFigure(
            month=m,
            spend=spend[m].amount.quantize(Decimal("0.01")),
            budget=budget[m].quantize(Decimal("0.01")),
            incomplete=spend[m].incomplete,
        )
        for m in months
    ]


def _heatmap(risks: QuerySet[Risk]) -> list[list[HeatCell]]:
    """Return the 5×5 grid of risk counts: rows impact 5→1, columns likelihood 1→5."""
    counts = {
        (row["likelihood"], row["impact"]): row["n"]
        for row in risks.order_by().values("likelihood", "impact").annotate(n=Count("pk"))
    }
    return [[HeatCell(lk, im, counts.get((lk, im), 0)) for lk in range(1, 6)] for im in range(5, 0, -1)]


def projects_needing_attention(*, user: AbstractBaseUser, organization: Organization) -> list[Project]:
    """Return the live projects that need attention today (`portfolio.attention_reasons`), most urgent first.

    Each project carries `attention` (its reasons), `budget` (its budget status) and `stale`.
    """
    today = organization_today(organization)
    projects = project_list(user=user).filter(organization=organization, archived=False).exclude(stage=Stage.RETIRED)
    # Only the figures the reasons need: spend to date is not one of them.
    rows = gates_annotate(with_overdue_reviews(with_budget_status(projects, as_of=today), as_of=today)).order_by(
        "name", "pk"
    )
    needing = []
    for row in rows:
        row.budget = budget_status_of(row)
        row.stale = status_stale(last_status_date=row.last_status_date, created_on=created_on(row), as_of=today)
        row.attention = attention_reasons(
            health=row.health,
            over_budget=row.budget is not None and row.budget.over_budget,
            stale=row.stale,
            overdue_reviews=row.overdue_reviews,
            unmet_gates=gates_unmet(row=row),
        )
        if row.attention:
            needing.append(row)
    return sorted(needing, key=lambda row: attention_rank(health=row.health, reasons=row.attention))


def portfolio_overview(*, user: AbstractBaseUser, organization: Organization) -> PortfolioOverview:
    """Return the dashboard's figures for one organization in a fixed number of queries."""
    today = organization_today(organization)
    live = Project.objects.filter(organization=organization, archived=False)
    counts = live.aggregate(
        total=Count("pk"),
        **{f"health_{h}": Count("pk", filter=Q(health=h)) for h in Health.values},
        **{f"stage_{s}": Count("pk", filter=Q(stage=s)) for s in Stage.values},
    )
    health = {h: counts[f"health_{h}"] for h in Health.values}
    health["none"] = counts["total"] - sum(health.values())
    months = _monthly(live, Budget.objects.filter(project__organization=organization, project__archived=False), today)
    top_risks = list(
        Risk.objects.filter(organization=organization, status__in=RiskStatus.active())
        .select_related("project", "owner")
        .order_by("-score", "next_review_date", "title")[:TOP]
    )
    return PortfolioOverview(
        project_count=counts["total"],
        health=health,
        funnel=[(s.value, s.label, counts[f"stage_{s.value}"]) for s in Stage],
        months=months,
        top_risks=top_risks,
        needs_attention=projects_needing_attention(user=user, organization=organization)[:8],
        latest_reports=list(
            Report.objects.filter(organization=organization)
            .select_related("project")
            .order_by("-period_start", "-created_at")[:TOP]
        ),
    )


CROSSINGS_SHOWN = 5


def project_costs(*, project: Project, as_of: dt.date) -> ProjectCosts:
    """Return the project page's cost figures as of `as_of`, each part one query."""
    costs = CostEntry.objects.filter(project=project)
    figures = project_cost_figures(project=project, as_of=as_of)
    return ProjectCosts(
        months=_monthly(Project.objects.filter(pk=project.pk), Budget.objects.filter(project=project), as_of),
        by_category=[
            row | {"label": CostCategory(row["category"]).label}
            for row in costs.filter(amount__isnull=False, date__lte=as_of)
            .order_by()
            .values("category")
            .annotate(total=Sum("amount"))
            .order_by("-total")
        ],
        token_usage=list(
            costs.filter(Q(input_tokens__gt=0) | Q(output_tokens__gt=0))
            .order_by()
            .values("model")
            .annotate(
                input_tokens=Sum("input_tokens"),
                output_tokens=Sum("output_tokens"),
                requests=Sum("requests"),
                cost=Sum("amount"),
                unpriced=Count("pk", filter=Q(amount__isnull=True)),
            )
            .order_by("-input_tokens")
        ),
        budgets=figures.budgets,
        spend=figures.spend,
        crossings=list(
            BudgetThresholdCrossing.objects.filter(budget__project=project)
            .select_related("budget")
            .order_by("-crossed_on", "-threshold_pct", "-pk")[:CROSSINGS_SHOWN]
        ),
    )


def project_risks(*, project: Project) -> ProjectRisks:
    """Return the project's risks, active first, and the heat map of the active ones."""
    risks = Risk.objects.filter(project=project)
    return ProjectRisks(
        risks=list(risks.select_related("owner").order_by(_active_first(), "-score", "title")),
        heatmap=_heatmap(risks.filter(status__in=RiskStatus.active())),
    )


def project_infrastructure(*, project: Project) -> list[InfrastructureComponent]:
    return list(InfrastructureComponent.objects.filter(project=project).order_by("environment", "kind"))


def _active_first() -> Case:
    return Case(When(status__in=RiskStatus.active(), then=Value(0)), default=Value(1), output_field=IntegerField())


@dataclass
class RiskOverview:
    heatmap: list[list[HeatCell]]
    top_risks: list[Risk]
    overdue: list[Risk]
    signals: list[Risk]


def risk_overview(*, organization: Organization, risks: QuerySet[Risk]) -> RiskOverview:
    """Return the risk page's panels; the heat map follows the page's filters (except its own cell)."""
    today = organization_today(organization)
    active = Risk.objects.filter(organization=organization, status__in=RiskStatus.active()).select_related(
        "project", "owner"
    )
    return RiskOverview(
        heatmap=_heatmap(risks),
        top_risks=list(active.order_by("-score", "title")[:TOP]),
        overdue=list(active.filter(next_review_date__lt=today).order_by("next_review_date")[:10]),
        signals=list(active.filter(source=RiskSource.SIGNAL).order_by("-updated_at")[:10]),
    )
