"""The portfolio rules: each figure that shows in more than one place, defined once.

Every rule has a per-project form and a set-based form (annotations or one grouped query for many
projects), so a page or a report costs a fixed number of queries whatever the portfolio's size.
The dashboard, the project list and page, the API, the status report, the risk signals, the
digests and the demo seed all read these; none computes them itself.

- Budget status as of a date (today for pages and the API, the period's last day for a report):
  the overall budget (category "") whose period contains the date — with overlapping budgets the
  one starting last, then the one created last — and, beside it, one budget per category chosen
  the same way. A recurring budget (monthly, quarterly, yearly) covers every date from its first
  day on, and its period for a date is the calendar month, quarter or year containing it
  (`budget_period`); the as-of date is the organization's, so the period rolls over at midnight in
  its timezone. Team and cost-centre budgets are read the same way over their projects' costs
  (`scoped_budget_statuses`). Spend is the priced cost dated from the budget's first day to the as-of date
  (the category's cost for a category budget); unpriced usage is never costed, only counted.
  Forecast at period end (`spend_forecast`): the spend so far plus the linear trend of the last
  FORECAST_WINDOW_DAYS days' spend carried to the period's end, with a 90 % band; the budget runs
  out on the first day that forecast passes the amount (within the period, else never). The burn
  rate is spend ÷ days elapsed (as-of date included). Over budget: spend > amount; over tolerance:
  spend > amount × (1 + tolerance %).
- Spend to date: every priced cost dated up to the as-of date, with the unpriced entries counted.
- Incomplete: a spend figure (to date, a budget's, a month's, a report period's) that leaves out
  unpriced usage says so — its `incomplete` flag (`spend_incomplete` on annotated rows) is set
  here, next to the figure, and every page, the API and the report show it as
  "incomplete: unpriced usage".
- Spend over days already snapshotted is read from the daily `SpendSnapshot` rows (kept exact by
  the cost services, see `ops.services.snapshots`) and only the days no snapshot covers are summed
  from the cost entries: see `with_spend_to_date`, `_span_spend` and `monthly_spend`.
- Stale status: no status update for more than RISK_SIGNAL_STALE_STATUS_DAYS days before the
  as-of date, counting from the project's creation when it never had one.
- Due this week (my projects): the status turns stale within DUE_WITHIN (no status update for longer
  than RISK_SIGNAL_STALE_STATUS_DAYS minus 7 days), or an active risk's review falls due within
  DUE_WITHIN (overdue ones included).
- Needs attention: red or amber health, over budget, stale status, an overdue risk review, or
  unmet gates for the next gated stage.
- The latest metric per kind (metric and name) by the as-of date, and whether it breaches.
- Spend by provider: priced spend per infrastructure provider (AWS, Azure, GCP, on-premises,
  other). Usage counts for the provider that billed it (`infrastructure_provider` of its
  ModelProvider code: OpenAI direct is other, Azure OpenAI is Azure); any other cost for its
  project's main infrastructure provider (a foundation or fine-tuned model component first, else
  any component); spend of projects with no infrastructure is unattributed (blank).
- The week before: Monday to Sunday of the week before today, in the organization's timezone.
- The price of a usage row: the organization's price of its provider × model valid on its date
  (`PriceBook.price_on`; a row naming no provider takes the model's only provider, `PriceBook.provider_for`),
  costed by `usage_price`. No price valid on the date: the row is kept unpriced (amount NULL).
"""

