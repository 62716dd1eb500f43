"""FOCUS bills (cloud and LLM-gateway cost exports) imported as billed costs (docs/imports.md, "FOCUS bills").

Columns are read by header name (ops/focus.py: FOCUS 1.2 names, the 1.0 spellings as aliases).
Each row maps to a project by its `Tags` key `tracker_project` (a project's id or slug), else by
the organization's mapping rules (`BillingMappingRule`, most specific column first); a row that
maps nowhere is kept with no project and reported with its totals. A row in another currency
than the organization's is converted (ops/money.py) at the rate of its ChargePeriodStart's day
(UTC), each distinct currency × day once; its costs as billed, the rate and the rate's day are kept
beside the converted ones. A currency with no rate, and a malformed row, is refused with its line.
`Tags` are stored as our tags (`ops.focus.tags_from_focus`: keys normalized, the ones it cannot
keep dropped and counted in the summary).

Rows are parsed in one streaming pass and COPYed into a temporary table as they are parsed; one
transaction then replaces each billing period × source found in the file: the rows that did not
change stay, the others are deleted or inserted, and one history event records the batch. The
same file again therefore writes nothing. Memory is bounded by the block (and a fixed-size filter of
the row hashes seen, `_Repeats`), whatever the file.
"""

import csv
import datetime as dt
import hashlib
import io
import json
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction

from ops import focus as F
from ops import money
from ops.imports.base import FileImporter, LineError, Preview, Summary, json_ready
from ops.imports.models import BilledCost, BillingMappingRule, ChargeCategory, MappingField
from projects import audit
from projects.models import Organization, Project
from tracker.exceptions import ValidationFailed

FORMAT = "focus"
PREVIEW_ROWS = 20
DEFAULT_SOURCE = "FOCUS"
CHARGE_CATEGORIES = frozenset(ChargeCategory.values)
# The temporary table's columns, in the order `_parse` yields them (the BilledCost columns it fills).
COLUMNS = (
    "line",
    "project_id",
    "source",
    "billing_period_start",
    "billing_period_end",
    "charge_period_start",
    "charge_period_end",
    "charge_category",
    "charge_class",
    "billed_cost",
    "effective_cost",
    "list_cost",
    "currency",
    "service_name",
    "sku_id",
    "resource_id",
    "consumed_quantity",
    "consumed_unit",
    "sub_account_id",
    "tags",
    "row_hash",
    "original_currency",
    "original_billed_cost",
    "original_effective_cost",
    "original_list_cost",
    "exchange_rate",
    "exchange_rate_date",
)
# A converted cost keeps the column's 8 decimals (bill lines are often fractions of a cent), rounded half-even.
COST_QUANTUM = Decimal("0.00000001")


class _RowError(Exception):
    def __init__(self, message: str, column: str = ""):
        super().__init__(message)
        self.message, self.column = message, column


