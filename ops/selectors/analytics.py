"""Reads behind the cost analytics page: spend and tokens over time by model, provider and category.

Every chart reads one grouped query (month × model × provider × category) over the cost entries of
the projects in scope, one scan for all of them, so the page costs the same number of queries
whatever the portfolio's size; Python only sums the rows per chart, folds the keys past the largest
few into "Other" and derives the unit costs from the sums. Budget figures (burn rate, forecast at
period end, run-out date) are the portfolio's budget status (`portfolio.with_budget_status`, as the
dashboard reads it), never computed here; so are estimated vs billed (`billing.billed_vs_estimated`,
the project page's figures), summed over the projects per month.

Unit costs divide priced spend by the tokens and requests of the priced entries only: unpriced usage
(amount NULL) would otherwise lower them. Unpriced entries are counted beside each figure.
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncMonth

from ops.models import CostCategory, CostEntry, ModelProvider
from ops.selectors.billing import BillingMonth, billed_vs_estimated
from ops.selectors.dashboard import _month_starts
from ops.selectors.portfolio import BudgetStatus, budget_status_of, with_budget_status
from projects.models import Organization, Project, Team
from projects.selectors import project_list
from tracker.formatting import label

THOUSAND = Decimal(1000)
TOP_KEYS = 6  # keys drawn apiece on a chart; the rest are summed as "Other"
OTHER = "\x00other"  # the folded keys' key: no model, provider or category code can be it


class Dimension:
    MODEL = "model"
    PROVIDER = "provider"
    CATEGORY = "category"


DIMENSIONS = {
    Dimension.MODEL: "Model",
    Dimension.PROVIDER: "Model provider",
    Dimension.CATEGORY: "Category",
}


@dataclass
class Usage:
    """What some cost entries add up to: priced spend, tokens and requests, and the unpriced ones apart."""

    spend: Decimal = Decimal(0)
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0
    priced_tokens: int = 0
    priced_requests: int = 0
    unpriced_entries: int = 0
    unpriced_tokens: int = 0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.cached_input_tokens + self.output_tokens

    @property
    def incomplete(self) -> bool:
        return self.unpriced_entries > 0

    @property
    def cost_per_1k_tokens(self) -> Decimal | None:
        return self.spend * THOUSAND / self.priced_tokens if self.priced_tokens else None

    @property
    def cost_per_request(self) -> Decimal | None:
        return self.spend / self.priced_requests if self.priced_requests else None

    def __iadd__(self, other: "Usage") -> "Usage":
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self


@dataclass
class Breakdown:
    """One chart's data: the usage per month and key (a model, provider or category).

    `keys` and `cells` are what the chart draws (and its table and CSV list): the largest keys by
    spend, the rest folded into Other. `totals` keeps every key apart, for the unit costs.
    """

    dimension: str
    months: list[dt.date]
    keys: list[str]
    cells: dict[tuple[dt.date, str], Usage]
    totals: dict[str, Usage]

    @property
    def title(self) -> str:
        return DIMENSIONS[self.dimension]

    def key_label(self, key: str) -> str:
        if key == OTHER:
            return f"Other {self.title.lower()}s"
        if self.dimension == Dimension.MODEL:
            return key or "Not token usage"
        if self.dimension == Dimension.PROVIDER:
            return label(ModelProvider, key) if key else "Not token usage"
        return label(CostCategory, key)

    def cell(self, month: dt.date, key: str) -> Usage:
        return self.cells.get((month, key), Usage())

    def rows(self) -> list[tuple[dt.date, str, str, Usage]]:
        """(month, key, its label, usage) for each month and key with entries: the table view and the CSV."""
        return [
            (month, key, self.key_label(key), self.cells[month, key])
            for month in self.months
            for key in self.keys
            if (month, key) in self.cells
        ]

    def pivot(self) -> list[tuple[dt.date, list[Usage]]]:
        """Per month, the usage of each of `keys` in their order: the chart's table view."""
        return [(month, [self.cell(month, key) for key in self.keys]) for month in self.months]

    def key_labels(self) -> list[str]:
        return [self.key_label(key) for key in self.keys]

    def key_totals(self) -> list[tuple[str, str, Usage]]:
        """(key, its label, usage) for every key, none folded, largest spend first."""
        return [(key, self.key_label(key), self.totals[key]) for key in _ranked(self.totals)]