import bisect
import datetime as dt
import functools
import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.backends.utils import CursorWrapper
from django.db.models import (
    Aggregate,
    BooleanField,
    Case,
    CharField,
    Count,
    DateField,
    DateTimeField,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    FilteredRelation,
    Func,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.expressions import Combinable
from django.db.models.functions import Cast, Coalesce, Concat, Greatest, RowNumber, TruncMonth, TruncQuarter, TruncYear
from django.utils import timezone

from ops import money
from ops.models import (
    Budget,
    ComponentKind,
    CostCategory,
    CostEntry,
    InfrastructureComponent,
    ModelPrice,
    Provider,
    QualityMetric,
    Recurrence,
    Risk,
    RiskSnapshot,
    RiskStatus,
    Severity,
    SpendSnapshot,
)
from ops.providers import INFRASTRUCTURE
from projects.models import Health, Organization, Project
from projects.selectors import project_list
from tracker.db import CompiledValues, InIds, in_ids, instance_from_values

CENT = Decimal("0.01")
TENTH = Decimal("0.1")
ZERO = Decimal(0)
PRICE_QUANTUM = Decimal("0.0001")
MTOK = Decimal(1_000_000)
MONEY = DecimalField(max_digits=18, decimal_places=4)
COUNT = IntegerField()
# With overlapping budgets of one scope, the one starting last (then created last) is the current one.
COVERING_ORDER = ("-period_start", "-pk")


def _quantize(value: Decimal, quantum: Decimal) -> Decimal:
    return Decimal(value).quantize(quantum, ROUND_HALF_UP)


def money_field(value: Decimal | None) -> str | None:
    """Return an amount as the API and the report data carry it: a string with 2 decimal places."""
    return None if value is None else str(_quantize(value, CENT))


# Pricing


def usage_price(*, price: ModelPrice, input_tokens: int, cached_input_tokens: int, output_tokens: int) -> Decimal:
    """Return the cost of one usage row at `price`, to 4 decimal places.

    `input_tokens` EXCLUDES cached input tokens: those are counted apart in `cached_input_tokens`
    and priced at the cached-input price, or at the input price when the model has none.
    """
    cached_rate = price.input_per_mtok if price.cached_input_per_mtok is None else price.cached_input_per_mtok
    amount = (
        input_tokens * price.input_per_mtok + cached_input_tokens * cached_rate + output_tokens * price.output_per_mtok
    ) / MTOK
    return _quantize(amount, PRICE_QUANTUM)


def usage_cost(
    *,
    price: ModelPrice,
    organization: Organization,
    rates: money.Rates,
    day: dt.date,
    input_tokens: int,
    cached_input_tokens: int,
    output_tokens: int,
) -> money.Conversion:
    """Return a usage row's cost: `usage_price` in the price's currency, converted to the organization's.

    `rates` comes from `money.rates_for` over the batch (`usage_currencies` names the currencies it needs).
    """
    amount = usage_price(
        price=price, input_tokens=input_tokens, cached_input_tokens=cached_input_tokens, output_tokens=output_tokens
    )
    return rates.convert(
        amount=amount, currency=price.currency or organization.currency, day=day, organization=organization
    )


def usage_currencies(prices: Iterable[ModelPrice | None], organizations: dict[int, Organization]) -> set[str]:
    """Return the currencies of these prices that differ from their organization's (what `rates_for` loads)."""
    return {
        p.currency
        for p in prices
        if p is not None and p.currency and p.currency != organizations[p.organization_id].currency
    }


@dataclass
class PriceBook:
    """The prices of some organizations' models, oldest first per organization × provider × model."""

    prices: dict[tuple[int, str, str], list[ModelPrice]] = field(default_factory=dict)

    def provider_for(self, *, organization_id: int, provider: str, model: str) -> str | None:
        """Return the provider a usage row is priced under: its own, else the model's only one.

        Blank when no price names the model; None when several providers price it (the row must say which).
        """
        if provider:
            return provider
        providers = {p for (org, p, m) in self.prices if org == organization_id and m == model}
        if len(providers) > 1:
            return None
        return next(iter(providers), "")

    def price_on(self, *, organization_id: int, provider: str, model: str, date: dt.date) -> ModelPrice | None:
        """Return the price of provider × model valid on `date` (the latest from that day or before), or None."""
        history = self.prices.get((organization_id, provider, model), [])
        at = bisect.bisect_right([p.valid_from for p in history], date) - 1
        return history[at] if at >= 0 else None


def _prices(*, organization_ids: Sequence[int], models: Sequence[str]) -> QuerySet:
    return (
        ModelPrice.objects.filter(organization_id__in=organization_ids, model__in=models)
        .order_by("organization_id", "provider", "model", "valid_from")
        .values(*(f.attname for f in ModelPrice._meta.concrete_fields))
    )


# Every ingest (an OTLP export, a usage upload) reads its price book: compiled once per process and per
# count of organizations and models (CompiledValues), as building and compiling the ORM's query cost more
# than running it.
@functools.lru_cache(maxsize=32)
def _prices_statement(organizations: int, models: int) -> CompiledValues:
    probes = {
        "organization_ids": tuple(-7_301_200 - i for i in range(organizations)),
        "models": tuple(f"probe:model-{i}" for i in range(models)),
    }
    return CompiledValues(_prices(**probes), probes)


def price_book(*, organization_ids: Iterable[int], models: Iterable[str]) -> PriceBook:
    """Return every price of these models in these organizations (one query), for `PriceBook.price_on`."""
    book = PriceBook()
    organization_ids, models = sorted(set(organization_ids)), sorted(set(models))
    if not organization_ids or not models:
        return book  # no price can match (and an empty IN would not compile into a statement)
    statement = _prices_statement(len(organization_ids), len(models))
    for row in statement(organization_ids=organization_ids, models=models):
        price = instance_from_values(ModelPrice, row)
        book.prices.setdefault((price.organization_id, price.provider, price.model), []).append(price)
    return book


# Weeks


def report_week(day: dt.date) -> tuple[dt.date, dt.date]:
    """Return the Monday and the Sunday (inclusive) of the week containing `day`."""
    start = day - dt.timedelta(days=day.weekday())
    return start, start + dt.timedelta(days=6)


def week_before(*, organization: Organization, now: dt.datetime | None = None) -> tuple[dt.date, dt.date]:
    """Return the Monday and the Sunday of the week before this one in the organization's timezone."""
    today = timezone.localdate(now or timezone.now(), organization.tzinfo)
    return report_week(today - dt.timedelta(days=7))


# Budget status


# A recurring budget's period length in months.
RECURRENCE_MONTHS = {Recurrence.MONTHLY: 1, Recurrence.QUARTERLY: 3, Recurrence.YEARLY: 12}


def _month_start(index: int) -> dt.date:
    return dt.date(index // 12, index % 12 + 1, 1)


def calendar_period(*, recurrence: str, on: dt.date) -> tuple[dt.date, dt.date]:
    """Return the calendar month, quarter or year (by `recurrence`) containing `on`: first and last day."""
    months = RECURRENCE_MONTHS[Recurrence(recurrence)]
    first = (on.year * 12 + on.month - 1) // months * months
    return _month_start(first), _month_start(first + months) - dt.timedelta(days=1)


def budget_period(
    *, recurrence: str, period_start: dt.date, period_end: dt.date, on: dt.date
) -> tuple[dt.date, dt.date] | None:
    """Return the budget's period that contains `on` (first and last day), or None when none does.

    A one-off budget has its own period; a recurring one every calendar month, quarter or year from
    its first day on (`cost_figures` passes these periods to its SQL).
    """
    if not recurrence:
        return (period_start, period_end) if period_start <= on <= period_end else None
    return calendar_period(recurrence=recurrence, on=on) if on >= period_start else None


@dataclass(frozen=True)
class Spend:
    """Priced spend up to a date; `unpriced_entries` counts the usage no price covered (cost incomplete)."""

    amount: Decimal = Decimal(0)
    unpriced_entries: int = 0

    @property
    def incomplete(self) -> bool:
        return self.unpriced_entries > 0

    def __add__(self, other: "Spend") -> "Spend":
        return Spend(self.amount + other.amount, self.unpriced_entries + other.unpriced_entries)

    def __sub__(self, other: "Spend") -> "Spend":
        return Spend(self.amount - other.amount, self.unpriced_entries - other.unpriced_entries)


# Forecast: a least-squares line through the daily spend of the last FORECAST_WINDOW_DAYS days (fewer at a
# period's start; with fewer than 3 days, their mean), followed for FORECAST_WINDOW_DAYS days ahead and
# then held at its last value to the period's end (a two-week trend is not carried for months). Days
# the line takes below 0 count 0. The band is ± t × s × √(days left): s the residuals' standard deviation,
# t Student's for a 90 % two-sided interval with n − 2 degrees of freedom (the day-to-day scatter summed
# over the days left; the line's own uncertainty is left out). The low end never falls below the spend made.
FORECAST_WINDOW_DAYS = 14
T_90 = {
    df: Decimal(t)
    for df, t in enumerate(
        ["6.314", "2.920", "2.353", "2.132", "2.015", "1.943", "1.895", "1.860", "1.833", "1.812", "1.796", "1.782"],
        start=1,
    )
}


@dataclass(frozen=True)
class Forecast:
    """Spend at a period's end (with its band) and the day spend passes the budget (None: not in the period)."""

    expected: Decimal
    low: Decimal
    high: Decimal
    runs_out_on: dt.date | None


def forecast_window(*, period_start: dt.date, as_of: dt.date) -> dt.date:
    """Return the first day of the forecast window ending on `as_of`."""
    return max(period_start, as_of - dt.timedelta(days=FORECAST_WINDOW_DAYS - 1))


def daily_series(spend_by_day: dict[dt.date, Decimal], *, period_start: dt.date, as_of: dt.date) -> tuple[Decimal, ...]:
    """Return the spend of each day of the forecast window, oldest first (0 on days without costs)."""
    start = forecast_window(period_start=period_start, as_of=as_of)
    days = (as_of - start).days + 1
    if len(spend_by_day) >= days:
        return tuple(map(spend_by_day.get, _window_dates(start, as_of), itertools.repeat(ZERO, days)))
    # Fewer days with spend than days in the window (an idle project has none): place each of them.
    series = [ZERO] * max(days, 0)
    for day, amount in spend_by_day.items():
        if 0 <= (index := (day - start).days) < days:
            series[index] = amount
    return tuple(series)


@functools.lru_cache(maxsize=64)
def _window_dates(start: dt.date, as_of: dt.date) -> tuple[dt.date, ...]:
    """Return the days of a forecast window (the budgets of a report share one: made once)."""
    return tuple(_days(start, as_of))


@functools.cache
def _offsets(n: int) -> tuple[Decimal, ...]:
    """Return x − mean_x for x = 0 … n − 1 (the same Decimals `_line` would compute, made once per n)."""
    mean_x = Decimal(n - 1) / 2
    return tuple(x - mean_x for x in range(n))


def _line(daily: Sequence[Decimal]) -> tuple[Decimal, Decimal, Decimal]:
    """Return the intercept, the slope (x = 0 … n − 1) and the residual standard deviation of `daily`."""
    n = len(daily)
    mean_y = sum(daily, Decimal(0)) / n if n else Decimal(0)
    if n < 3:
        return mean_y, Decimal(0), Decimal(0)
    if all(y == mean_y for y in daily):
        # A flat window (nothing spent, or the same each day) is its own line: the sums below would give
        # a slope of 0 and no scatter, and this answers the same without them.
        return mean_y, Decimal(0), Decimal(0)
    mean_x = Decimal(n - 1) / 2
    sxx = Decimal(n * (n * n - 1)) / 12  # the sum of (x - mean_x)² over x = 0 … n − 1, exactly
    slope = sum((o * (y - mean_y) for o, y in zip(_offsets(n), daily, strict=True)), Decimal(0)) / sxx
    intercept = mean_y - slope * mean_x
    squares = sum(((y - intercept - slope * x) ** 2 for x, y in enumerate(daily)), Decimal(0))
    return intercept, slope, (squares / (n - 2)).sqrt()


def _line_sum(intercept: Decimal, slope: Decimal, first: int, last: int) -> Decimal:
    """Return the line's sum over x = first … last, each day at least 0 (closed form)."""
    if slope > 0:
        first = max(first, int((-intercept / slope).to_integral_value(rounding="ROUND_FLOOR")) + 1)
    elif slope < 0:
        last = min(last, int((-intercept / slope).to_integral_value(rounding="ROUND_CEILING")) - 1)
    elif intercept <= 0:
        return Decimal(0)
    count = last - first + 1
    return count * intercept + slope * (first + last) * count / 2 if count > 0 else Decimal(0)


def _ahead(intercept: Decimal, slope: Decimal, start: int, days: int) -> Decimal:
    """Return the forecast spend of the `days` days from x = `start` on (see FORECAST_WINDOW_DAYS)."""
    along = min(days, FORECAST_WINDOW_DAYS)
    total = _line_sum(intercept, slope, start, start + along - 1)
    level = max(intercept + slope * (start + along - 1), Decimal(0))
    return total + (days - along) * level


def spend_forecast(
    *, spend: Decimal, amount: Decimal, daily: Sequence[Decimal], as_of: dt.date, period_end: dt.date
) -> Forecast:
    """Return the forecast of a budget's spend at `period_end` from its `daily` window (see FORECAST_WINDOW_DAYS)."""
    left = max((period_end - as_of).days, 0)
    intercept, slope, scatter = _line(daily)
    n = len(daily)
    expected = spend + _ahead(intercept, slope, n, left)
    half = T_90.get(n - 2, T_90[12]) * scatter * Decimal(left).sqrt() if n >= 3 else Decimal(0)
    runs_out_on = as_of if spend > amount else None
    if runs_out_on is None and expected > amount:
        low, high = 1, left  # the first day ahead whose cumulative forecast passes the amount
        while low < high:
            middle = (low + high) // 2
            low, high = (low, middle) if spend + _ahead(intercept, slope, n, middle) > amount else (middle + 1, high)
        runs_out_on = as_of + dt.timedelta(days=low)
    return Forecast(
        expected=_quantize(expected, CENT),
        low=_quantize(max(spend, expected - half), CENT),
        high=_quantize(expected + half, CENT),
        runs_out_on=runs_out_on,
    )


@dataclass(frozen=True)
class BudgetStatus:
    """One budget's figures as of a date; see the module docstring for the rules."""

    period_start: dt.date
    period_end: dt.date
    amount: Decimal
    tolerance_pct: Decimal
    spend: Decimal
    as_of: dt.date
    category: str = ""
    budget_id: int | None = None
    unpriced_entries: int = 0  # usage in the budget's span that no price covered: `spend` leaves it out
    # The priced spend of each day of the forecast window (`forecast_window`), oldest first.
    daily: tuple[Decimal, ...] = ()

    @property
    def incomplete(self) -> bool:
        return self.unpriced_entries > 0

    @property
    def category_label(self) -> str:
        return CostCategory(self.category).label if self.category else "All costs"

    @property
    def days_elapsed(self) -> int:
        return (self.as_of - self.period_start).days + 1

    @property
    def days_in_period(self) -> int:
        return (self.period_end - self.period_start).days + 1

    @property
    def used_pct(self) -> Decimal | None:
        return _quantize(self.spend * 100 / self.amount, TENTH) if self.amount else None

    @functools.cached_property
    def outlook(self) -> Forecast:
        return spend_forecast(
            spend=self.spend, amount=self.amount, daily=self.daily, as_of=self.as_of, period_end=self.period_end
        )

    @property
    def forecast(self) -> Decimal:
        return self.outlook.expected

    @property
    def burn_rate(self) -> Decimal:
        """Spend per day so far (as-of date included): the rate `forecast` extends to the period's end."""
        return _quantize(self.spend / self.days_elapsed, CENT)

    @property
    def run_out_date(self) -> dt.date | None:
        """The day the forecast passes the amount; None when that is after the period ends."""
        return self.outlook.runs_out_on

    @property
    def limit(self) -> Decimal:
        """The amount plus its tolerance: past it, the overrun is a risk."""
        return self.amount * (1 + self.tolerance_pct / 100)

    @property
    def over_budget(self) -> bool:
        return self.spend > self.amount

    @property
    def over_tolerance(self) -> bool:
        return self.spend > self.limit

    def as_values(self) -> dict[str, object]:
        """Return the status under the names the API and the status report share, as values (money rounded)."""
        outlook = self.outlook
        return {
            "budget_period_start": self.period_start,
            "budget_period_end": self.period_end,
            "budget_amount": _quantize(self.amount, CENT),
            "budget_spend": _quantize(self.spend, CENT),
            "budget_used_pct": self.used_pct,
            "budget_forecast": outlook.expected,
            "budget_forecast_low": outlook.low,
            "budget_forecast_high": outlook.high,
            "budget_runs_out_on": outlook.runs_out_on,
            "over_budget": self.over_budget,
            "over_tolerance": self.over_tolerance,
            "budget_spend_incomplete": self.incomplete,
        }

    def as_fields(self) -> dict[str, object]:
        """Return `as_values` as the status report's data carries them: money, % and dates as strings."""
        return {
            name: value if value is None or isinstance(value, bool) else _as_text(value)
            for name, value in self.as_values().items()
        }


def _as_text(value: Decimal | dt.date) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)


# The same fields for a project without a covering budget.
NO_BUDGET_FIELDS = {
    "budget_period_start": None,
    "budget_period_end": None,
    "budget_amount": None,
    "budget_spend": None,
    "budget_used_pct": None,
    "budget_forecast": None,
    "budget_forecast_low": None,
    "budget_forecast_high": None,
    "budget_runs_out_on": None,
    "over_budget": False,
    "over_tolerance": False,
    "budget_spend_incomplete": False,
}


@dataclass
class ProjectBudgets:
    """A project's overall budget status (None without a covering budget) and its category budgets."""

    overall: BudgetStatus | None = None
    categories: list[BudgetStatus] = field(default_factory=list)


def _as_of_expression(as_of: dt.date | None) -> Combinable:
    """Return the as-of date as SQL: `as_of`, or today in each project's organization's timezone."""
    if as_of is not None:
        return Value(as_of, output_field=DateField())
    # The application's clock, not the database's: one "now" for every figure of a request.
    now = timezone.now()
    if connection.vendor != "postgresql":
        # SQLite (`make run`) has no timezone(): each timezone in use gets its today from Python.
        zones = Organization.objects.order_by().values_list("timezone", flat=True).distinct()
        days = [When(organization__timezone=z, then=Value(timezone.localdate(now, ZoneInfo(z)))) for z in zones]
        return Case(*days, default=Value(now.date()), output_field=DateField())
    return Cast(
        Func(F("organization__timezone"), Value(now, output_field=DateTimeField()), function="timezone"),
        output_field=DateField(),
    )


# Spend from the daily snapshots. Each `SpendSnapshot` row holds a project's spend to its day and is
# exact: the cost services carry every later change into it (`ops.services.snapshots`), and an
# organization's snapshot day (its `RiskSnapshot`) has a row for each of its projects that had costs
# by then, so a missing row is 0. A day without a snapshot (beat did not run) is summed live.
EPOCH = dt.date(1, 1, 1)


def _snapshot_day(*, start: str | None, end: str, last: bool) -> Subquery:
    """Return the first (or `last`) snapshot day of the project's organization from `start` to `end`.

    `start` and `end` name date annotations of the project; `start` None means from the beginning.
    """
    days = RiskSnapshot.objects.filter(organization=OuterRef("organization"), date__lte=OuterRef(end))
    if start is not None:
        days = days.filter(date__gte=OuterRef(start))
    return Subquery(days.order_by("-date" if last else "date").values("date")[:1], output_field=DateField())


def _snapshot_value(column: str, *, day: str) -> Coalesce:
    """Return the project's snapshot `column` on the day annotated as `day` (0 without a row)."""
    # No ordering: the model's default (by project, i.e. its name) would join and sort the project per row.
    row = SpendSnapshot.objects.filter(project=OuterRef("pk"), date=OuterRef(day)).order_by().values(column)
    return Coalesce(Subquery(row), Value(0), output_field=MONEY if column == "spend_to_date" else COUNT)


def _live_days(*, start: str | None, end: str, first: str | None, last: str) -> Q:
    """Return the cost entries' days from `start` to `end` that no snapshot covers.

    Those are the days up to the `first` snapshot day (none when counting from the beginning) and
    those after the `last`; without a snapshot in the span (both NULL) that is the whole span.
    """
    after_last = Q(date__gt=Coalesce(OuterRef(last), OuterRef(end) if first else Value(EPOCH)))
    days = Q(date__lte=OuterRef(end)) & after_last
    if first is not None:
        days |= Q(date__gte=OuterRef(start), date__lte=Coalesce(OuterRef(first), OuterRef(end)))
    return days


def _span_spend(*, start: str | None, end: str, first: str | None, last: str) -> tuple[Combinable, Combinable]:
    """Return the project's priced spend and unpriced entries dated from `start` to `end` (annotation names).

    The snapshot of the `last` day minus that of the `first` (0 from the beginning) is the spend
    between them; the entries outside them are summed live.
    """
    costs = CostEntry.objects.filter(_live_days(start=start, end=end, first=first, last=last), project=OuterRef("pk"))
    costs = costs.order_by().values("project")
    spend = Coalesce(Subquery(costs.annotate(t=Sum("amount")).values("t")), Value(Decimal(0)), output_field=MONEY)
    unpriced = costs.filter(amount__isnull=True).annotate(n=Count("pk")).values("n")
    unpriced = Coalesce(Subquery(unpriced), Value(0), output_field=COUNT)
    spend += _snapshot_value("spend_to_date", day=last)
    unpriced += _snapshot_value("unpriced_entries", day=last)
    if first is not None:
        spend -= _snapshot_value("spend_to_date", day=first)
        unpriced -= _snapshot_value("unpriced_entries", day=first)
    return spend, unpriced


def _days(first: dt.date, last: dt.date) -> list[dt.date]:
    """Return the days from `first` to `last`, both included (none when `last` is before `first`)."""
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def monthly_spend(*, projects: QuerySet[Project], months: list[tuple[dt.date, dt.date]]) -> dict[dt.date, Spend]:
    """Return the projects' priced spend and unpriced entries in each month (its first and last day), by its first day.

    The spans are the caller's, consecutive and in order: months, or the dashboard's weeks. Three queries
    whatever the number of projects and entries: each organization's first and last snapshot day in
    each span, the snapshots of those days, and the entries of the days around them.
    """
    scope = projects.order_by().values("pk")
    organizations = Project.objects.filter(pk__in=scope).values("organization")
    days = RiskSnapshot.objects.filter(organization__in=organizations, date__range=(months[0][0], months[-1][1]))
    bounds = {
        row.pop("organization"): row
        for row in days.order_by()
        .values("organization")
        .annotate(
            **{f"first_{i}": Min("date", filter=Q(date__range=month)) for i, month in enumerate(months)},
            **{f"last_{i}": Max("date", filter=Q(date__range=month)) for i, month in enumerate(months)},
        )
    }
    snapshots = {
        (row["project__organization"], row["date"]): Spend(row["total"], row["unpriced"])
        for row in SpendSnapshot.objects.filter(
            project__in=scope, date__in={day for row in bounds.values() for day in row.values() if day}
        )
        .order_by()
        .values("project__organization", "date")
        .annotate(total=Sum("spend_to_date"), unpriced=Sum("unpriced_entries"))
    }
    spend: dict[dt.date, Spend] = defaultdict(Spend)
    # Without a snapshot in the months, an organization's entries are all summed live.
    live = ~Q(project__organization__in=list(bounds)) & Q(date__range=(months[0][0], months[-1][1]))
    for organization, row in bounds.items():
        # The days no snapshot difference covers, listed (with daily snapshots, each month's first day and the
        # days after its last snapshot): an index probe per project and day, not a range test of every entry.
        live_days: list[dt.date] = []
        for i, (start, end) in enumerate(months):
            first, last = row[f"first_{i}"], row[f"last_{i}"]
            if first is None:
                live_days += _days(start, end)
                continue
            spend[start] += snapshots.get((organization, last), Spend()) - snapshots.get((organization, first), Spend())
            live_days += _days(start, first) + _days(last + dt.timedelta(days=1), end)
        live |= Q(project__organization=organization, date__in=live_days)
    starts = [start for start, _ in months]
    for row in (
        CostEntry.objects.filter(live, project__in=scope)
        .order_by()
        .values("date")
        .annotate(total=Coalesce(Sum("amount"), Value(Decimal(0))), unpriced=Count("pk", filter=Q(amount__isnull=True)))
    ):
        # Grouped by day (a few hundred rows at most), each day then counted in the span that holds it.
        spend[starts[bisect.bisect_right(starts, row["date"]) - 1]] += Spend(row["total"], row["unpriced"])
    return spend


def with_budget_status(projects: QuerySet[Project], *, as_of: dt.date | None = None) -> QuerySet[Project]:
    """Annotate each project with its overall budget status as of `as_of` (default: its organization's today).

    Read the figures back with `budget_status_of(row)`.
    """
    covering = Budget.objects.filter(
        Q(period_end__gte=OuterRef("budget_as_of")) | ~Q(recurrence=Recurrence.NONE),
        project=OuterRef("pk"),
        category="",
        period_start__lte=OuterRef("budget_as_of"),
    ).order_by(*COVERING_ORDER)
    # A recurring budget's period starts on the first day of the as-of date's month, quarter or year: given the
    # date, `calendar_period`'s constants (every term below that reads the start repeats this expression).
    truncs = {Recurrence.MONTHLY: TruncMonth, Recurrence.QUARTERLY: TruncQuarter, Recurrence.YEARLY: TruncYear}
    period_start = Case(
        *[
            When(
                covering_budget__recurrence=r,
                then=Cast(trunc("budget_as_of", output_field=DateField()), DateField())
                if as_of is None
                else Value(calendar_period(recurrence=r, on=as_of)[0]),
            )
            for r, trunc in truncs.items()
        ],
        default=F("covering_budget__period_start"),
        output_field=DateField(),
    )
    # The covering budget is joined once and its columns read from the join: a subquery per column would be
    # repeated inside every spend term below that reads the period start (PostgreSQL does not share them).
    projects = (
        projects.annotate(budget_as_of=_as_of_expression(as_of))
        .annotate(
            covering_budget=FilteredRelation("budgets", condition=Q(budgets__pk=Subquery(covering.values("pk")[:1])))
        )
        .annotate(
            budget_id=F("covering_budget__id"),
            budget_recurrence=F("covering_budget__recurrence"),
            budget_period_start=period_start,
            budget_period_end=F("covering_budget__period_end"),
            budget_amount=F("covering_budget__amount"),
            budget_tolerance_pct=F("covering_budget__tolerance_pct"),
        )
    )
    span = {"start": "budget_period_start", "end": "budget_as_of"}
    projects = projects.annotate(
        budget_snapshot_first=_snapshot_day(**span, last=False), budget_snapshot_last=_snapshot_day(**span, last=True)
    )
    spend, unpriced = _span_spend(**span, first="budget_snapshot_first", last="budget_snapshot_last")
    # The forecast window's entries; a day before any organization's today (UTC−12) bounds the scan.
    earliest = (as_of or timezone.now().date() - dt.timedelta(days=1)) - dt.timedelta(days=FORECAST_WINDOW_DAYS - 1)
    window = (
        CostEntry.objects.filter(
            project=OuterRef("pk"),
            amount__isnull=False,
            date__gte=Greatest(OuterRef("budget_period_start"), Value(earliest)),
            date__lte=OuterRef("budget_as_of"),
        )
        .order_by()
        .values("project")
        .annotate(days=_DaySpends(Concat(Cast("date", CharField()), Value("="), Cast("amount", CharField()))))
        .values("days")
    )
    return projects.annotate(budget_spend=spend, budget_unpriced=unpriced, budget_window=Subquery(window))


class _DaySpends(Aggregate):
    """Join `day=amount` texts with commas (`budget_status_of` adds them up per day)."""

    function = "STRING_AGG"
    template = "%(function)s(%(expressions)s, ',')"
    output_field = CharField()

    def as_sqlite(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, function="GROUP_CONCAT", **extra)


def _window_days(text: str | None) -> dict[dt.date, Decimal]:
    spend: dict[dt.date, Decimal] = defaultdict(Decimal)
    for item in text.split(",") if text else ():
        day, amount = item.split("=")
        spend[dt.date.fromisoformat(day)] += Decimal(amount)
    return spend


def budget_status_of(row: Project) -> BudgetStatus | None:
    """Return the overall budget status of a project annotated by `with_budget_status`."""
    if row.budget_id is None:
        return None
    period_end = row.budget_period_end
    if row.budget_recurrence:
        period_end = calendar_period(recurrence=row.budget_recurrence, on=row.budget_as_of)[1]
    return BudgetStatus(
        period_start=row.budget_period_start,
        period_end=period_end,
        amount=row.budget_amount,
        tolerance_pct=row.budget_tolerance_pct,
        spend=row.budget_spend,
        as_of=row.budget_as_of,
        budget_id=row.budget_id,
        unpriced_entries=row.budget_unpriced,
        daily=daily_series(
            _window_days(row.budget_window), period_start=row.budget_period_start, as_of=row.budget_as_of
        ),
    )


@dataclass
class PeriodCosts:
    """What a project's costs add up to inside a report's period."""

    spend: Decimal = Decimal(0)
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    unpriced_entries: int = 0

    @property
    def incomplete(self) -> bool:
        return self.unpriced_entries > 0


@dataclass
class CostFigures:
    """A project's cost figures as of a date: budget statuses, spend to date and, for a report, its period."""

    budgets: ProjectBudgets = field(default_factory=ProjectBudgets)
    spend: Spend = field(default_factory=Spend)
    period: PeriodCosts = field(default_factory=PeriodCosts)


# The budgets covering the as-of date, one per project and category (the `COVERING_ORDER` winner), and one
# pass over the cost entries up to that date: each entry joins at most its project's overall budget and its
# category's budget, so no sum is multiplied, and every figure is a FILTER of the same scan. The winner is
# picked by ROW_NUMBER(), not PostgreSQL's DISTINCT ON, so that `make run` (SQLite) reads the same figures.
# A recurring budget's period for the as-of date is `calendar_period`'s, passed in as parameters.
COVERING_BUDGETS_SQL = """
    SELECT id, project_id, category, period_start, period_end, amount, tolerance_pct FROM (
        SELECT b.id, b.project_id, b.category,
            CASE b.recurrence WHEN 'monthly' THEN %s WHEN 'quarterly' THEN %s WHEN 'yearly' THEN %s
                ELSE b.period_start END AS period_start,
            CASE b.recurrence WHEN 'monthly' THEN %s WHEN 'quarterly' THEN %s WHEN 'yearly' THEN %s
                ELSE b.period_end END AS period_end,
            b.amount, b.tolerance_pct, ROW_NUMBER() OVER (
                PARTITION BY b.project_id, b.category ORDER BY b.period_start DESC, b.id DESC) AS latest
        FROM ops_budget b
        WHERE b.project_id {scope} AND b.period_start <= %s AND (b.period_end >= %s OR b.recurrence <> '')
    ) AS ranked WHERE latest = 1
    ORDER BY project_id, category"""
COST_PASS_SQL = """
    WITH covering AS ({covering})
    SELECT c.project_id, c.category, sum(c.amount), count(*) FILTER (WHERE c.amount IS NULL),
        sum(c.amount) FILTER (WHERE c.date >= o.period_start), sum(c.amount) FILTER (WHERE c.date >= k.period_start),
        count(*) FILTER (WHERE c.amount IS NULL AND c.date >= o.period_start),
        count(*) FILTER (WHERE c.amount IS NULL AND c.date >= k.period_start),
        sum(c.amount) FILTER (WHERE c.date >= %s), sum(c.input_tokens) FILTER (WHERE c.date >= %s),
        sum(c.cached_input_tokens) FILTER (WHERE c.date >= %s), sum(c.output_tokens) FILTER (WHERE c.date >= %s),
        count(*) FILTER (WHERE c.amount IS NULL AND c.date >= %s)
    FROM ops_costentry c
    LEFT JOIN covering o ON o.project_id = c.project_id AND o.category = ''
    LEFT JOIN covering k ON k.project_id = c.project_id AND k.category = c.category AND k.category <> ''
    WHERE c.project_id {scope} AND c.date <= %s
    GROUP BY c.project_id, c.category"""
# The priced spend per project, category and day of the forecast window (FORECAST_WINDOW_DAYS up to the as-of date).
WINDOW_SQL = """
    SELECT c.project_id, c.category, c.date, sum(c.amount) FROM ops_costentry c
    WHERE c.project_id {scope} AND c.amount IS NOT NULL AND c.date >= %s AND c.date <= %s
    GROUP BY c.project_id, c.category, c.date"""


def _exact(value: Decimal | float | None, places: int = 4) -> Decimal | None:
    """Return a raw-SQL amount as a Decimal: PostgreSQL's numeric as it is, SQLite's number (int or float) at
    the column's decimal places, as the ORM's converter reads it."""
    if value is None or isinstance(value, Decimal):
        return value
    return Decimal(repr(value)).quantize(Decimal(1).scaleb(-places))


def _date(value: dt.date | str) -> dt.date:
    """Return a raw-SQL date as a date: SQLite answers a CASE of dates as ISO text."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def cost_figures(
    *, projects: QuerySet[Project], as_of: dt.date, period_start: dt.date | None = None
) -> dict[int, CostFigures]:
    """Return each project's budget statuses and spend to date as of `as_of` (three queries, one scan of costs).

    With `period_start`, also what the costs from that day to `as_of` add up to (a report's period).
    Projects without budgets or costs are absent; read them as `CostFigures()`.
    """
    return cost_figures_send(projects=projects, as_of=as_of, period_start=period_start)()


def cost_figures_send(
    *, projects: QuerySet[Project], as_of: dt.date, period_start: dt.date | None = None
) -> Callable[[], dict[int, CostFigures]]:
    """Execute `cost_figures`' queries and return what computes the figures from their rows: in a
    `tracker.db.pipeline`, the caller works meanwhile (a report builds its project rows)."""
    scope, scope_params = projects.order_by().values("pk").query.sql_with_params()
    scope = in_ids(f"({scope})", connection.vendor)  # one index lookup per project: 62 → 15 ms at 50 of 500
    covering = COVERING_BUDGETS_SQL.format(scope=scope)
    periods = [calendar_period(recurrence=r, on=as_of) for r in RECURRENCE_MONTHS]
    covering_params = [*(p[0] for p in periods), *(p[1] for p in periods), *scope_params, as_of, as_of]
    since = period_start or as_of + dt.timedelta(days=1)
    statements = [
        (covering, covering_params),
        (COST_PASS_SQL.format(covering=covering, scope=scope), [*covering_params, *[since] * 5, *scope_params, as_of]),
        (WINDOW_SQL.format(scope=scope), [*scope_params, as_of - dt.timedelta(days=FORECAST_WINDOW_DAYS - 1), as_of]),
    ]
    cursors = [connection.cursor() for _ in statements]
    for cursor, (sql, params) in zip(cursors, statements, strict=True):
        cursor.execute(sql, params)
    return functools.partial(_cost_figures_of, cursors, as_of)


def _cost_figures_of(cursors: list[CursorWrapper], as_of: dt.date) -> dict[int, CostFigures]:
    """Compute `cost_figures` from the rows of its three statements' cursors (and close them)."""
    budgets, costs, window = (_all_rows(cursor) for cursor in cursors)
    figures: dict[int, CostFigures] = defaultdict(CostFigures)
    by_day: dict[tuple[int, str], dict[dt.date, Decimal]] = defaultdict(dict)
    for project_id, category, day, amount in window:
        day, amount = _date(day), _exact(amount)
        by_day[project_id, category][day] = amount  # one row per project, category and day
        overall = by_day[project_id, ""]
        overall[day] = overall.get(day, ZERO) + amount
    overall_spend: dict[int, Spend] = defaultdict(Spend)
    category_spend: dict[tuple[int, str], Spend] = {}
    for (
        project_id,
        category,
        total,
        unpriced,
        in_overall,
        in_category,
        unpriced_overall,
        unpriced_category,
        *period,
    ) in costs:
        total, in_overall, in_category = _exact(total), _exact(in_overall), _exact(in_category)
        f = figures[project_id]
        f.spend = Spend(f.spend.amount + (total or 0), f.spend.unpriced_entries + unpriced)
        overall = overall_spend[project_id]
        overall_spend[project_id] = Spend(
            overall.amount + (in_overall or 0), overall.unpriced_entries + unpriced_overall
        )
        category_spend[project_id, category] = Spend(in_category or Decimal(0), unpriced_category)
        spend, input_tokens, cached, output_tokens, unpriced_period = period
        f.period.spend += _exact(spend) or 0
        # PostgreSQL sums integers as numeric: back to int for the tokens.
        f.period.input_tokens += int(input_tokens or 0)
        f.period.cached_input_tokens += int(cached or 0)
        f.period.output_tokens += int(output_tokens or 0)
        f.period.unpriced_entries += unpriced_period
    for budget_id, project_id, category, start, end, amount, tolerance_pct in budgets:
        start, end = _date(start), _date(end)
        spend = category_spend.get((project_id, category), Spend()) if category else overall_spend[project_id]
        status = BudgetStatus(
            period_start=start,
            period_end=end,
            amount=_exact(amount, 2),
            tolerance_pct=_exact(tolerance_pct, 2),
            spend=spend.amount,
            as_of=as_of,
            category=category,
            budget_id=budget_id,
            unpriced_entries=spend.unpriced_entries,
            daily=daily_series(by_day.get((project_id, category), {}), period_start=start, as_of=as_of),
        )
        if category:
            figures[project_id].budgets.categories.append(status)
        else:
            figures[project_id].budgets.overall = status
    return figures


def _all_rows(cursor: CursorWrapper) -> list[tuple]:
    with cursor:
        return cursor.fetchall()


def budget_statuses(*, projects: QuerySet[Project], as_of: dt.date) -> dict[int, ProjectBudgets]:
    """Return the overall and category budget statuses of each project as of `as_of` (see `cost_figures`)."""
    return {pk: f.budgets for pk, f in cost_figures(projects=projects, as_of=as_of).items()}


def scoped_budget_statuses(*, organization: Organization, as_of: dt.date) -> list[BudgetStatus]:
    """Return the status as of `as_of` of each team and cost-centre budget whose period contains it.

    Spend is that of the team's (the cost centre's) projects in the period, by the same rules as a
    project's budget; every budget of a scope is listed (no covering winner: each has its owner). Two queries.
    """
    budgets = Budget.objects.filter(
        Q(team__organization=organization) | Q(cost_centre__organization=organization),
        Q(period_end__gte=as_of) | ~Q(recurrence=Recurrence.NONE),
        period_start__lte=as_of,
    ).order_by("pk")
    periods = {
        b: budget_period(recurrence=b.recurrence, period_start=b.period_start, period_end=b.period_end, on=as_of)
        for b in budgets
    }
    if not periods:
        return []
    sums = {}
    for b, (start, _end) in periods.items():
        scope = Q(project__team_id=b.team_id) if b.team_id else Q(project__cost_centre_id=b.cost_centre_id)
        scope &= Q(date__gte=start, date__lte=as_of) & (Q(category=b.category) if b.category else Q())
        sums[f"spend_{b.pk}"] = Coalesce(Sum("amount", filter=scope), Value(Decimal(0)), output_field=MONEY)
        sums[f"unpriced_{b.pk}"] = Count("pk", filter=scope & Q(amount__isnull=True))
    totals = CostEntry.objects.filter(project__organization=organization, date__lte=as_of).aggregate(**sums)
    return [
        BudgetStatus(
            period_start=start,
            period_end=end,
            amount=b.amount,
            tolerance_pct=b.tolerance_pct,
            spend=totals[f"spend_{b.pk}"],
            as_of=as_of,
            category=b.category,
            budget_id=b.pk,
            unpriced_entries=totals[f"unpriced_{b.pk}"],
        )
        for b, (start, end) in periods.items()
    ]


def project_cost_figures(*, project: Project, as_of: dt.date) -> CostFigures:
    """Return one project's budget statuses and spend to date as of `as_of` (see `cost_figures`)."""
    return cost_figures(projects=Project.objects.filter(pk=project.pk), as_of=as_of).get(project.pk, CostFigures())


# Spend to date


def with_spend_to_date(projects: QuerySet[Project], *, as_of: dt.date | None = None) -> QuerySet[Project]:
    """Annotate `spend_to_date` and `unpriced_entries` up to `as_of` (default: the organization's today)."""
    projects = projects.annotate(spend_as_of=_as_of_expression(as_of))
    projects = projects.annotate(spend_snapshot_last=_snapshot_day(start=None, end="spend_as_of", last=True))
    spend, unpriced = _span_spend(start=None, end="spend_as_of", first=None, last="spend_snapshot_last")
    projects = projects.annotate(spend_to_date=spend, unpriced_entries=unpriced)
    return projects.annotate(spend_incomplete=ExpressionWrapper(Q(unpriced_entries__gt=0), BooleanField()))


# Spend by provider


def _main_components() -> QuerySet[InfrastructureComponent]:
    """Components in the order that makes the first of a project its main one: a model component first."""
    rank = Case(
        When(kind__in=[ComponentKind.FOUNDATION_MODEL, ComponentKind.FINE_TUNED_MODEL], then=0),
        default=1,
        output_field=IntegerField(),
    )
    return InfrastructureComponent.objects.annotate(rank=rank).order_by("rank", "pk")


def main_infrastructure_providers(*, project_ids: Iterable[int]) -> dict[int, str]:
    """Return each project's main infrastructure provider (the set-based form of `infrastructure_provider`'s
    fallback); projects with no infrastructure are absent. One query."""
    providers: dict[int, str] = {}
    for project_id, provider in (
        _main_components().filter(project_id__in=list(project_ids)).values_list("project_id", "provider")
    ):
        providers.setdefault(project_id, provider)
    return providers


def infrastructure_provider() -> Case:
    """Return a cost entry's infrastructure provider as SQL (see the module docstring; blank: unattributed)."""
    main_provider = _main_components().filter(project=OuterRef("project")).values("provider")[:1]
    billed_by: dict[Provider, list[str]] = defaultdict(list)
    for code, infrastructure in INFRASTRUCTURE.items():
        billed_by[infrastructure].append(code)
    return Case(
        When(provider="", then=Coalesce(Subquery(main_provider), Value(""))),
        *[When(provider__in=codes, then=Value(target.value)) for target, codes in billed_by.items()],
        default=Value(Provider.OTHER.value),
        output_field=CharField(),
    )


def spend_by_provider(*, organization: Organization, start: dt.date, end: dt.date) -> dict[str, Decimal]:
    """Return the priced spend from `start` to `end` per infrastructure provider (see the module docstring)."""
    rows = (
        CostEntry.objects.filter(
            project__organization=organization,
            project__archived=False,
            amount__isnull=False,
            date__gte=start,
            date__lte=end,
        )
        .annotate(infrastructure=infrastructure_provider())
        .order_by()
        .values("infrastructure")
        .annotate(spend=Sum("amount"))
    )
    return {row["infrastructure"] or "": row["spend"] for row in rows}


# Stale status


def _stale_before(as_of: dt.date) -> dt.date:
    return as_of - dt.timedelta(days=settings.RISK_SIGNAL_STALE_STATUS_DAYS)


def status_stale(*, last_status_date: dt.date | None, created_on: dt.date, as_of: dt.date) -> bool:
    """Return whether the last status update (or the creation, without one) is too old on `as_of`."""
    return (last_status_date or created_on) < _stale_before(as_of)


def created_on(project: Project) -> dt.date:
    """Return the project's creation day in its organization's timezone."""
    return timezone.localdate(project.created_at, project.organization.tzinfo)


def status_stale_q(as_of: dt.date) -> Q:
    """Return `status_stale` as a filter on projects of one organization (its timezone's days)."""
    before = _stale_before(as_of)
    return Q(last_status_date__lt=before) | Q(last_status_date__isnull=True, created_at__date__lt=before)


# Due this week

DUE_WITHIN = dt.timedelta(days=7)


def with_due_this_week(projects: QuerySet[Project], *, as_of: dt.date) -> QuerySet[Project]:
    """Annotate `status_due` (stale within DUE_WITHIN of `as_of`), `review_due` and their union `due`."""
    reviews = Risk.objects.filter(
        project=OuterRef("pk"), status__in=RiskStatus.active(), next_review_date__lte=as_of + DUE_WITHIN
    )
    status_due = ExpressionWrapper(status_stale_q(as_of + DUE_WITHIN), output_field=BooleanField())
    projects = projects.annotate(status_due=status_due, review_due=Exists(reviews))
    return projects.annotate(
        due=ExpressionWrapper(Q(status_due=True) | Q(review_due=True), output_field=BooleanField())
    )


def my_projects(*, user: AbstractBaseUser, organization: Organization, as_of: dt.date) -> QuerySet[Project]:
    """Return the live projects of `organization` the user owns (business owner, technical lead or
    human-oversight owner), with the project list's figures and what is due this week, due ones first."""
    mine = Q(business_owner=user) | Q(technical_lead=user) | Q(human_oversight_owner=user)
    projects = project_list(user=user).filter(mine, organization=organization, archived=False)
    projects = with_due_this_week(with_list_figures(projects, as_of=as_of), as_of=as_of)
    # Due first, then the longest without a status (never reported first).
    return projects.order_by("-due", F("last_status_date").asc(nulls_first=True), "name", "pk")


# Needs attention


def review_overdue(as_of: dt.date) -> Q:
    """The one rule of an overdue risk review: an active risk whose review date is before `as_of`.

    A report of a closed period asks it as of the day after the period's last day, so a review due on
    that last day and not done counts, in the status and the risk report alike.
    """
    return Q(status__in=RiskStatus.active(), next_review_date__lt=as_of)


def with_overdue_reviews(projects: QuerySet[Project], *, as_of: dt.date) -> QuerySet[Project]:
    """Annotate `overdue_reviews`: the project has a risk whose review is overdue as of `as_of`."""
    return projects.annotate(overdue_reviews=Exists(Risk.objects.filter(review_overdue(as_of), project=OuterRef("pk"))))


def attention_reasons(
    *, health: str, over_budget: bool, stale: bool, overdue_reviews: bool, unmet_gates: Iterable[str]
) -> list[str]:
    """Return why a project needs attention (empty when it does not), most urgent first."""
    reasons = [f"health_{health}"] if health in (Health.RED, Health.AMBER) else []
    reasons += [reason for reason, holds in (("over_budget", over_budget), ("stale", stale)) if holds]
    if overdue_reviews:
        reasons.append("overdue_reviews")
    if list(unmet_gates):
        reasons.append("blocked_gates")
    return reasons


def attention_rank(*, health: str, reasons: list[str]) -> tuple[int, int]:
    """Return the sort key of a project needing attention: red, amber, then the rest; over budget first."""
    urgency = {Health.RED: 0, Health.AMBER: 1}.get(health, 2)
    return urgency, 0 if "over_budget" in reasons else 1


# Latest metrics


def latest_metrics_ranked(*, projects: QuerySet[Project], as_of: dt.date) -> QuerySet[QualityMetric]:
    """Return the latest value of each metric (kind and name) of each project by `as_of`, by project (one window
    query)."""
    return (
        QualityMetric.objects.filter(InIds(F("project_id"), projects.values("pk")), date__lte=as_of)
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("project_id"), F("metric"), F("name")],
                order_by=[F("date").desc(), F("id").desc()],
            )
        )
        .filter(rank=1)
        .order_by("project_id", "metric", "name")
    )