@dataclass
class _Context:
    """What a parse needs of the organization: its currency, projects, mapping rules and exchange rates."""

    organization: Organization
    projects: dict[str, int]  # id and slug → id
    rules: list[tuple[str, dict[str, int]]]  # column → {value → project id}, most specific first
    source: str
    errors: list[LineError] = field(default_factory=list)
    tags_dropped: int = 0  # FOCUS tags `tags_from_focus` could not keep, over the file
    _times: dict[str, dt.datetime] = field(default_factory=dict)
    _tags: dict[str, tuple[str, str | None, int]] = field(default_factory=dict)
    # The rates loaded (`money.rates_for`) for these currencies and days, and each currency × day's answer.
    _rates: money.Rates | None = None
    _rate_currencies: frozenset[str] = frozenset()
    _rate_days: tuple[dt.date, dt.date] = (dt.date.max, dt.date.min)
    _day_rates: dict[tuple[str, dt.date], tuple[Decimal, dt.date] | _RowError] = field(default_factory=dict)
    _start_rates: dict[tuple[str, str], tuple[Decimal, dt.date] | _RowError] = field(default_factory=dict)
    # Called before the parse queries the database (`_Stager.pause` while rows are being COPYed).
    before_query: Callable[[], None] = lambda: None

    @classmethod
    def of(cls, organization: Organization, options: Mapping[str, Any]) -> "_Context":
        projects: dict[str, int] = {}
        for pk, slug in Project.objects.filter(organization=organization).values_list("pk", "slug"):
            projects[str(pk)] = projects[slug] = pk
        by_field: dict[str, dict[str, int]] = {}
        for column, value, project_id in BillingMappingRule.objects.filter(organization=organization).values_list(
            "field", "value", "project_id"
        ):
            by_field.setdefault(column, {})[value] = project_id
        rules = [(column, by_field[column]) for column in MappingField.values if column in by_field]
        return cls(organization, projects, rules, str(options.get("source") or "").strip())

    def rate(self, currency: str, charge_start: str) -> tuple[Decimal, dt.date]:
        """Return the rate from `currency` to the organization's on the charge's day (UTC), and the rate's day.

        Each distinct ChargePeriodStart text is read once, each currency × day answered once (`_day_rate`).
        """
        found = self._start_rates.get((currency, charge_start))
        if found is None:
            day = self.time(charge_start, F.CHARGE_PERIOD_START).astimezone(dt.UTC).date()
            found = self._day_rate(currency, day)
            if len(self._start_rates) > 10_000:  # bounded: bills repeat a handful of charge periods
                self._start_rates.clear()
            self._start_rates[(currency, charge_start)] = found
        if isinstance(found, _RowError):
            raise found
        return found

    def _day_rate(self, currency: str, day: dt.date) -> tuple[Decimal, dt.date] | _RowError:
        """Return the rate of a currency × day, or the row error of a currency no rate covers.

        The rates are loaded for a currency's first row from the first of its month to today, and again
        only for a new currency or a day outside: a few queries per file, none per row.
        """
        found = self._day_rates.get((currency, day))
        if found is None:
            if not money.currency_valid(currency):
                found = _RowError(
                    f"BillingCurrency {currency[:50] or '(empty)'!r} is not an ISO 4217 code.", F.BILLING_CURRENCY
                )
            else:
                first, last = self._rate_days
                if currency not in self._rate_currencies or not first <= day <= last:
                    self._rate_currencies |= {currency}
                    self._rate_days = min(first, day.replace(day=1)), max(last, day, dt.date.today())
                    self.before_query()
                    self._rates = money.rates_for(
                        organizations=[self.organization],
                        currencies=self._rate_currencies,
                        start=self._rate_days[0],
                        end=self._rate_days[1],
                    )
                try:
                    found = self._rates.rate(organization=self.organization, currency=currency, day=day)
                except money.NoRate as exc:
                    found = _RowError(exc.message, F.BILLING_CURRENCY)
            self._day_rates[(currency, day)] = found
        return found

    def tags(self, text: str) -> tuple[str, str | None]:
        """Return a `Tags` cell as our tags (JSON) and its `tracker_project` value, each distinct text once."""
        found = self._tags.get(text)
        if found is None:
            try:
                value = json.loads(text)
            except ValueError:
                raise _RowError("Tags is not JSON.", F.TAGS) from None
            if not isinstance(value, dict):
                raise _RowError("Tags is not a JSON object.", F.TAGS)
            tags = F.tags_from_focus(value)
            prefix = F.TRACKER_TAG_PREFIX
            ours = sum(key.strip().lower().startswith(prefix) for key in value)  # JSON keys are text
            tagged = value.get(F.PROJECT_TAG)
            found = (json.dumps(tags), None if tagged is None else str(tagged), len(value) - ours - len(tags))
            if len(self._tags) > 1_000:  # bounded: a bill repeats its tag sets, or they differ row by row
                self._tags.clear()
            self._tags[text] = found
        self.tags_dropped += found[2]
        return found[0], found[1]

    def periods_check(self, bps: str, bpe: str, cps: str, cpe: str) -> None:
        """Refuse a billing period not ending after its start, or a charge period ending before its start."""
        if self.time(bpe, F.BILLING_PERIOD_END) <= self.time(bps, F.BILLING_PERIOD_START):
            raise _RowError("BillingPeriodEnd is not after BillingPeriodStart.", F.BILLING_PERIOD_END)
        if self.time(cpe, F.CHARGE_PERIOD_END) < self.time(cps, F.CHARGE_PERIOD_START):
            raise _RowError("ChargePeriodEnd is before ChargePeriodStart.", F.CHARGE_PERIOD_END)

    def time(self, text: str, column: str) -> dt.datetime:
        """Parse an ISO 8601 date-time (UTC when no offset is given), each distinct text once."""
        parsed = self._times.get(text)
        if parsed is None:
            try:
                parsed = dt.datetime.fromisoformat(text)
            except ValueError:
                raise _RowError(f"{column} {text!r} is not an ISO 8601 date-time.", column) from None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.UTC)
            if len(self._times) > 10_000:  # bounded: bills repeat a handful of periods
                self._times.clear()
            self._times[text] = parsed
        return parsed


