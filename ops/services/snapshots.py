"""Daily trend snapshots: open risks by severity per organization, spend per project.

A `SpendSnapshot` is kept exact after it is taken: every service that writes cost entries calls
`spend_snapshots_adjust` in its transaction, which adds the change to the project's snapshots from
the entry's date on. Adjusting by delta rather than marking them stale and re-taking them keeps the
dashboard's reads exact at once, with no queue of days to recompute (a late cost a year back would
otherwise re-take 365 days), at the price of one UPDATE per write. An advisory lock per organization
orders the two: a snapshot being taken waits for the cost writes in flight and they wait for it.
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import NamedTuple

from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from ops.models import CostEntry, Risk, RiskSnapshot, RiskStatus, SpendSnapshot
from projects import audit
from projects.models import Organization, Project

# The advisory lock keys (first key: this namespace; second: the organization or the project).
ORGANIZATION_LOCK = 0x5350  # taken exclusively by `snapshots_take`, shared by the cost writes
PROJECT_LOCK = 0x5351  # a project's cost writes, one at a time: they read and write its snapshot rows
BATCH = 1000


class CostSpend(NamedTuple):
    """What a cost entry counts in the spend snapshots."""

    organization_id: int
    project_id: int
    date: dt.date
    amount: Decimal | None  # None: unpriced usage, counted in `unpriced_entries`

    @classmethod
    def of(cls, entry: CostEntry) -> "CostSpend":
        return cls(entry.project.organization_id, entry.project_id, entry.date, entry.amount)


def _lock(*, organizations: Iterable[int], projects: Iterable[int] = (), shared: bool) -> None:
    """Take the transaction's advisory locks in one statement (PostgreSQL; SQLite has a single writer).

    The organizations' (shared or not), then the projects' (never shared), each in id order.
    """
    if connection.vendor != "postgresql":
        return
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT (SELECT count({function}(%s, id)) FROM (SELECT unnest(%s::int[]) AS id ORDER BY 1) AS o),
                (SELECT count(pg_advisory_xact_lock(%s, id)) FROM (SELECT unnest(%s::int[]) AS id ORDER BY 1) AS p)""",  # nosec B608
            [ORGANIZATION_LOCK, sorted(organizations), PROJECT_LOCK, sorted(projects)],
        )


def spend_snapshots_adjust(*, added: Iterable[CostSpend] = (), removed: Iterable[CostSpend] = ()) -> None:
    """Carry cost entries written or removed in this transaction into the snapshots taken on or after their dates.

    A project's row of a snapshot day missing (the project had no costs by then, or was created
    later) is written from its entries; the others move by the change, in one UPDATE.
    """
    deltas: dict[tuple[int, int], dict[dt.date, list]] = defaultdict(lambda: defaultdict(lambda: [Decimal(0), 0]))
    for sign, rows in ((1, added), (-1, removed)):
        for organization_id, project_id, date, amount in rows:
            delta = deltas[organization_id, project_id][date]
            if amount is None:
                delta[1] += sign
            else:
                delta[0] += sign * amount
    if not deltas:
        return
    _lock(organizations={o for o, _ in deltas}, projects={p for _, p in deltas}, shared=True)
    taken: dict[int, list[dt.date]] = defaultdict(list)
    for organization_id, date in (
        RiskSnapshot.objects.filter(
            organization_id__in={o for o, _ in deltas}, date__gte=min(d for days in deltas.values() for d in days)
        )
        .order_by("date")
        .values_list("organization_id", "date")
    ):
        taken[organization_id].append(date)
    changes = []  # (project, snapshot day, its day's spend change, spend to date change, unpriced change)
    for (organization_id, project_id), days in deltas.items():
        changed = sorted(days.items())
        spend, unpriced, at = Decimal(0), 0, 0
        for day in taken[organization_id]:
            while at < len(changed) and changed[at][0] <= day:
                spend, unpriced, at = spend + changed[at][1][0], unpriced + changed[at][1][1], at + 1
            if spend or unpriced:
                changes.append((project_id, day, days[day][0] if day in days else Decimal(0), spend, unpriced))
    for start in range(0, len(changes), BATCH):
        _apply(changes[start : start + BATCH])