def latest_metrics_by_project(*, projects: QuerySet[Project], as_of: dt.date) -> dict[int, list[QualityMetric]]:
    """Return the latest value of each metric (kind and name) per project by `as_of` (`latest_metrics_ranked`)."""
    metrics: dict[int, list[QualityMetric]] = defaultdict(list)
    for metric in latest_metrics_ranked(projects=projects, as_of=as_of):
        metrics[metric.project_id].append(metric)
    return metrics


def latest_metrics(*, project: Project, as_of: dt.date) -> list[QualityMetric]:
    """Return the project's latest value of each metric by `as_of`; `.breached` says whether it breaches."""
    return latest_metrics_by_project(projects=Project.objects.filter(pk=project.pk), as_of=as_of).get(project.pk, [])


# The project list


def project_list_with_figures(*, user: AbstractBaseUser, as_of: dt.date | None = None) -> QuerySet[Project]:
    """Return the user's projects with spend to date, the overall budget status and risk counts."""
    return with_list_figures(project_list(user=user), as_of=as_of)


def with_list_figures(projects: QuerySet[Project], *, as_of: dt.date | None = None) -> QuerySet[Project]:
    """Annotate projects with spend to date, the overall budget status and risk counts.

    Each figure is a correlated subquery, so a page of projects costs one query whatever its size
    and the sums are not multiplied by joins. `as_of` defaults to each organization's today.
    """

    def risks(**filters: object) -> Coalesce:
        rows = Risk.objects.filter(project=OuterRef("pk"), status__in=RiskStatus.active(), **filters)
        rows = rows.order_by().values("project").annotate(n=Count("pk")).values("n")
        return Coalesce(Subquery(rows), Value(0))

    projects = with_budget_status(with_spend_to_date(projects, as_of=as_of), as_of=as_of)
    return projects.annotate(open_risks=risks(), critical_risks=risks(severity=Severity.CRITICAL))
