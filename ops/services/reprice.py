"""Repricing token usage: the waiting (unpriced) entries once a price arrives, priced ones only on request.

A dry run lists what would change; applying takes the entry ids that dry run listed and changes
exactly those (fewer if one no longer qualifies), in one transaction with the entries locked, and
writes one history batch event. Usage ingested meanwhile is new rows: it is neither touched nor
lost. Figures taken earlier follow: the spend snapshots of the affected days and after get the
difference, and stored status reports whose figures include a changed entry are marked revised.
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from ops import money
from ops.models import CostEntry, CostSource, Report, ReportKind, ReportState
from ops.selectors.portfolio import money_field, price_book, usage_cost, usage_currencies
from ops.services.snapshots import CostSpend, spend_snapshots_adjust
from projects import audit
from projects.models import Organization, Role
from projects.services import membership_require
from tracker.exceptions import ValidationFailed

MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class RepriceChange:
    """One entry's new price: its old amount (None when it waited unpriced) and the new one."""

    entry_id: int
    project_id: int
    project_name: str
    date: dt.date
    provider: str
    model: str
    old_amount: Decimal | None
    new_amount: Decimal
    price_id: int
    conversion: money.Conversion | None = None  # the new amount in the price's currency and its rate

    def as_fields(self) -> dict[str, object]:
        return {
            "entry": self.entry_id,
            "project": self.project_id,
            "project_name": self.project_name,
            "date": self.date.isoformat(),
            "provider": self.provider,
            "model": self.model,
            "old_amount": None if self.old_amount is None else str(self.old_amount),
            "new_amount": str(self.new_amount),
            "price": self.price_id,
        }


@dataclass(frozen=True)
class ProjectRepriceTotal:
    project_id: int
    project_name: str
    entries: int
    old_total: Decimal
    new_total: Decimal

    def as_fields(self) -> dict[str, object]:
        return {
            "project": self.project_id,
            "project_name": self.project_name,
            "entries": self.entries,
            "old_total": money_field(self.old_total),
            "new_total": money_field(self.new_total),
            "difference": money_field(self.new_total - self.old_total),
        }


@dataclass
class RepricePlan:
    """What a reprice changes (dry run) or changed (applied); `still_unpriced` counts entries no price covers."""

    changes: list[RepriceChange] = field(default_factory=list)
    still_unpriced: int = 0
    applied: bool = False
    more: bool = False

    @property
    def totals(self) -> list[ProjectRepriceTotal]:
        grouped: dict[int, list[RepriceChange]] = defaultdict(list)
        for change in self.changes:
            grouped[change.project_id].append(change)
        return [
            ProjectRepriceTotal(
                project_id=project_id,
                project_name=changes[0].project_name,
                entries=len(changes),
                old_total=sum((c.old_amount or Decimal(0) for c in changes), Decimal(0)),
                new_total=sum((c.new_amount for c in changes), Decimal(0)),
            )
            for project_id, changes in sorted(grouped.items(), key=lambda item: item[1][0].project_name)
        ]

    @property
    def entry_ids(self) -> list[int]:
        return [change.entry_id for change in self.changes]


def _candidates(*, organization: Organization, include_priced: bool, model: str) -> QuerySet[CostEntry]:
    entries = CostEntry.objects.filter(project__organization=organization, source=CostSource.USAGE)
    if not include_priced:
        entries = entries.filter(amount__isnull=True)
    if model:
        entries = entries.filter(model=model)
    return entries.select_related("project").order_by("date", "pk")


def _plan(entries: list[CostEntry], organization: Organization) -> RepricePlan:
    """Price each entry with `PriceBook.price_on` and `usage_price`; keep those whose amount or price changes."""
    book = price_book(organization_ids=[organization.pk], models={e.model for e in entries})
    plan = RepricePlan()
    priced = []
    for entry in entries:
        provider = book.provider_for(organization_id=organization.pk, provider=entry.provider, model=entry.model)
        price = provider and book.price_on(
            organization_id=organization.pk, provider=provider, model=entry.model, date=entry.date
        )
        if not price:
            plan.still_unpriced += entry.amount is None
            continue
        priced.append((entry, provider, price))
    rates = money.rates_for(
        organizations=[organization],
        currencies=usage_currencies((price for _, _, price in priced), {organization.pk: organization}),
        start=min((e.date for e, _, _ in priced), default=None),
        end=max((e.date for e, _, _ in priced), default=None),
    )
    for entry, provider, price in priced:
        try:
            cost = usage_cost(
                price=price,
                organization=organization,
                rates=rates,
                day=entry.date,
                input_tokens=entry.input_tokens,
                cached_input_tokens=entry.cached_input_tokens,
                output_tokens=entry.output_tokens,
            )
        except money.NoRate:  # no rate for the price's currency yet: it waits, as without a price
            plan.still_unpriced += entry.amount is None
            continue
        if cost.amount == entry.amount and price.pk == entry.price_id:
            continue
        plan.changes.append(
            RepriceChange(
                entry_id=entry.pk,
                project_id=entry.project_id,
                project_name=entry.project.name,
                date=entry.date,
                provider=provider,
                model=entry.model,
                old_amount=entry.amount,
                new_amount=cost.amount,
                price_id=price.pk,
                conversion=cost,
            )
        )
    return plan


