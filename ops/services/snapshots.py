"""Daily trend snapshots: open risks by severity per organization, spend per project."""

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

from django.db import transaction
from django.db.models import Case, Count, F, Q, Sum, Value, When
from django.utils import timezone

from ops.models import CostEntry, Risk, RiskSnapshot, RiskStatus, SpendSnapshot
from projects import audit
from projects.models import Organization, Project


@transaction.atomic
def snapshots_take(*, organization: Organization, date: dt.date) -> RiskSnapshot:
    """Record (or refresh) the organization's snapshot of `date`: a fixed number of queries.

    Risk counts are the state when the snapshot is taken; spend is recomputed from the cost
    entries dated up to `date`, so late entries are caught by a rerun. The history gets one
    event for the run, listing the spend snapshots it created and the ones it refreshed.
    """
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
    spend = {
        row.pop("project"): row
        for row in CostEntry.objects.filter(project__organization=organization, date__lte=date)
        .order_by()
        .values("project")
        .annotate(
            spend_day=Sum("amount", filter=Q(date=date)),
            spend_to_date=Sum("amount"),
            unpriced_entries=Count("pk", filter=Q(amount__isnull=True)),
        )
    }
    project_ids = Project.objects.filter(organization=organization, archived=False).values_list("pk", flat=True)
    existing = set(
        SpendSnapshot.objects.filter(project__organization=organization, date=date).values_list("pk", flat=True)
    )
    rows = []
    for project_id in project_ids:
        figures = spend.get(project_id, {})
        rows.append(
            SpendSnapshot(
                project_id=project_id,
                date=date,
                spend_day=figures.get("spend_day") or 0,
                spend_to_date=figures.get("spend_to_date") or 0,
                unpriced_entries=figures.get("unpriced_entries", 0),
            )
        )
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


def spend_snapshots_adjust(*, deltas: Iterable[tuple[int, dt.date, Decimal, bool]]) -> int:
    """Carry changed costs into the spend snapshots already taken: one UPDATE per project.

    Each delta is (project id, day, amount difference, whether an unpriced entry became priced). The
    snapshot of that day gets the difference in `spend_day`; it and every later one in `spend_to_date`
    and `unpriced_entries`, which run to their day. Increments, not recomputation: costs written
    concurrently by other transactions are never overwritten by a stale total.
    """
    by_project: dict[int, dict[dt.date, tuple[Decimal, int]]] = defaultdict(dict)
    for project_id, day, amount, newly_priced in deltas:
        total, priced = by_project[project_id].get(day, (Decimal(0), 0))
        by_project[project_id][day] = (total + amount, priced + int(newly_priced))
    updated = 0
    for project_id, days in sorted(by_project.items()):
        ordered = sorted(days.items())
        running, cumulative = (Decimal(0), 0), []
        for day, (amount, priced) in ordered:
            running = (running[0] + amount, running[1] + priced)
            cumulative.append((day, running))
        # Latest day first: a snapshot takes the running total of the last changed day on or before it.
        to_date = [When(date__gte=day, then=Value(total)) for day, (total, _) in reversed(cumulative)]
        priced_to_date = [When(date__gte=day, then=Value(n)) for day, (_, n) in reversed(cumulative)]
        updated += SpendSnapshot.objects.filter(project_id=project_id, date__gte=ordered[0][0]).update(
            spend_day=F("spend_day")
            + Case(*[When(date=day, then=Value(amount)) for day, (amount, _) in ordered], default=Value(Decimal(0))),
            spend_to_date=F("spend_to_date") + Case(*to_date),
            unpriced_entries=F("unpriced_entries") - Case(*priced_to_date),
        )
    return updated


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