# The four amounts of a row (billed, effective, list, consumed quantity), joined by \x1f: plain decimals
# within their columns' digits, billed required. Anything else is judged by `_amounts_check`.
_AMOUNT = r"[+-]?(?:\d{1,12}(?:\.\d*)?|\.\d+)"
_AMOUNTS = re.compile(rf"{_AMOUNT}\x1f(?:{_AMOUNT})?\x1f(?:{_AMOUNT})?\x1f(?:[+-]?(?:\d{{1,16}}(?:\.\d*)?|\.\d+))?")
_COST_BOUND = Decimal(10) ** 12
# Each amount column and the bound of its integer part (numeric(20, 8); the quantity numeric(24, 8)).
_AMOUNT_COLUMNS = (
    (F.BILLED_COST, _COST_BOUND),
    (F.EFFECTIVE_COST, _COST_BOUND),
    (F.LIST_COST, _COST_BOUND),
    (F.CONSUMED_QUANTITY, Decimal(10) ** 16),
)


def _amounts_check(*texts: str) -> None:
    """Refuse the first amount that is not a finite number within its column (an exponent is allowed)."""
    for text, (column, bound) in zip(texts, _AMOUNT_COLUMNS, strict=True):
        if not text:
            if column == F.BILLED_COST:
                raise _RowError(f"{column} is required.", column)
            continue
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise _RowError(f"{column} {text[:50]!r} is not a number.", column) from None
        if not value.is_finite() or abs(value) >= bound:
            raise _RowError(f"{column} {text[:50]!r} is not a number below {bound:,.0f}.", column)


def _converted(text: str, rate: Decimal, column: str) -> str:
    """Return an amount times `rate` at the column's 8 decimals (half-even); refuse one the column cannot hold."""
    if not text:
        return text
    value = (Decimal(text) * rate).quantize(COST_QUANTUM, ROUND_HALF_EVEN)
    if abs(value) >= _COST_BOUND:
        raise _RowError(f"{column} {text[:50]!r} converted is not a number below {_COST_BOUND:,.0f}.", column)
    return str(value)


def _header(stream: Any) -> tuple[Any, dict[str, int]]:
    """Return the CSV reader past the header, and each known column's index (aliases read as FOCUS 1.2 names)."""
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        raise ValidationFailed("The file is empty.", errors={"file": ["The file is empty."]}) from None
    names = [F.ALIASES.get(h.strip(), h.strip()) for h in header]
    index = {name: i for i, name in enumerate(names)}
    missing = [name for name in F.IMPORT_REQUIRED if name not in index]
    if missing:
        message = f"Not a FOCUS file: the header lacks {', '.join(missing)}."
        raise ValidationFailed(message, errors={"file": [message]})
    return reader, index


