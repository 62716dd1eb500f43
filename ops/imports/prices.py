"""Price books imported, not typed: genai-prices' bundled data and LiteLLM's price file (docs/imports.md).

A book is read into `BookPrice` rows (provider code, model, the date a price starts, its default-tier
per-million-token rates), counting what it holds that the tracker does not price (`not_imported`).
`model_prices_import` merges a book into an organization's prices: a model the organization has no
price for gets the book's whole history; one it prices gets a new row from the book's date when that
date is after the organization's latest price, else from the import day, and only for the price the
book says is current. Existing rows are never rewritten (only a deprecation date may be set on them),
so a price costs already used stays as it was. Importing the same book again changes nothing.
"""

import datetime as dt
import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from ops.models import ModelPrice, ModelProvider
from ops.providers import known_provider
from ops.services.reprice import RepricePlan, usage_reprice_plan
from projects import audit
from projects.models import Organization, Role
from projects.services import membership_require
from tracker.exceptions import Conflict, ValidationFailed

# A book's first price has no start date (genai-prices applies it before any dated one; LiteLLM has no
# dates at all): it is stored from this day, so it covers every past usage row as the book does.
UNDATED = dt.date(2000, 1, 1)
# ModelPrice's scale and range: finer book prices are rounded to it (and counted in `not_imported`).
RATE_QUANTUM = Decimal("0.0001")
RATE_LIMIT = Decimal(10) ** 8
MTOK = Decimal(1_000_000)
BOOK_CURRENCY = "USD"  # both books price in US dollars; the tracker converts no currency
# An uploaded LiteLLM file (upstream's, with about 2,000 models, is under 2 MB).
MAX_BOOK_BYTES = 10_000_000


class PriceSource(models.TextChoices):
    GENAI_PRICES = "genai-prices", "genai-prices (bundled with the tracker)"
    LITELLM = "litellm", "LiteLLM model_prices_and_context_window.json"


@dataclass(frozen=True)
class Rates:
    """Default-tier prices per million tokens; `cached_input` None: cached input costs the input price."""

    input: Decimal
    cached_input: Decimal | None
    output: Decimal

    @classmethod
    def of(cls, price: ModelPrice) -> "Rates":
        return cls(price.input_per_mtok, price.cached_input_per_mtok, price.output_per_mtok)

    def as_fields(self) -> dict[str, str | None]:
        return {
            "input_per_mtok": str(self.input),
            "cached_input_per_mtok": None if self.cached_input is None else str(self.cached_input),
            "output_per_mtok": str(self.output),
        }


@dataclass(frozen=True)
class BookPrice:
    provider: str
    model: str
    starts: dt.date | None  # None: undated (stored from UNDATED)
    rates: Rates
    deprecation_date: dt.date | None = None

    @property
    def valid_from(self) -> dt.date:
        return self.starts or UNDATED


@dataclass
class Book:
    """A price book as read: its rows and, per reason, how many of its models' prices were left out."""

    source: str
    version: str
    prices: list[BookPrice] = field(default_factory=list)
    not_imported: Counter = field(default_factory=Counter)
    unknown_providers: Counter = field(default_factory=Counter)
    models: int = 0

    def add(self, price: BookPrice) -> None:
        self.prices.append(price)


def _rate(value: object, *, per: Decimal, book: Book) -> Decimal:
    """Return a book price per million tokens at ModelPrice's scale (counting the ones rounded)."""
    rate = Decimal(str(value)) * per
    if not rate.is_finite() or not 0 <= rate < RATE_LIMIT:
        raise InvalidOperation(value)
    rounded = rate.quantize(RATE_QUANTUM)
    if rounded != rate:
        book.not_imported["rounded to 4 decimal places per million tokens"] += 1
    return rounded


# genai-prices


GENAI_KEYS = {"input_mtok", "cache_read_mtok", "output_mtok"}
GENAI_LEFT_OUT = {
    "cache_write_mtok": "cache-write prices",
    "cache_write_1h_mtok": "cache-write prices",
    "requests_kcount": "per-request prices",
}