def _apply(changes: list[tuple[int, dt.date, Decimal, Decimal, int]]) -> None:
    table = connection.ops.quote_name(SpendSnapshot._meta.db_table)
    # A UNION of one-row SELECTs: a VALUES list with named columns is not portable to SQLite.
    values = " UNION ALL ".join(
        ["SELECT %s AS project_id, %s AS date, %s AS spend_day, %s AS spend_to_date, %s AS unpriced_entries"]
        * len(changes)
    )
    params = [value for change in changes for value in change]
    # Table and column names are fixed; every value is a parameter.
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {table} AS s SET spend_day = s.spend_day + v.spend_day,
                    spend_to_date = s.spend_to_date + v.spend_to_date,
                    unpriced_entries = s.unpriced_entries + v.unpriced_entries
                FROM ({values}) AS v
                WHERE s.project_id = v.project_id AND s.date = v.date
                RETURNING s.project_id, s.date""",  # nosec B608
            params,
        )
        updated = set(cursor.fetchall())
    missing = {(project_id, day) for project_id, day, *_ in changes} - updated
    if missing:
        _take_rows(missing)


def _take_rows(rows: set[tuple[int, dt.date]]) -> None:
    """Write the snapshot rows of these projects and days from their cost entries."""
    by_day: dict[dt.date, list[int]] = defaultdict(list)
    for project_id, day in rows:
        by_day[day].append(project_id)
    SpendSnapshot.objects.bulk_create(
        [
            SpendSnapshot(project_id=project_id, date=day, **figures)
            for day, project_ids in by_day.items()
            for project_id, figures in _spend_figures(CostEntry.objects.filter(project_id__in=project_ids), day).items()
        ]
    )


def _spend_figures(costs: QuerySet[CostEntry], date: dt.date) -> dict[int, dict]:
    """Return each project's snapshot figures of `date` from `costs` (projects without costs absent)."""
    return {
        row.pop("project"): {
            "spend_day": row["spend_day"] or 0,
            "spend_to_date": row["spend_to_date"] or 0,
            "unpriced_entries": row["unpriced_entries"],
        }
        for row in costs.filter(date__lte=date)
        .order_by()
        .values("project")
        .annotate(
            spend_day=Sum("amount", filter=Q(date=date)),
            spend_to_date=Sum("amount"),
            unpriced_entries=Count("pk", filter=Q(amount__isnull=True)),
        )
    }


@transaction.atomic
def snapshots_take(*, organization: Organization, date: dt.date) -> RiskSnapshot:
    """Record (or refresh) the organization's snapshot of `date`: a fixed number of queries.

    Risk counts are the state when the snapshot is taken; spend is recomputed from the cost
    entries dated up to `date` for every project of the organization (archived too: it may come
    back), so a rerun also repairs a row. The history gets one event for the run, listing the
    spend snapshots it created and the ones it refreshed.
    """
    _lock(organizations=[organization.pk], shared=False)
    severities = dict(
        Risk.objects.filter(organization=organization, status__in=RiskStatus.active())
        .order_by()
        .values_list("severity")
        .annotate(n=Count("pk"))
    )
    snapshot, _ = RiskSnapshot.objects.update_or_create(
        organization=organization,
        date=date,
        defaults={name: severities.get(name, 0) for name in RiskSnapshot.SEVERITY_FIELDS},
    )
    spend = _spend_figures(CostEntry.objects.filter(project__organization=organization), date)
    existing = set(
        SpendSnapshot.objects.filter(project__organization=organization, date=date).values_list("pk", flat=True)
    )
    rows = [
        SpendSnapshot(project_id=project_id, date=date, **spend.get(project_id, {}))
        for project_id in Project.objects.filter(organization=organization).values_list("pk", flat=True)
    ]
    SpendSnapshot.objects.bulk_create(
        rows,
        batch_size=1000,
        update_conflicts=True,
        unique_fields=["project", "date"],
        update_fields=["spend_day", "spend_to_date", "unpriced_entries"],
    )
    audit.record_batch(
        model=SpendSnapshot,
        organization_id=organization.pk,
        label=f"Snapshots of {date.isoformat()}",
        created=[row.pk for row in rows if row.pk not in existing],
        changed=[row.pk for row in rows if row.pk in existing],
        date=date.isoformat(),
        risk_snapshot=snapshot.pk,
    )
    return snapshot


def snapshots_due(*, now: dt.datetime | None = None) -> list[tuple[Organization, dt.date]]:
    """Return each organization whose local yesterday (a complete day) has no snapshot yet, with that date."""
    now = now or timezone.now()
    wanted = [
        (organization, timezone.localdate(now, organization.tzinfo) - dt.timedelta(days=1))
        for organization in Organization.objects.order_by("pk")
    ]
    taken = set(
        RiskSnapshot.objects.filter(date__gte=min((d for _, d in wanted), default=now.date())).values_list(
            "organization_id", "date"
        )
    )
    return [(organization, date) for organization, date in wanted if (organization.pk, date) not in taken]