@dataclass
class ProjectBudget:
    project: Project
    budget: BudgetStatus


@dataclass
class CostAnalytics:
    organization: Organization
    start: dt.date
    end: dt.date
    total: Usage
    by_model: Breakdown
    by_provider: Breakdown
    by_category: Breakdown
    budgets: list[ProjectBudget] = field(default_factory=list)
    unpriced: list[tuple[str, str, Usage]] = field(default_factory=list)  # (model, its label, usage) per model
    billing: list[BillingMonth] = field(default_factory=list)  # each month's estimate and bill; empty: no bill

    @property
    def usage(self) -> Usage:
        """The token usage (entries naming a model) together: what the headline unit costs divide."""
        total = Usage()
        for usage in self.by_model.totals.values():
            total += usage
        return total

    @property
    def budget_amount(self) -> Decimal:
        return sum((b.budget.amount for b in self.budgets), Decimal(0))

    @property
    def budget_spend(self) -> Decimal:
        return sum((b.budget.spend for b in self.budgets), Decimal(0))

    @property
    def budget_burn_rate(self) -> Decimal:
        return sum((b.budget.burn_rate for b in self.budgets), Decimal(0))

    @property
    def budget_forecast(self) -> Decimal:
        return sum((b.budget.forecast for b in self.budgets), Decimal(0))

    @property
    def budgets_incomplete(self) -> bool:
        return any(b.budget.incomplete for b in self.budgets)


def cost_analytics_projects(
    *, user: AbstractBaseUser, organization: Organization, team: Team | None = None, project: Project | None = None
) -> QuerySet[Project]:
    """Return the organization's live projects the user sees, of one team or one project when given."""
    projects = project_list(user=user).filter(organization=organization, archived=False)
    if team is not None:
        projects = projects.filter(team=team)
    if project is not None:
        projects = projects.filter(pk=project.pk)
    return projects


def _usage_rows(*, entries: QuerySet[CostEntry]) -> list[tuple[dt.date, dict[str, str], "Usage"]]:
    """Return the usage per month × model × provider × category: one grouped query, one scan of the entries.

    Its rows are bounded by the distinct models, providers and categories, not by the portfolio's size;
    every breakdown is a sum over them.
    """
    priced = Q(amount__isnull=False)
    tokens = ("input_tokens", "cached_input_tokens", "output_tokens")
    rows = (
        entries.annotate(month=TruncMonth("date"))
        .order_by()
        .values("month", *DIMENSIONS)
        .annotate(
            spend=Coalesce(Sum("amount"), Decimal(0)),
            **{f"all_{name}": Sum(name) for name in (*tokens, "requests")},
            **{f"priced_{name}": Coalesce(Sum(name, filter=priced), 0) for name in (*tokens, "requests")},
            **{f"unpriced_{name}": Coalesce(Sum(name, filter=~priced), 0) for name in tokens},
            unpriced_entries=Count("pk", filter=~priced),
        )
    )
    return [
        (
            row["month"],
            {dimension: row[dimension] for dimension in DIMENSIONS},
            Usage(
                spend=row["spend"],
                # PostgreSQL sums integers as numeric: back to int for the counts.
                input_tokens=int(row["all_input_tokens"]),
                cached_input_tokens=int(row["all_cached_input_tokens"]),
                output_tokens=int(row["all_output_tokens"]),
                requests=int(row["all_requests"]),
                priced_tokens=sum(int(row[f"priced_{name}"]) for name in tokens),
                priced_requests=int(row["priced_requests"]),
                unpriced_entries=row["unpriced_entries"],
                unpriced_tokens=sum(int(row[f"unpriced_{name}"]) for name in tokens),
            ),
        )
        for row in rows
    ]