def genai_prices_book() -> Book:
    """Read the genai-prices package's bundled data (never its network updater): default tier, start dates."""
    import genai_prices
    from genai_prices import types
    from genai_prices.data import providers

    book = Book(source=PriceSource.GENAI_PRICES, version=f"genai-prices {genai_prices.__version__}")
    for provider in providers:
        code = known_provider(provider.id)
        if code in (None, ModelProvider.OTHER):
            book.unknown_providers[provider.id] += len(provider.models)
            continue
        seen: set[str] = set()
        for info in provider.models:
            book.models += 1
            if info.id in seen:
                book.not_imported["duplicate model ids (the first kept)"] += 1
                continue
            seen.add(info.id)
            if info.price_variants:
                book.not_imported["service-tier variants (batch, flex, priority)"] += 1
            conditional = info.prices if isinstance(info.prices, list) else [types.ConditionalPrice(prices=info.prices)]
            book.not_imported["time-of-day prices"] += sum(
                isinstance(p.constraint, types.TimeOfDateConstraint) for p in conditional
            )
            for starts, prices in _genai_timeline(conditional, types=types):
                rates = _genai_rates(prices, book=book, types=types)
                if rates is None:
                    book.not_imported["no per-token price"] += 1
                    continue
                book.add(BookPrice(provider=code, model=info.id, starts=starts, rates=rates))
    return book


def _genai_timeline(conditional: list, *, types) -> list[tuple[dt.date | None, object]]:
    """Return (start date or None, prices) in date order, as `ModelInfo.get_prices` picks them.

    genai-prices uses the last price in list order whose start date has come (an undated one always
    has), else the first: so the winner can only change on a start date. Time-of-day prices are left
    out, the default price applies around the clock.
    """
    candidates = [p for p in conditional if not isinstance(p.constraint, types.TimeOfDateConstraint)]
    if not candidates:
        return []
    starts = sorted({p.constraint.start_date for p in candidates if p.constraint is not None})
    timeline: list[tuple[dt.date | None, object]] = []
    for day in [None, *starts]:
        active = [p for p in candidates if p.constraint is None or (day is not None and p.constraint.start_date <= day)]
        winner = active[-1].prices if active else candidates[0].prices
        if not timeline or timeline[-1][1] is not winner:
            timeline.append((day, winner))
    return timeline


def _genai_rates(prices, *, book: Book, types) -> Rates | None:
    values = {key: value for key, value in prices.__dict__.items() if value is not None and not key.startswith("_")}
    for key in values.keys() - GENAI_KEYS:
        book.not_imported[GENAI_LEFT_OUT.get(key, "other units (audio, images, searches, …)")] += 1
    if not values.keys() & {"input_mtok", "output_mtok"}:
        return None
    tiered = False

    def base(key: str) -> Decimal | None:
        nonlocal tiered
        value = values.get(key)
        if isinstance(value, types.TieredPrices):
            tiered = True
            value = value.base
        return None if value is None else _rate(value, per=Decimal(1), book=book)

    rates = Rates(base("input_mtok") or Decimal(0), base("cache_read_mtok"), base("output_mtok") or Decimal(0))
    if tiered:
        book.not_imported["tiers by context length (the base tier is imported)"] += 1
    return rates


# LiteLLM

LITELLM_LEFT_OUT = (
    ("_above_", "tiers by context length (the base tier is imported)"),
    ("_batches", "batch prices"),
    ("_batch_requests", "batch prices"),
    ("cache_creation_", "cache-write prices"),
    ("_per_request", "per-request prices"),
    ("_per_query", "per-request prices"),
)
LITELLM_KEYS = {"input_cost_per_token", "cache_read_input_token_cost", "output_cost_per_token"}