def _parse(ctx: _Context, stream: Any) -> Iterator[tuple[Any, ...]]:
    """Yield one tuple (COLUMNS' order) per good row; record each refused row in `ctx.errors`.

    The loop is the import's cost per row: cells by header index, the four amounts checked by one
    pattern, each distinct period pair checked once, the hash taken over the row as read.
    """
    reader, index = _header(stream)
    width = max(index.values()) + 1
    absent = width  # an optional column the file lacks reads as the empty cell appended to each row
    at = {name: index.get(name, absent) for name in F.IMPORT_COLUMNS}
    i_billed, i_effective, i_list = at[F.BILLED_COST], at[F.EFFECTIVE_COST], at[F.LIST_COST]
    i_currency, i_category, i_class = at[F.BILLING_CURRENCY], at[F.CHARGE_CATEGORY], at[F.CHARGE_CLASS]
    i_bps, i_bpe = at[F.BILLING_PERIOD_START], at[F.BILLING_PERIOD_END]
    i_cps, i_cpe = at[F.CHARGE_PERIOD_START], at[F.CHARGE_PERIOD_END]
    i_service, i_sku, i_resource = at[F.SERVICE_NAME], at[F.SKU_ID], at[F.RESOURCE_ID_1_2]
    i_quantity, i_unit = at[F.CONSUMED_QUANTITY], at[F.CONSUMED_UNIT]
    i_sub_account, i_tags = at[F.SUB_ACCOUNT_ID], at[F.TAGS]
    i_provider, i_issuer = at[F.PROVIDER_NAME], at[F.INVOICE_ISSUER_NAME]
    rule_columns = [(index[name], values) for name, values in ctx.rules if name in index]
    currency, projects, fixed_source = ctx.organization.currency, ctx.projects, ctx.source
    amounts_match, checked_periods = _AMOUNTS.fullmatch, set()
    blake2b = hashlib.blake2b

    for cells in reader:
        line = reader.line_num
        if not cells:
            continue
        row = [cell.strip() for cell in cells]
        row.append("")
        try:
            if len(cells) < width:
                raise _RowError(f"The row has {len(cells)} columns, the header {width}.")
            joined = "\x1f".join(row)
            if "\x00" in joined:
                raise _RowError("The row holds a null character.")
            billed, effective, listed, quantity = row[i_billed], row[i_effective], row[i_list], row[i_quantity]
            if not amounts_match(f"{billed}\x1f{effective}\x1f{listed}\x1f{quantity}"):
                _amounts_check(billed, effective, listed, quantity)
            bps, bpe, cps, cpe = row[i_bps], row[i_bpe], row[i_cps], row[i_cpe]
            if (bps, bpe, cps, cpe) not in checked_periods:
                ctx.periods_check(bps, bpe, cps, cpe)
                checked_periods.add((bps, bpe, cps, cpe))
            category = row[i_category]
            if category not in CHARGE_CATEGORIES:
                raise _RowError(
                    f"ChargeCategory {category!r} is not one of {', '.join(ChargeCategory.values)}.", F.CHARGE_CATEGORY
                )
            billed_in = row[i_currency]
            if billed_in == currency:
                original, rate = ("", None, None, None, 1, None), ""
            else:
                rate, rate_day = ctx.rate(billed_in, cps)
                original = (billed_in, billed, effective or None, listed or None, rate, rate_day)
                billed = _converted(billed, rate, F.BILLED_COST)
                effective = _converted(effective, rate, F.EFFECTIVE_COST)
                listed = _converted(listed, rate, F.LIST_COST)
            project_id = None
            if row[i_tags]:
                tags_text, tagged = ctx.tags(row[i_tags])
                if tagged is not None:
                    project_id = projects.get(tagged)
            else:
                tags_text = "{}"
            if project_id is None:
                for i, values in rule_columns:
                    project_id = values.get(row[i])
                    if project_id is not None:
                        break
        except _RowError as exc:
            ctx.errors.append(LineError(line=line, column=exc.column, message=exc.message))
            continue
        if len(checked_periods) > 10_000:  # bounded: bills repeat a handful of periods
            checked_periods.clear()
        source = (fixed_source or row[i_provider] or row[i_issuer] or DEFAULT_SOURCE)[:200]
        yield (
            line,
            project_id,
            source,
            bps,
            bpe,
            cps,
            cpe,
            category,
            row[i_class][:20],
            billed,
            effective or None,
            listed or None,
            currency,
            row[i_service][:300],
            row[i_sku][:300],
            row[i_resource][:500],
            quantity or None,
            row[i_unit][:100],
            row[i_sub_account][:300],
            tags_text,
            # The row as read, with its project, source and rate: what a re-import compares.
            blake2b(f"{project_id}\x1f{source}\x1f{rate}{joined}".encode(), digest_size=16).hexdigest(),
            *original,
        )