def _breakdown(*, rows: list, dimension: str, months: list[dt.date]) -> Breakdown:
    """Return the usage per month and `dimension`; keys past the largest few fold into Other."""
    cells: dict[tuple[dt.date, str], Usage] = defaultdict(Usage)
    totals: dict[str, Usage] = defaultdict(Usage)
    for month, keys, usage in rows:
        if dimension == Dimension.MODEL and not keys[dimension]:
            continue  # not token usage: no model to show it under
        cells[month, keys[dimension]] += usage
        totals[keys[dimension]] += usage
    keys = _ranked(totals)
    if len(keys) > TOP_KEYS + 1:
        folded = set(keys[TOP_KEYS:])
        keys = [*keys[:TOP_KEYS], OTHER]
        for month, key in [cell for cell in cells if cell[1] in folded]:
            cells[month, OTHER] += cells.pop((month, key))
    return Breakdown(dimension=dimension, months=months, keys=keys, cells=dict(cells), totals=dict(totals))


def _ranked(totals: dict[str, Usage]) -> list[str]:
    """Return the keys, largest spend first, then most tokens (unpriced models have no spend), then by code."""
    return sorted(totals, key=lambda key: (-totals[key].spend, -totals[key].tokens, key))


def cost_analytics(
    *, projects: QuerySet[Project], organization: Organization, months: int, today: dt.date
) -> CostAnalytics:
    """Return the cost analytics of `projects` over the last `months` months up to `today`.

    Four queries: the usage rows every breakdown sums, the budget status of each project, and the
    months' estimates and bills.
    """
    starts = _month_starts(today, months)
    start, end = starts[0], today
    rows = _usage_rows(
        entries=CostEntry.objects.filter(project__in=projects.order_by().values("pk"), date__range=(start, end))
    )
    by_model = _breakdown(rows=rows, dimension=Dimension.MODEL, months=starts)
    total = Usage()
    for _, _, usage in rows:
        total += usage
    # The dashboard's budget status (snapshots for past days): one query for every project of the scope.
    covered = with_budget_status(projects.order_by(), as_of=today).filter(budget_id__isnull=False)
    budgets = sorted(
        (ProjectBudget(project=row, budget=budget_status_of(row)) for row in covered),
        key=lambda b: (b.budget.run_out_date or dt.date.max, b.project.name),
    )
    return CostAnalytics(
        organization=organization,
        start=start,
        end=end,
        total=total,
        by_model=by_model,
        by_provider=_breakdown(rows=rows, dimension=Dimension.PROVIDER, months=starts),
        by_category=_breakdown(rows=rows, dimension=Dimension.CATEGORY, months=starts),
        budgets=budgets,
        unpriced=[(key, name, usage) for key, name, usage in by_model.key_totals() if usage.incomplete],
        billing=_billing(projects=projects, months=starts),
    )


def _billing(*, projects: QuerySet[Project], months: list[dt.date]) -> list[BillingMonth]:
    """Return each month's estimate and bill, summed over the projects; none when no month has a bill.

    A month's bill adds up the projects billed in it (None: no bill row); its estimate every project's.
    The difference and drift are BillingMonth's, as on the project page.
    """
    per_project = billed_vs_estimated(projects=projects, first_month=months[0], last_month=months[-1])
    totals = {month: [Decimal(0), None, None] for month in months}
    for project_months in per_project.values():
        for figures in project_months:
            total = totals[figures.month]
            total[0] += figures.estimated
            if figures.billed is not None:
                total[1] = (total[1] or Decimal(0)) + figures.billed
            if figures.effective is not None:
                total[2] = (total[2] or Decimal(0)) + figures.effective
    if all(billed is None for _, billed, _ in totals.values()):
        return []
    return [BillingMonth(month, *figures) for month, figures in totals.items()]
