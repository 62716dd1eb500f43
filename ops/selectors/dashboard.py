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
    RiskSnapshot,
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
    report_week,
    review_overdue,
    status_stale,
    with_budget_status,
    with_overdue_reviews,
)
from projects.gates import gates_annotate, gates_unmet
from projects.models import Health, Organization, Project, Stage, StageTransition
from projects.selectors import project_list
from projects.services import organization_today

MONTHS = 12
WEEKS = 12
TOP = 5
OVERDUE = 10
LISTED = 8  # rows of a dashboard list: the rest are a link away


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


@dataclass(frozen=True)
class RiskCounts:
    """Risks counted two ways from one grouped query: the 5×5 heat map and the count per severity."""

    heatmap: list[list[HeatCell]]
    by_severity: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_severity.values())

    @property
    def severities(self) -> list[tuple[str, str, int]]:
        """(code, label, count) per severity, the most severe first."""
        return [(s.value, s.label, self.by_severity[s.value]) for s in reversed(Severity)]


@dataclass(frozen=True)
class WeekFigure:
    """One week of the dashboard's trends: its spend and the open risks per severity at its end."""

    start: dt.date
    end: dt.date  # its Sunday, or today for the current week
    spend: Decimal
    incomplete: bool  # the week's spend leaves out unpriced usage
    risks: dict[str, int] | None  # the week's last risk snapshot (the current week: live); None without one

    @property
    def label(self) -> str:
        return f"{self.start.day} {self.start:%b}"

    @property
    def by_severity(self) -> list[int | None]:
        """The risk counts, the most severe first (the order of `RiskCounts.severities`); None without a snapshot."""
        return [None if self.risks is None else self.risks[s.value] for s in reversed(Severity)]


@dataclass
class PortfolioOverview:
    project_count: int
    health: dict[str, int]
    funnel: list[tuple[str, str, int]]
    months: list[MonthFigure]
    top_risks: list[Risk]
    needs_attention: list[Project]
    latest_reports: list[Report]
    risks: RiskCounts
    weeks: list[WeekFigure]
    overdue_reviews: list[Risk]
    over_tolerance: list[Project]  # the first few, the most urgent first
    over_tolerance_count: int
    moves: list[StageTransition]
    week_start: dt.date  # the first day of the last seven, which `moves` cover

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


def risk_counts(*, risks: QuerySet[Risk]) -> RiskCounts:
    """Return the heat map and the severity counts of `risks` (one query): the dashboard's and the risk page's.

    The grid's rows are impact 5→1, its columns likelihood 1→5.
    """
    cells: dict[tuple[int, int], int] = defaultdict(int)
    by_severity = dict.fromkeys(Severity.values, 0)
    for row in risks.order_by().values("likelihood", "impact", "severity").annotate(n=Count("pk")):
        cells[row["likelihood"], row["impact"]] += row["n"]
        by_severity[row["severity"]] += row["n"]
    heatmap = [[HeatCell(lk, im, cells[lk, im]) for lk in range(1, 6)] for im in range(5, 0, -1)]
    return RiskCounts(heatmap=heatmap, by_severity=by_severity)


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
    active = Risk.objects.filter(organization=organization, status__in=RiskStatus.active()).select_related(
        "project", "owner"
    )
    top_risks = list(active.order_by("-score", "next_review_date", "title")[:TOP])
    risks = risk_counts(risks=active)
    needing = projects_needing_attention(user=user, organization=organization)
    over_tolerance = [row for row in needing if row.budget is not None and row.budget.over_tolerance]
    week_start = today - dt.timedelta(days=6)
    return PortfolioOverview(
        project_count=counts["total"],
        health=health,
        funnel=[(s.value, s.label, counts[f"stage_{s.value}"]) for s in Stage],
        months=months,
        top_risks=top_risks,
        needs_attention=needing[:LISTED],
        latest_reports=list(
            Report.objects.filter(organization=organization)
            .select_related("project")
            .order_by("-period_start", "-created_at")[:TOP]
        ),
        risks=risks,
        weeks=_weekly(organization=organization, projects=live, today=today, risks_now=risks.by_severity),
        overdue_reviews=list(active.filter(review_overdue(today)).order_by("next_review_date", "pk")[:OVERDUE]),
        # The budget status read for needs attention (`portfolio.with_budget_status`), not computed again.
        over_tolerance=over_tolerance[:LISTED],
        over_tolerance_count=len(over_tolerance),
        moves=list(
            StageTransition.objects.filter(
                project__organization=organization,
                at__gte=dt.datetime.combine(week_start, dt.time.min, tzinfo=organization.tzinfo),
            )
            .select_related("project", "by")
            .order_by("-at", "-pk")[:20]
        ),
        week_start=week_start,
    )


CROSSINGS_SHOWN = 5


def _weekly(
    *, organization: Organization, projects: QuerySet[Project], today: dt.date, risks_now: dict[str, int]
) -> list[WeekFigure]:
    """Return the last twelve weeks (Monday to Sunday, the current one to today): spend and open risks.

    Spend is `portfolio.monthly_spend` over the weeks (snapshots for past days); the risks are the
    daily `RiskSnapshot` of each week's last snapshot day, and today's counts for the current week.
    """
    starts = [report_week(today - dt.timedelta(weeks=n))[0] for n in range(WEEKS - 1, -1, -1)]
    spans = [(start, min(start + dt.timedelta(days=6), today)) for start in starts]
    spend = monthly_spend(projects=projects, months=spans)
    snapshots: dict[dt.date, RiskSnapshot] = {}
    for snapshot in RiskSnapshot.objects.filter(organization=organization, date__range=(starts[0], today)).order_by(
        "date"
    ):
        snapshots[report_week(snapshot.date)[0]] = snapshot  # the week's last one wins
    weeks = []
    for start, end in spans:
        snapshot = snapshots.get(start)
        if end == today:
            risks = risks_now
        elif snapshot is None:
            risks = None
        else:
            risks = {name: getattr(snapshot, name) for name in RiskSnapshot.SEVERITY_FIELDS}
        weeks.append(
            WeekFigure(
                start=start,
                end=end,
                spend=spend[start].amount.quantize(Decimal("0.01")),
                incomplete=spend[start].incomplete,
                risks=risks,
            )
        )
    return weeks


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
        heatmap=risk_counts(risks=risks.filter(status__in=RiskStatus.active())).heatmap,
    )


def project_infrastructure(*, project: Project) -> list[InfrastructureComponent]:
    return list(InfrastructureComponent.objects.filter(project=project).order_by("environment", "kind"))


def _active_first() -> Case:
    return Case(When(status__in=RiskStatus.active(), then=Value(0)), default=Value(1), output_field=IntegerField())


@dataclass
class RiskOverview:
    heatmap: list[list[HeatCell]]
    counts: RiskCounts  # the summary cards: the organization's active risks, as the dashboard counts them
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
        heatmap=risk_counts(risks=risks).heatmap,
        counts=risk_counts(risks=active),
        top_risks=list(active.order_by("-score", "title")[:TOP]),
        overdue=list(active.filter(review_overdue(today)).order_by("next_review_date", "pk")[:OVERDUE]),
        signals=list(active.filter(source=RiskSource.SIGNAL).order_by("-updated_at")[:10]),
    )