def usage_reprice_plan(
    *, organization: Organization, by: AbstractBaseUser, include_priced: bool = False, model: str = ""
) -> RepricePlan:
    """Dry run (managers): list what repricing would change; nothing is written.

    Waiting (unpriced) usage only, unless `include_priced`: then priced usage whose price or amount
    differs from what the current prices give is listed too. At most MAX_ENTRIES, oldest first (`more`).
    """
    membership_require(user=by, organization=organization, role=Role.MANAGER)
    candidates = _candidates(organization=organization, include_priced=include_priced, model=model)
    entries = list(candidates[: MAX_ENTRIES + 1])
    plan = _plan(entries[:MAX_ENTRIES], organization)
    plan.more = len(entries) > MAX_ENTRIES
    return plan


@transaction.atomic
def usage_reprice_apply(
    *, organization: Organization, by: AbstractBaseUser, entry_ids: Collection[int], include_priced: bool = False
) -> RepricePlan:
    """Apply a dry run (managers): reprice exactly the entries it listed, in one transaction, one history event.

    The entries are locked, then priced again from their locked state: one another reprice priced
    meanwhile, or a priced one without `include_priced`, is left as it is.
    """
    membership_require(user=by, organization=organization, role=Role.MANAGER)
    ids = sorted(set(entry_ids))
    if not ids:
        raise ValidationFailed("List the entries of a dry run to reprice.", errors={"entries": ["A non-empty list."]})
    if len(ids) > MAX_ENTRIES:
        raise ValidationFailed(f"At most {MAX_ENTRIES} entries at once.", errors={"entries": ["Too many entries."]})
    locked = list(
        _candidates(organization=organization, include_priced=include_priced, model="")
        .filter(pk__in=ids)
        .select_for_update(of=("self",))
    )
    plan = _plan(locked, organization)
    plan.applied = True
    if not plan.changes:
        return plan
    by_id = {entry.pk: entry for entry in locked}
    now = timezone.now()
    changed = []
    for change in plan.changes:
        entry = by_id[change.entry_id]
        for name, value in change.conversion.fields().items():
            setattr(entry, name, value)
        entry.price_id, entry.provider, entry.updated_at = change.price_id, change.provider, now
        changed.append(entry)
    CostEntry.objects.bulk_update(
        changed, [*money.CONVERSION_COLUMNS, "price", "provider", "updated_at"], batch_size=1000
    )
    audit.record_batch(
        model=CostEntry,
        organization_id=organization.pk,
        label=f"Repriced {len(changed)} usage entr{'y' if len(changed) == 1 else 'ies'}",
        changed=[c.entry_id for c in plan.changes],
        include_priced=include_priced,
        repriced=[
            {"id": c.entry_id, "old": c.as_fields()["old_amount"], "new": str(c.new_amount), "price": c.price_id}
            for c in plan.changes
        ],
    )
    spend_snapshots_adjust(
        added=[CostSpend(organization.pk, c.project_id, c.date, c.new_amount) for c in plan.changes],
        removed=[CostSpend(organization.pk, c.project_id, c.date, c.old_amount) for c in plan.changes],
    )
    _reports_mark_revised(organization=organization, changes=plan.changes, at=now)
    return plan


def _reports_mark_revised(*, organization: Organization, changes: list[RepriceChange], at: dt.datetime) -> int:
    """Mark revised the ready status reports whose figures include a changed entry (one UPDATE).

    A status report's spend to date runs to its period's end, so every report of the project (or
    the organization) ending on or after the earliest changed day is stale.
    """
    earliest: dict[int, dt.date] = {}
    for change in changes:
        earliest[change.project_id] = min(earliest.get(change.project_id, change.date), change.date)
    covered = Q()
    for project_id, day in earliest.items():
        covered |= Q(project_id=project_id, period_end__gte=day)
    covered |= Q(project__isnull=True, period_end__gte=min(earliest.values()))
    stale = Report.objects.filter(covered, organization=organization, kind=ReportKind.STATUS, state=ReportState.READY)
    return stale.update(revised_at=at, updated_at=at)