def _figures() -> dict[str, Any]:
    return {"rows": 0, "billed_cost": Decimal(0), "effective_cost": Decimal(0)}


def _summary(
    organization: Organization, in_file: list[tuple[Any, str, int, Decimal, Decimal]], errors: list[LineError]
) -> Summary:
    """Total the file's rows per project (slug) and charge category; the unmapped ones apart, in `details`."""
    slugs = dict(Project.objects.filter(organization=organization).values_list("pk", "slug"))
    summary = Summary(format=FORMAT, refused=len(errors), errors=errors)
    summary.totals = {"billed_cost": Decimal(0), "effective_cost": Decimal(0)}
    unmapped = _figures()
    for project_id, category, rows, billed, effective in in_file:
        entry = unmapped if project_id is None else summary.by_project.setdefault(slugs[project_id], _figures())
        entry["rows"] += rows
        entry["billed_cost"] += billed
        entry["effective_cost"] += effective
        by_category = entry.setdefault("by_category", {})
        by_category[category] = by_category.get(category, Decimal(0)) + billed
        summary.totals["billed_cost"] += billed
        summary.totals["effective_cost"] += effective
        summary.rows += rows
    summary.by_project = dict(sorted(summary.by_project.items()))
    summary.details = {"currency": organization.currency, "unmapped": json_ready(unmapped), "periods": []}
    summary.rows += len(errors)
    return summary


def preview(*, organization: Organization, stream: Any, options: Mapping[str, Any]) -> Preview:
    """Parse the whole file and write nothing: its first rows, every error, totals per project."""
    ctx = _Context.of(organization, options)
    rows: list[dict[str, Any]] = []
    totals: dict[tuple[Any, str], list] = {}
    for values in _parse(ctx, stream):
        if len(rows) < PREVIEW_ROWS:
            rows.append(dict(zip(COLUMNS, values, strict=True)))
        entry = totals.setdefault((values[1], values[7]), [0, Decimal(0), Decimal(0)])
        entry[0] += 1
        entry[1] += Decimal(values[9])
        entry[2] += Decimal(values[10] or 0)
    in_file = [(project_id, category, *figures) for (project_id, category), figures in totals.items()]
    summary = _summary(organization, in_file, ctx.errors)
    summary.created = summary.rows - summary.refused
    summary.details["tags_dropped"] = ctx.tags_dropped
    return Preview(rows=rows, errors=ctx.errors, summary=summary)


