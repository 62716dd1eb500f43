"""Chargeback / showback: a month's spend of an organization grouped by cost centre, team, tag or provider.

The rules, once:
- The month is a calendar month of cost dates (the organization's dates: costs carry a day, no time).
- Every cost of the organization's projects dated in the month (archived projects too: the money was
  spent) is counted once, in exactly one group: the grouping is one expression per entry and one
  GROUP BY, so the groups always sum to the total.
- Amounts are the stored `amount` (the organization's currency); unpriced usage is never costed, only
  counted (`unpriced_entries`, the figure is then incomplete).
- Cost centre and team: the entry's project's. Provider: the infrastructure provider as the dashboard's
  spend by provider defines it (`ops.selectors.portfolio`): usage for its billing provider's
  infrastructure, any other cost for its project's main infrastructure. `tag:KEY`: the
  entry's own tag KEY, else its project's (`focus.effective_tags`).
- What has no group (no cost centre, no team, no such tag, no infrastructure) is the unallocated row,
  listed last; the other rows go by amount, largest first.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Aggregate, CharField, Count, F, Q, QuerySet, Sum, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce

from ops.models import CostEntry, Provider
from ops.providers import infrastructure_provider as infrastructure_provider_of
from ops.selectors.portfolio import main_infrastructure_providers
from projects.models import Organization
from projects.tags import KEY
from tracker.exceptions import ValidationFailed

GROUPINGS = ("cost_centre", "team", "provider")
TAG_PREFIX = "tag:"
UNALLOCATED = "Unallocated"


@dataclass(frozen=True)
class ChargebackRow:
    key: str  # the group's code: a cost centre's code, a team's slug, a tag value, a provider code; "" unallocated
    label: str
    amount: Decimal
    entries: int
    unpriced_entries: int

    @property
    def unallocated(self) -> bool:
        return self.key == ""


@dataclass(frozen=True)
class Chargeback:
    organization: Organization
    month_start: dt.date
    month_end: dt.date
    group_by: str
    rows: list[ChargebackRow]

    @property
    def currency(self) -> str:
        return self.organization.currency

    @property
    def total(self) -> Decimal:
        return sum((row.amount for row in self.rows), Decimal(0))

    @property
    def entries(self) -> int:
        return sum(row.entries for row in self.rows)

    @property
    def unpriced_entries(self) -> int:
        return sum(row.unpriced_entries for row in self.rows)

    @property
    def incomplete(self) -> bool:
        return self.unpriced_entries > 0

    def share(self, row: ChargebackRow) -> Decimal | None:
        """Return the row's % of the total (one decimal), None for a zero total."""
        return (row.amount * 100 / self.total).quantize(Decimal("0.1")) if self.total else None


def group_by_validate(group_by: str) -> str:
    """Return `group_by` if it is cost_centre, team, provider or tag:KEY (a valid tag key); refuse it otherwise."""
    if group_by in GROUPINGS or (group_by.startswith(TAG_PREFIX) and KEY.match(group_by[len(TAG_PREFIX) :])):
        return group_by
    raise ValidationFailed(
        "group_by: cost_centre, team, provider or tag:KEY.",
        errors={"group_by": ["Choose cost_centre, team, provider or tag:KEY (a tag key)."]},
    )


def month_bounds(month: dt.date) -> tuple[dt.date, dt.date]:
    start = month.replace(day=1)
    return start, (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)


def _group(group_by: str) -> tuple[object, object]:
    """Return the SQL of each entry's group key and label ("" / NULL: unallocated)."""
    if group_by == "cost_centre":
        return F("project__cost_centre__code"), F("project__cost_centre__name")
    if group_by == "team":
        return F("project__team__slug"), F("project__team__name")
    key = group_by[len(TAG_PREFIX) :]
    value = Coalesce(
        Cast(KeyTextTransform(key, "tags"), CharField()),
        Cast(KeyTextTransform(key, "project__tags"), CharField()),
    )
    return value, value


def chargeback(*, organization: Organization, month: dt.date, group_by: str) -> Chargeback:
    """Return the organization's spend in `month` (any day of it) grouped by `group_by`; one query (provider: two)."""
    group_by_validate(group_by)
    start, end = month_bounds(month)
    costs = CostEntry.objects.filter(project__organization=organization, date__gte=start, date__lte=end).order_by()
    sums = {
        "spend": Coalesce(Sum("amount"), Value(Decimal(0))),
        "entries": Count("pk"),
        "unpriced": Count("pk", filter=Q(amount__isnull=True)),
    }
    if group_by == "provider":
        rows = _by_provider(costs, sums)
    else:
        key, label = _group(group_by)
        rows = (
            costs.annotate(group_key=Coalesce(key, Value("")), group_label=Coalesce(label, Value("")))
            .values("group_key", "group_label")
            .annotate(**sums)
        )
    found = [
        ChargebackRow(
            key=row["group_key"],
            label=_label(group_by, row["group_key"], row["group_label"]),
            amount=row["spend"],
            entries=row["entries"],
            unpriced_entries=row["unpriced"],
        )
        for row in rows
    ]
    found.sort(key=lambda r: (r.unallocated, -r.amount, r.label))  # the unallocated rest last
    return Chargeback(organization=organization, month_start=start, month_end=end, group_by=group_by, rows=found)


def _by_provider(costs: QuerySet[CostEntry], sums: dict[str, Aggregate]) -> list[dict]:
    """Group by infrastructure provider in two queries: sums per project and billing provider, then each group's
    provider (`ops.providers.infrastructure_provider`; without one, the project's main infrastructure's).

    Two queries instead of the rule's SQL form (`portfolio.infrastructure_provider`), whose look-up of the
    project's infrastructure runs once per entry: ×4.6 the raw SQL at 100,000 entries (bench/chargeback.py).
    """
    rows = list(costs.values("project_id", "provider").annotate(**sums))
    mains = main_infrastructure_providers(project_ids={r["project_id"] for r in rows if not r["provider"]})
    groups: dict[str, dict] = {}
    for row in rows:
        code = row["provider"]
        key = infrastructure_provider_of(code).value if code else mains.get(row["project_id"], "")
        group = groups.setdefault(key, {"group_key": key, "group_label": key, "spend": 0, "entries": 0, "unpriced": 0})
        for name in ("spend", "entries", "unpriced"):
            group[name] += row[name]
    return list(groups.values())


def _label(group_by: str, key: str, label: str) -> str:
    if not key:
        return UNALLOCATED
    if group_by == "provider":
        return Provider(key).label
    return f"{key} {label}" if group_by == "cost_centre" else label
