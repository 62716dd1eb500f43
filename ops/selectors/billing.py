"""Billed vs estimated: what the bills (FOCUS imports) say each project cost, beside the tracker's own figure.

Estimated is the project's priced cost entries of the month (the spend every budget and report
uses); billed is the sum of its billed costs whose charge period starts in the month (UTC),
credits, tax and purchases included. The two are shown side by side and never added together.
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import QuerySet, Sum
from django.db.models.functions import TruncMonth

from ops.imports.models import BilledCost
from ops.models import CostEntry
from projects.models import Project


@dataclass(frozen=True)
class BillingMonth:
    month: dt.date  # its first day
    estimated: Decimal
    billed: Decimal | None  # None: no bill row for the month
    effective: Decimal | None

    @property
    def difference(self) -> Decimal | None:
        """Billed minus estimated (positive: the bill is higher)."""
        return None if self.billed is None else self.billed - self.estimated

    @property
    def drift_pct(self) -> Decimal | None:
        """The difference as a % of the billed amount (None without a bill; no bill of 0 divides)."""
        if self.billed is None:
            return None
        if not self.billed:
            return None if not self.estimated else Decimal(100)
        return abs(self.billed - self.estimated) * 100 / abs(self.billed)


def month_start(day: dt.date, months_back: int = 0) -> dt.date:
    """The first day of the month `months_back` months before `day`'s."""
    index = day.year * 12 + day.month - 1 - months_back
    return dt.date(index // 12, index % 12 + 1, 1)


def billed_vs_estimated(
    *, projects: QuerySet[Project], first_month: dt.date, last_month: dt.date
) -> dict[int, list[BillingMonth]]:
    """Return each project's months (first days, `first_month` to `last_month`) with an estimate or a bill.

    Two queries whatever the number of projects, months and rows.
    """
    end = month_start(last_month, -1)
    scope = projects.order_by().values("pk")
    estimated: dict[tuple[int, dt.date], Decimal] = {
        (row["project_id"], row["month"]): row["total"]
        for row in CostEntry.objects.filter(
            project__in=scope, amount__isnull=False, date__gte=first_month, date__lt=end
        )
        .annotate(month=TruncMonth("date"))
        .order_by()
        .values("project_id", "month")
        .annotate(total=Sum("amount"))
    }
    start_at = dt.datetime.combine(first_month, dt.time(), dt.UTC)
    end_at = dt.datetime.combine(end, dt.time(), dt.UTC)
    billed: dict[tuple[int, dt.date], tuple[Decimal, Decimal]] = {
        (row["project_id"], row["month"].date()): (row["billed"], row["effective"])
        for row in BilledCost.objects.filter(
            project__in=scope, charge_period_start__gte=start_at, charge_period_start__lt=end_at
        )
        .annotate(month=TruncMonth("charge_period_start", tzinfo=dt.UTC))
        .order_by()
        .values("project_id", "month")
        .annotate(billed=Sum("billed_cost"), effective=Sum("effective_cost"))
    }
    months: dict[int, list[BillingMonth]] = defaultdict(list)
    for project_id, month in sorted(estimated.keys() | billed.keys()):
        bill = billed.get((project_id, month))
        months[project_id].append(
            BillingMonth(
                month=month,
                estimated=estimated.get((project_id, month), Decimal(0)),
                billed=bill[0] if bill else None,
                effective=bill[1] if bill else None,
            )
        )
    return dict(months)


def project_billing(*, project: Project, as_of: dt.date, months: int = 6) -> list[BillingMonth]:
    """The project page's estimated vs billed: the last `months` months with either, newest first."""
    figures = billed_vs_estimated(
        projects=Project.objects.filter(pk=project.pk),
        first_month=month_start(as_of, months - 1),
        last_month=month_start(as_of),
    )
    return figures.get(project.pk, [])[::-1]