def apply(
    *, organization: Organization, stream: Any, options: Mapping[str, Any], actor: AbstractBaseUser | None
) -> Summary:
    """Import the file: stage it with COPY in chunks, then replace its periods in one transaction."""
    ctx = _Context.of(organization, options)
    staging = f"{STAGING_PREFIX}{uuid.uuid4().hex[:16]}"  # a generated name, never input
    table = BilledCost._meta.db_table
    with connection.cursor() as cursor:
        _staging_sweep(cursor)
        # Held until the tables are dropped: a session that dies (a killed worker) lets a later import drop them.
        cursor.execute(f"SELECT pg_advisory_lock({STAGING_KEY})", [staging])
        # The columns' types without their constraints: rows are checked by the final insert. Unlogged, not
        # temporary: a temporary table lives in the session's few local buffers, and spills to disk at this size.
        cursor.execute(
            f"CREATE UNLOGGED TABLE {staging}_raw AS SELECT {', '.join(COLUMNS)}, occurrence FROM {table} WITH NO DATA"  # nosec B608
        )
        try:
            with _Stager(cursor, f"{staging}_raw") as stager:
                ctx.before_query = stager.pause
                if hasattr(stream, "before_save"):  # the job's progress writes (ops.imports.jobs)
                    stream.before_save = stager.pause
                for values in _parse(ctx, stream):
                    stager.add(values)
            summary = _replace(cursor, staging, organization, options, ctx.errors)
            summary.details["tags_dropped"] = ctx.tags_dropped
            return summary
        finally:
            cursor.execute(f"DROP TABLE IF EXISTS {staging}_raw, {staging}")  # nosec B608
            cursor.execute(f"SELECT pg_advisory_unlock({STAGING_KEY})", [staging])


# An import's staging tables are `focus_import_<16 hex>` and `…_raw`, under a session advisory lock of that name
# (its key's high half spells "FOCU"): a session that dies drops its lock, never its tables.
STAGING_PREFIX = "focus_import_"
STAGING_KEY = "x'464f4355'::int, hashtext(%s)"
STAGING_TABLES_SQL = r"""SELECT DISTINCT substring(tablename FROM '^(focus_import_[0-9a-f]{16})')
    FROM pg_tables WHERE schemaname = current_schema() AND tablename ~ '^focus_import_[0-9a-f]{16}(_raw)?$'"""


def _staging_sweep(cursor: Any) -> None:
    """Drop the staging tables of imports whose session died (a killed worker): no one holds their lock."""
    cursor.execute(STAGING_TABLES_SQL)
    for (staging,) in cursor.fetchall():
        cursor.execute(f"SELECT pg_try_advisory_lock({STAGING_KEY})", [staging])
        if cursor.fetchone()[0]:
            cursor.execute(f"DROP TABLE IF EXISTS {staging}_raw, {staging}")  # nosec B608 - a name matched above
            cursor.execute(f"SELECT pg_advisory_unlock({STAGING_KEY})", [staging])


class _Repeats:
    """A Bloom filter of the row hashes seen: which rows are certainly the first of their hash in the file.

    A row's `occurrence` is its rank among the file's identical rows (same source, period and hash).
    A hash the filter has never seen is a first row: occurrence 1, known as it is read. Any other row
    (a repeat, or a false positive: under 1 in 10,000 rows at a million) is staged with no occurrence and
    numbered in SQL (`_numbered`). Fixed size (8 MiB): memory stays flat whatever the file.
    """

    BITS = 26  # 2**26 bits; each hash sets three of them, taken from its first 78 bits
    MASK = (1 << BITS) - 1

    def __init__(self) -> None:
        self.bits = bytearray(1 << (self.BITS - 3))

    def first(self, row_hash: str) -> bool:
        """Record the hash (32 hex digits); whether it was certainly not seen before."""
        bits, mask, h = self.bits, self.MASK, int(row_hash, 16)
        seen = True
        for _ in range(3):
            i = h & mask
            byte, bit = i >> 3, 1 << (i & 7)
            if not bits[byte] & bit:
                seen = False
                bits[byte] |= bit
            h >>= self.BITS
        return not seen