def litellm_book(data: object) -> Book:
    """Read a LiteLLM `model_prices_and_context_window.json` (already parsed): per-token prices, no dates."""
    if not isinstance(data, Mapping):
        raise ValidationFailed("A LiteLLM price file is a JSON object of models.", errors={"book": ["Not an object."]})
    book = Book(source=PriceSource.LITELLM, version="LiteLLM price file")
    seen: dict[tuple[str, str], BookPrice] = {}
    for name, spec in data.items():
        if name == "sample_spec" or not isinstance(spec, Mapping):
            continue
        book.models += 1
        provider_name = str(spec.get("litellm_provider") or "")
        code = known_provider(provider_name)
        if code in (None, ModelProvider.OTHER):
            book.unknown_providers[provider_name or "(none)"] += 1
            continue
        model = str(name).removeprefix(f"{provider_name}/")
        if not 0 < len(model) <= 200 or not model.isprintable():
            book.not_imported["invalid model names"] += 1
            continue
        left_out = {
            reason
            for key in spec
            if "cost" in key and key not in LITELLM_KEYS
            for marker, reason in LITELLM_LEFT_OUT
            if marker in key
        }
        for reason in left_out:
            book.not_imported[reason] += 1
        try:
            price = _litellm_price(spec, code=code, model=model, book=book)
        except (InvalidOperation, TypeError, ValueError):
            book.not_imported["invalid prices"] += 1
            continue
        if price is None:
            book.not_imported["no per-token price (per second, character, image, …)"] += 1
            continue
        if (code, model) in seen:
            book.not_imported["duplicate models once the provider prefix is dropped (the first kept)"] += 1
            continue
        seen[code, model] = price
        book.add(price)
    return book


def _litellm_price(spec: Mapping, *, code: str, model: str, book: Book) -> BookPrice | None:
    if spec.get("input_cost_per_token") is None and spec.get("output_cost_per_token") is None:
        return None

    def rate(key: str) -> Decimal | None:
        value = spec.get(key)
        return None if value is None else _rate(value, per=MTOK, book=book)

    deprecation = spec.get("deprecation_date")
    return BookPrice(
        provider=code,
        model=model,
        starts=None,
        rates=Rates(
            rate("input_cost_per_token") or Decimal(0),
            rate("cache_read_input_token_cost"),
            rate("output_cost_per_token") or Decimal(0),
        ),
        deprecation_date=dt.date.fromisoformat(deprecation) if isinstance(deprecation, str) and deprecation else None,
    )


def price_book_read(*, source: str, data: object = None) -> Book:
    """Read a book of `source`: genai-prices takes no file; LiteLLM takes its parsed JSON."""
    if source == PriceSource.GENAI_PRICES:
        return genai_prices_book()
    if source == PriceSource.LITELLM:
        if data is None:
            raise ValidationFailed("A LiteLLM import needs its price file.", errors={"book": ["Required."]})
        return litellm_book(data)
    raise ValidationFailed(f"Unknown price source “{source}”.", errors={"source": [f"One of {PriceSource.values}."]})


# The import


@dataclass(frozen=True)
class PriceRowChange:
    """One price the import writes: a new model's, or a model's new price from `valid_from` (`old`: before)."""

    provider: str
    model: str
    valid_from: dt.date
    new: Rates
    old: Rates | None
    deprecation_date: dt.date | None

    def as_fields(self) -> dict[str, object]:
        return {
            "provider": self.provider,
            "model": self.model,
            "valid_from": self.valid_from.isoformat(),
            **self.new.as_fields(),
            "old": None if self.old is None else self.old.as_fields(),
            "deprecation_date": self.deprecation_date and self.deprecation_date.isoformat(),
        }


@dataclass(frozen=True)
class DeprecationChange:
    """A deprecation date set on an existing price (the one field a used price may change)."""

    price_id: int
    provider: str
    model: str
    valid_from: dt.date
    old: dt.date | None
    new: dt.date | None

    def as_fields(self) -> dict[str, object]:
        return {
            "price": self.price_id,
            "provider": self.provider,
            "model": self.model,
            "valid_from": self.valid_from.isoformat(),
            "old": self.old and self.old.isoformat(),
            "new": self.new and self.new.isoformat(),
        }


