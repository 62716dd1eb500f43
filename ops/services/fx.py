"""Exchange rates: the ECB reference rates the operator loads, and costs converted again on a currency change."""

import zipfile
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path

from currency_converter import CurrencyConverter
from currency_converter.currency_converter import get_lines_from_zip
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone

from ops import money
from ops.models import CostEntry, ReferenceRate, Report, ReportKind, ReportState
from ops.services.snapshots import CostSpend, spend_snapshots_adjust
from projects import audit
from projects.models import Organization
from tracker.exceptions import ValidationFailed

BATCH = 5_000


@transaction.atomic
def reference_rates_load(*, path: Path) -> int:
    """Store the rates of an ECB `eurofxref-hist` file (CSV or its zip); return how many were written.

    The file is read with the `currencyconverter` package's own parser. A rate already stored for a
    day and currency is replaced: a corrected file wins. Reference data, shared by every organization.
    """
    content = path.read_bytes()
    converter = CurrencyConverter(currency_file=None, decimal=True)
    try:
        lines = get_lines_from_zip(content) if zipfile.is_zipfile(path) else content.decode("utf-8-sig").splitlines()
        converter.load_lines(lines)
    except (ValueError, UnicodeDecodeError, StopIteration) as exc:
        raise ValidationFailed(
            f"{path.name} is not an ECB eurofxref-hist file (CSV or zip): {exc}", errors={"file": [str(exc)]}
        ) from exc
    rows = [
        ReferenceRate(date=day, currency=currency, per_euro=rate.quantize(money.RATE_QUANTUM))
        for currency, rates in converter._rates.items()
        if money.currency_valid(currency)
        for day, rate in rates.items()
        if rate is not None and rate > Decimal(0)
    ]
    ReferenceRate.objects.bulk_create(
        rows,
        batch_size=BATCH,
        update_conflicts=True,
        unique_fields=["date", "currency"],
        update_fields=["per_euro"],
    )
    return len(rows)


def organization_costs_reconvert(*, organization: Organization, before: str, by: AbstractBaseUser) -> int:
    """Convert every cost of the organization again from its original, into its new currency; return how many.

    Called by `projects.services.organization_update` when the currency changes, in its transaction:
    the originals never change; the amounts, rates and rate dates do, and so do the spend snapshots.
    A cost in a currency no rate covers refuses the whole change. Each batch of entries is one
    history event; the ready status reports of the organization are marked revised.
    """
    entries = CostEntry.objects.filter(project__organization=organization, original_amount__isnull=False)
    bounds = entries.aggregate(start=Min("date"), end=Max("date"))
    if bounds["start"] is None:
        return 0
    # Rows the release before wrote carry no currency: theirs was the organization's until now.
    entries.filter(original_currency="").update(original_currency=before)
    currencies = set(entries.order_by().values_list("original_currency", flat=True).distinct())
    rates = money.rates_for(organizations=[organization], currencies=currencies, **bounds)
    now = timezone.now()
    count = 0
    for batch in _batches(entries.select_for_update(of=("self",)).order_by("pk").iterator(chunk_size=BATCH)):
        added, removed = [], []
        for entry in batch:
            removed.append(CostSpend(organization.pk, entry.project_id, entry.date, entry.amount))
            try:
                conversion = rates.convert(
                    amount=entry.original_amount,
                    currency=entry.original_currency,
                    day=entry.date,
                    organization=organization,
                )
            except money.NoRate as exc:
                raise ValidationFailed(
                    f"Cost {entry.pk} is in {entry.original_currency}: {exc.message}",
                    errors={"currency": exc.errors["currency"]},
                ) from exc
            for name, value in conversion.fields().items():
                setattr(entry, name, value)
            entry.updated_at = now
            added.append(CostSpend(organization.pk, entry.project_id, entry.date, entry.amount))
        CostEntry.objects.bulk_update(batch, [*money.CONVERSION_COLUMNS, "updated_at"])
        spend_snapshots_adjust(added=added, removed=removed)
        with audit.audit_actor(by):
            audit.record_batch(
                model=CostEntry,
                organization_id=organization.pk,
                label=f"Converted {len(batch)} cost entries from {before} to {organization.currency}",
                changed=[entry.pk for entry in batch],
                currency={"from": before, "to": organization.currency},
            )
        count += len(batch)
    Report.objects.filter(organization=organization, kind=ReportKind.STATUS, state=ReportState.READY).update(
        revised_at=now, updated_at=now
    )
    return count


def _batches(entries: Iterable[CostEntry]) -> Iterator[list[CostEntry]]:
    batch: list[CostEntry] = []
    for entry in entries:
        batch.append(entry)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