class _Stager:
    """COPY the parsed rows, each with its occurrence if known, into the staging table as they are parsed.

    Rows are sent in blocks of BLOCK_ROWS into one open COPY, so PostgreSQL reads a block while the next
    is parsed; waiting for a COPY to end once per chunk of parsed rows left the two cores taking turns.
    Whatever else needs the connection meanwhile (the job's progress write, a rates query) calls `pause`
    first: it ends the open COPY, and the next block opens another.
    """

    BLOCK_ROWS = 1_000

    def __init__(self, cursor: Any, staging: str):
        columns = f"{', '.join(COLUMNS)}, occurrence"
        self._sql = f"COPY {staging} ({columns}) FROM STDIN (FORMAT csv, FORCE_NOT_NULL ({_NOT_NULL}))"  # nosec B608
        self._cursor, self._block = cursor, []
        self._open: tuple[Any, Any] | None = None  # the open COPY's context manager and its Copy
        self._first = _Repeats().first

    def __enter__(self) -> "_Stager":
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: Any) -> None:
        if kind is None:
            self.pause()
        elif self._open is not None:  # psycopg ends the open COPY with the error
            open_copy, self._open = self._open, None
            open_copy[0].__exit__(kind, error, trace)

    def add(self, values: tuple[Any, ...]) -> None:
        self._block.append((*values, 1 if self._first(values[_HASH]) else None))
        if len(self._block) == self.BLOCK_ROWS:
            self._send()

    def pause(self) -> None:
        """Send the rows waiting and end the open COPY (PostgreSQL has then read every row added)."""
        if self._block:
            self._send()
        if self._open is not None:
            open_copy, self._open = self._open, None
            open_copy[0].__exit__(None, None, None)

    def _send(self) -> None:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(self._block)
        if self._open is None:
            manager = self._cursor.copy(self._sql)
            self._open = manager, manager.__enter__()
        self._open[1].write(text.getvalue())
        self._block = []


def _replace(
    cursor: Any, staging: str, organization: Organization, options: Mapping[str, Any], errors: list[LineError]
) -> Summary:
    table = BilledCost._meta.db_table
    columns = ", ".join(COLUMNS)
    same_row = (
        "b.source = n.source AND b.billing_period_start = n.billing_period_start "
        "AND b.row_hash = n.row_hash AND b.occurrence = n.occurrence"
    )
    org = organization.pk
    job_id = options.get("import_job_id")
    # Every name interpolated below is generated or comes from model metadata, never from input.
    numbered = _numbered(f"{staging}_raw")
    insert = f"""WITH added AS (
            INSERT INTO {table} (organization_id, import_job_id, {columns}, occurrence)
            SELECT %s, %s, n.* FROM ({{rows}}) n {{where}}
            RETURNING source, billing_period_start, project_id, billed_cost)
        SELECT source, billing_period_start, project_id, count(*), sum(billed_cost)
        FROM added GROUP BY 1, 2, 3"""  # nosec B608
    with transaction.atomic():
        # Lock this organization's bill imports: two at once must not both insert the same period.
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_NAMESPACE, org])
        cursor.execute(
            f"""SELECT EXISTS (SELECT 1 FROM {table} b
                JOIN (SELECT DISTINCT source, billing_period_start FROM {staging}_raw) p
                  ON b.source = p.source AND b.billing_period_start = p.billing_period_start
                WHERE b.organization_id = %s)""",  # nosec B608
            [org],
        )
        if not cursor.fetchone()[0]:  # the file's periods are new: insert every row
            cursor.execute(insert.format(rows=numbered, where=""), [org, job_id])
            removed, added = [], cursor.fetchall()
        else:
            # Number identical rows of a period (1, 2, …): each is then matched with its stored twin.
            cursor.execute(f"CREATE UNLOGGED TABLE {staging} AS {numbered}")  # nosec B608
            cursor.execute(f"CREATE INDEX ON {staging} (source, billing_period_start, row_hash, occurrence)")  # nosec B608
            cursor.execute(f"ANALYZE {staging}")  # nosec B608
            cursor.execute(
                f"""WITH gone AS (
                        DELETE FROM {table} b
                        USING (SELECT DISTINCT source, billing_period_start FROM {staging}) p
                        WHERE b.organization_id = %s AND b.source = p.source
                          AND b.billing_period_start = p.billing_period_start
                          AND NOT EXISTS (SELECT 1 FROM {staging} n WHERE {same_row})
                        RETURNING b.source, b.billing_period_start, b.project_id, b.billed_cost)
                    SELECT source, billing_period_start, project_id, count(*), sum(billed_cost)
                    FROM gone GROUP BY 1, 2, 3""",  # nosec B608
                [org],
            )
            removed = cursor.fetchall()
            where = f"WHERE NOT EXISTS (SELECT 1 FROM {table} b WHERE b.organization_id = %s AND {same_row})"  # nosec B608
            rows = f"SELECT * FROM {staging}"  # nosec B608
            cursor.execute(insert.format(rows=rows, where=where), [org, job_id, org])
            added = cursor.fetchall()
        cursor.execute(
            f"""SELECT project_id, charge_category, count(*), sum(billed_cost), coalesce(sum(effective_cost), 0)
            FROM {staging}_raw GROUP BY 1, 2 ORDER BY 1, 2"""  # nosec B608
        )
        in_file = cursor.fetchall()
        summary = _summary(organization, in_file, errors)
        _changes(summary, added, removed)
        if added or removed:
            audit.record_batch(
                model=BilledCost,
                organization_id=org,
                label=f"FOCUS bill import: {summary.created} row(s) added, {summary.removed} removed",
                import_job=job_id,
                periods=summary.details["periods"],
            )
    return summary