@dataclass
class PriceImport:
    """What an import writes (dry run) or wrote, what it left as it was, and what the book held that is not priced."""

    source: str
    version: str
    models_read: int
    new: list[PriceRowChange] = field(default_factory=list)
    changed: list[PriceRowChange] = field(default_factory=list)
    deprecations: list[DeprecationChange] = field(default_factory=list)
    unchanged: int = 0
    kept: list[BookPrice] = field(default_factory=list)
    not_imported: dict[str, int] = field(default_factory=dict)
    unknown_providers: dict[str, int] = field(default_factory=dict)
    applied: bool = False
    reprice: RepricePlan | None = None

    @property
    def digest(self) -> str:
        """Fingerprint of the writes: applying with a preview's digest refuses if the plan changed since."""
        writes = [c.as_fields() for c in self.new + self.changed] + [d.as_fields() for d in self.deprecations]
        return hashlib.sha256(json.dumps(writes, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def unknown_models(self) -> int:
        return sum(self.unknown_providers.values())

    @property
    def writes(self) -> int:
        return len(self.new) + len(self.changed) + len(self.deprecations)


@dataclass
class _Row:
    valid_from: dt.date
    rates: Rates
    deprecation_date: dt.date | None
    price: ModelPrice | None = None  # None: planned by this import


def _in_effect(history: list[_Row], day: dt.date) -> _Row | None:
    earlier = [row for row in history if row.valid_from <= day]
    return earlier[-1] if earlier else None


def _current(rows: list[BookPrice], today: dt.date) -> BookPrice:
    started = [row for row in rows if row.valid_from <= today]
    return started[-1] if started else rows[0]


def _collapse(rows: Iterable[BookPrice]) -> list[BookPrice]:
    """Sort a model's book rows by date and drop each one that repeats the rates of the one before."""
    kept: list[BookPrice] = []
    for row in sorted(rows, key=lambda r: r.valid_from):
        if kept and kept[-1].valid_from == row.valid_from:
            continue
        if kept and kept[-1].rates == row.rates:
            kept[-1] = replace(kept[-1], deprecation_date=row.deprecation_date or kept[-1].deprecation_date)
            continue
        kept.append(row)
    return kept


def _plan(book: Book, organization: Organization, today: dt.date) -> PriceImport:
    result = PriceImport(
        source=book.source,
        version=book.version,
        models_read=book.models,
        not_imported=dict(sorted(book.not_imported.items())),
        unknown_providers=dict(book.unknown_providers.most_common()),
    )
    histories: dict[tuple[str, str], list[_Row]] = defaultdict(list)
    for price in ModelPrice.objects.filter(organization=organization).order_by("provider", "model", "valid_from"):
        histories[price.provider, price.model].append(
            _Row(price.valid_from, Rates.of(price), price.deprecation_date, price)
        )
    grouped: dict[tuple[str, str], list[BookPrice]] = defaultdict(list)
    for price in book.prices:
        grouped[price.provider, price.model].append(price)
    for key, book_rows in grouped.items():
        history = histories[key]
        had_prices = bool(history)
        latest = history[-1].valid_from if history else None
        rows = _collapse(book_rows)
        current = _current(rows, today)
        for row in rows:
            target = row.valid_from
            effect = _in_effect(history, target)
            if latest is not None and target <= latest:
                # The organization has its own prices here: only the book's current price moves in, from today.
                if effect is not None and effect.rates == row.rates:
                    result.unchanged += 1
                    continue
                if row is not current:
                    result.kept.append(row)
                    continue
                target = max(today, row.valid_from)
                effect = _in_effect(history, target)
            if effect is not None and effect.rates == row.rates:
                result.unchanged += 1
                continue
            if effect is not None and effect.valid_from == target:
                result.kept.append(row)  # the organization priced it from that very day: its price stays
                continue
            change = PriceRowChange(
                provider=key[0],
                model=key[1],
                valid_from=target,
                new=row.rates,
                old=effect.rates if effect is not None and had_prices else None,
                deprecation_date=row.deprecation_date,
            )
            (result.changed if had_prices else result.new).append(change)
            history.append(_Row(target, row.rates, row.deprecation_date))
            history.sort(key=lambda r: r.valid_from)
        # A deprecation date belongs on the model's latest price (the one the deprecation signal reads).
        deprecation = next((r.deprecation_date for r in reversed(rows) if r.deprecation_date), None)
        last = history[-1] if history else None
        if deprecation and last is not None and last.price is not None and last.deprecation_date != deprecation:
            result.deprecations.append(
                DeprecationChange(
                    last.price.pk, key[0], key[1], last.valid_from, last.price.deprecation_date, deprecation
                )
            )
    return result


def model_prices_import(
    *, organization: Organization, by: AbstractBaseUser, book: Book, dry_run: bool, digest: str = ""
) -> PriceImport:
    """Merge a price book into the organization's prices (managers); a dry run writes nothing.

    The import and the reprice dry run that follows it run in one transaction, rolled back for a dry
    run, so a preview shows what repricing waiting usage would do with the new prices. With a
    preview's `digest`, applying is refused when the plan differs from what the preview showed.
    """
    membership_require(user=by, organization=organization, role=Role.MANAGER)
    if organization.currency != BOOK_CURRENCY:
        raise ValidationFailed(
            f"Price books are in {BOOK_CURRENCY} and {organization.name} keeps its figures in "
            f"{organization.currency}: enter its prices in {organization.currency} instead.",
            errors={"source": [f"Prices in {BOOK_CURRENCY} only."]},
        )
    try:
        with transaction.atomic():
            # One import at a time per organization: the plan is made and written under the lock.
            Organization.objects.select_for_update().filter(pk=organization.pk).first()
            result = _apply(book=book, organization=organization, by=by, digest=digest)
            result.applied = not dry_run
            transaction.set_rollback(dry_run)
    except IntegrityError as exc:
        raise Conflict("Prices changed during the import; run it again.") from exc
    return result


def _apply(*, book: Book, organization: Organization, by: AbstractBaseUser, digest: str) -> PriceImport:
    today = timezone.localdate(timezone.now(), organization.tzinfo)
    result = _plan(book, organization, today)
    if digest and digest != result.digest:
        raise Conflict(
            "The prices or the book changed since the preview: preview the import again.",
            errors={"digest": ["Does not match the current plan."]},
        )
    if not result.writes:
        result.reprice = usage_reprice_plan(organization=organization, by=by)
        return result
    created = ModelPrice.objects.bulk_create(
        ModelPrice(
            organization=organization,
            provider=change.provider,
            model=change.model,
            valid_from=change.valid_from,
            input_per_mtok=change.new.input,
            cached_input_per_mtok=change.new.cached_input,
            output_per_mtok=change.new.output,
            deprecation_date=change.deprecation_date,
            currency=BOOK_CURRENCY,
        )
        for change in result.new + result.changed
    )
    deprecated = {d.price_id: d.new for d in result.deprecations}
    prices = list(ModelPrice.objects.filter(pk__in=deprecated).select_for_update())
    for price in prices:
        price.deprecation_date, price.updated_at = deprecated[price.pk], timezone.now()
    ModelPrice.objects.bulk_update(prices, ["deprecation_date", "updated_at"])
    audit.record_batch(
        model=ModelPrice,
        organization_id=organization.pk,
        label=(
            f"Imported prices from {result.version}: {len(result.new)} new, {len(result.changed)} changed, "
            f"{len(result.deprecations)} deprecation dates"
        ),
        created=[price.pk for price in created],
        changed=list(deprecated),
        source=result.source,
        version=result.version,
        deprecations=[d.as_fields() for d in result.deprecations],
        not_imported=result.not_imported,
    )
    result.reprice = usage_reprice_plan(organization=organization, by=by)
    return result