def _numbered(raw: str) -> str:
    """The staged rows, each with its occurrence: its rank by line among the file's identical rows.

    The rows `_Repeats` knew as first keep their 1; only the others are numbered, together with the
    first row of their hash (which takes rank 1), so the sort covers the repeats, not the file.
    """
    columns, same = ", ".join(COLUMNS), "source, billing_period_start, row_hash"
    return f"""SELECT {columns}, occurrence FROM {raw} WHERE occurrence IS NOT NULL
        UNION ALL
        SELECT {columns}, rank FROM (
            SELECT {columns}, occurrence, row_number() OVER (PARTITION BY {same} ORDER BY line) AS rank
            FROM {raw}
            WHERE occurrence IS NULL OR ({same}) IN (SELECT {same} FROM {raw} WHERE occurrence IS NULL)
        ) r WHERE occurrence IS NULL"""  # nosec B608


def _changes(summary: Summary, added: list, removed: list) -> None:
    """Count the rows added and removed, per billing period and source, into `summary`."""
    periods: dict[tuple[str, dt.datetime], dict[str, Any]] = {}
    for kind, rows_of in (("added", added), ("removed", removed)):
        for source, start, _project, rows, billed in rows_of:
            period = periods.setdefault(
                (source, start),
                {"source": source, "billing_period_start": start.isoformat(), "added": 0, "removed": 0}
                | {"billed_added": Decimal(0), "billed_removed": Decimal(0)},
            )
            period[kind] += rows
            period[f"billed_{kind}"] += billed
    summary.details["periods"] = [json_ready(p) for _key, p in sorted(periods.items())]
    summary.created = sum(p["added"] for p in periods.values())
    summary.removed = sum(p["removed"] for p in periods.values())
    summary.unchanged = summary.rows - summary.refused - summary.created


LOCK_NAMESPACE = 0x0F0C  # pg_advisory_xact_lock's first key: FOCUS bill imports


# COPY's CSV format, written by the csv module in C: None is an empty unquoted cell, read as NULL;
# the text columns read an empty cell as the empty string.
_NULLABLE = {
    "occurrence",
    "project_id",
    "effective_cost",
    "list_cost",
    "consumed_quantity",
    "original_billed_cost",
    "original_effective_cost",
    "original_list_cost",
    "exchange_rate_date",
}
_NOT_NULL = ", ".join(c for c in COLUMNS if c not in _NULLABLE)
_HASH = COLUMNS.index("row_hash")


IMPORTER = FileImporter(format=FORMAT, preview=preview, apply=apply)
