"""Exports an integrator downloads: costs, token usage and risks as CSV or NDJSON, costs as FOCUS 1.0.

Rows are read with a server-side cursor (`.iterator(chunk_size=...)` in a transaction, so PostgreSQL
keeps no WITH HOLD copy) and written as they come, a chunk of rows at a time: memory stays flat whatever
the number of rows. On PostgreSQL a CSV is written by the database itself, `COPY (the same query) TO
STDOUT WITH (FORMAT csv)` a chunk of ids at a time with the formula escape in SQL (`CsvCell`): the same
bytes, without turning every value into a Python object and back into text. Machine exports carry what
the JSON API carries: codes, not labels, and raw decimals, with the organization's currency on every
money row. CSV lines end with a line feed, as COPY writes them.
"""

import datetime as dt
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connections, models, transaction
from django.db.models import CharField, F, Func, QuerySet, TextField

from ops import focus
from ops.models import CostSource
from ops.selectors.chargeback import Chargeback
from ops.selectors.portfolio import budget_status_of, money_field
from tracker.exports import CsvCell, CsvWriter

CHUNK_ROWS = 2000  # rows fetched per round trip and written per chunk of the response
# Rows per COPY: each chunk is read whole (a few MB) before it is sent, so its statement ends at once
# whatever the client's pace, and the web statement ceiling applies to each, as to each FETCH.
COPY_CHUNK_ROWS = 20_000
COPY_MAX_RANGE = 4 * COPY_CHUNK_ROWS  # ids per COPY at most, so rows too: well inside the web statement ceiling


class ExportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    NDJSON = "ndjson", "NDJSON (one JSON object per line)"
    FOCUS = "focus", "FOCUS 1.0 CSV"


CONTENT_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.NDJSON: "application/x-ndjson",
    ExportFormat.FOCUS: "text/csv; charset=utf-8",
}
EXTENSIONS = {ExportFormat.CSV: "csv", ExportFormat.NDJSON: "ndjson", ExportFormat.FOCUS: "focus.csv"}


@dataclass(frozen=True)
class Export:
    """One exportable resource: its columns (header, `values_list` lookup) and the rows it covers."""

    name: str
    columns: tuple[tuple[str, str | Func], ...]
    formats: tuple[ExportFormat, ...] = (ExportFormat.CSV, ExportFormat.NDJSON)
    scope: Callable[[QuerySet], QuerySet] = lambda queryset: queryset

    @property
    def header(self) -> tuple[str, ...]:
        return tuple(header for header, _ in self.columns)

    def rows(self, queryset: QuerySet, export_format: ExportFormat) -> tuple[tuple[str, ...], Iterator[tuple]]:
        """Return the header and the rows of `queryset` in `export_format`, read lazily."""
        queryset = self.scope(queryset).order_by("pk")
        if export_format == ExportFormat.FOCUS:
            return focus.HEADER, focus.focus_rows(_read(queryset, focus.SOURCE_FIELDS))
        return self.header, _read(queryset, tuple(lookup for _, lookup in self.columns))

    def copy_csv(self, queryset: QuerySet) -> Iterator[bytes]:
        """Yield `csv_stream`'s bytes for `queryset`, written by PostgreSQL's COPY a range of ids at a time.

        A range of N ids holds at most N rows, so a chunk's memory is bounded without knowing where it
        ends beforehand (COPY hands no row back to start the next chunk from). Ranges widen where the
        ids are sparse (another organization's rows in between), to about COPY_CHUNK_ROWS rows each.
        """
        columns = [
            CsvCell(F(lookup)) if isinstance(lookup, str) and _is_text(queryset.model, lookup) else lookup
            for _, lookup in self.columns
        ]
        yield from csv_stream(header=self.header, rows=())
        rows = self.scope(queryset).order_by("pk")
        ids = rows.values_list("pk", flat=True)
        first, last = ids.first(), ids.last()
        if first is None:
            return
        after, width = first - 1, COPY_CHUNK_ROWS
        while after < last:
            upto = min(after + width, last)
            chunk = rows.filter(pk__gt=after, pk__lte=upto).values_list(*columns)
            sql, params = chunk.query.sql_with_params()
            copy_sql = f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)"
            with connections[queryset.db].cursor() as cursor, cursor.cursor.copy(copy_sql, params) as copy:
                data = b"".join(copy)
            if data:
                yield data
            density = max(data.count(b"\n"), 1) / (upto - after)  # rows per id (a quoted line feed counts too)
            width = int(min(max(COPY_CHUNK_ROWS / density, COPY_CHUNK_ROWS), COPY_MAX_RANGE))
            after = upto


def _is_text(model: type[models.Model], lookup: str) -> bool:
    """Whether the field `lookup` reaches (across relations, e.g. project__slug) holds text."""
    *relations, name = lookup.split("__")
    for relation in relations:
        model = model._meta.get_field(relation).related_model
    field = model._meta.pk if name == "pk" else model._meta.get_field(name)
    if isinstance(field, models.GeneratedField):
        field = field.output_field
    return isinstance(field, CharField | TextField)


def _read(queryset: QuerySet, fields: tuple[str | Func, ...]) -> Iterator[tuple]:
    return queryset.values_list(*fields).iterator(chunk_size=CHUNK_ROWS)


class IsoUtc(Func):
    """A timestamp as ISO 8601 text in UTC ("2026-03-01T09:30:00.000000Z"), written by PostgreSQL.

    Converting a million timestamps to aware datetimes and back to text in Python costs more than the
    rest of the export.
    """

    template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    output_field = CharField()


COSTS = Export(
    name="costs",
    columns=(
        ("id", "pk"),
        ("date", "date"),
        ("project", "project_id"),
        ("project_slug", "project__slug"),
        ("category", "category"),
        ("amount", "amount"),
        ("currency", "project__organization__currency"),
        # The amount as sent and the rate that converted it (docs/money.md).
        ("original_amount", "original_amount"),
        ("original_currency", "original_currency"),
        ("exchange_rate", "exchange_rate"),
        ("exchange_rate_date", "exchange_rate_date"),
        ("description", "description"),
        ("model", "model"),
        ("input_tokens", "input_tokens"),
        ("cached_input_tokens", "cached_input_tokens"),
        ("output_tokens", "output_tokens"),
        ("requests", "requests"),
        ("gpu_hours", "gpu_hours"),
        ("energy_kwh", "energy_kwh"),
        ("source", "source"),
        ("price", "price_id"),
        ("external_id", "external_id"),
        ("updated_at", IsoUtc("updated_at")),
    ),
    formats=tuple(ExportFormat),
)
USAGE = Export(
    name="usage",
    columns=(
        ("id", "pk"),
        ("date", "date"),
        ("project", "project_id"),
        ("project_slug", "project__slug"),
        ("model", "model"),
        ("input_tokens", "input_tokens"),
        ("cached_input_tokens", "cached_input_tokens"),
        ("output_tokens", "output_tokens"),
        ("requests", "requests"),
        ("amount", "amount"),
        ("currency", "project__organization__currency"),
        # The amount as sent and the rate that converted it (docs/money.md).
        ("original_amount", "original_amount"),
        ("original_currency", "original_currency"),
        ("exchange_rate", "exchange_rate"),
        ("exchange_rate_date", "exchange_rate_date"),
        ("price", "price_id"),
        ("external_id", "external_id"),
        ("updated_at", IsoUtc("updated_at")),
    ),
    scope=lambda queryset: queryset.filter(source=CostSource.USAGE),
)
RISKS = Export(
    name="risks",
    columns=(
        ("id", "pk"),
        ("organization", "organization_id"),
        ("project", "project_id"),
        ("project_slug", "project__slug"),
        ("title", "title"),
        ("category", "category"),
        ("likelihood", "likelihood"),
        ("impact", "impact"),
        ("score", "score"),
        ("severity", "severity"),
        ("status", "status"),
        ("treatment", "treatment"),
        ("owner", "owner_id"),
        ("next_review_date", "next_review_date"),
        ("source", "source"),
        ("created_at", IsoUtc("created_at")),
        ("updated_at", IsoUtc("updated_at")),
    ),
)


def csv_stream(*, header: Iterable[str], rows: Iterable[tuple]) -> Iterator[bytes]:
    """Yield the CSV of `rows` (formula cells escaped by CsvWriter) in chunks of CHUNK_ROWS rows."""
    buffer = io.StringIO()
    writer = CsvWriter(buffer, lineterminator="\n")
    writer.writerow(header)
    for count, row in enumerate(rows, 1):
        writer.writerow(row)
        if count % CHUNK_ROWS == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # raw, as the API writes decimals: no float rounding
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def ndjson_stream(*, header: Iterable[str], rows: Iterable[tuple]) -> Iterator[bytes]:
    """Yield one JSON object per row and line, in chunks of CHUNK_ROWS rows."""
    header = tuple(header)
    lines: list[str] = []
    for row in rows:
        lines.append(json.dumps(dict(zip(header, row, strict=True)), default=_json_value, separators=(",", ":")))
        if len(lines) == CHUNK_ROWS:
            yield ("\n".join(lines) + "\n").encode()
            lines.clear()
    if lines:
        yield ("\n".join(lines) + "\n").encode()


def export_stream(*, export: Export, queryset: QuerySet, export_format: ExportFormat) -> Iterator[bytes]:
    """Yield the file of `queryset`'s rows in `export_format`, read in one read-only transaction."""
    connection = connections[queryset.db]
    if export_format == ExportFormat.CSV and connection.vendor == "postgresql":
        stream = export.copy_csv(queryset)
    else:
        header, rows = export.rows(queryset, export_format)
        write = ndjson_stream if export_format == ExportFormat.NDJSON else csv_stream
        stream = write(header=header, rows=rows)
    yield from _read_only(stream, using=queryset.db)


def _read_only(stream: Iterator[bytes], *, using: str) -> Iterator[bytes]:
    """Yield `stream` read in one read-only transaction.

    Inside a transaction Django's server-side cursor is a plain one; in autocommit it would be declared
    WITH HOLD, which makes PostgreSQL copy the whole result before the first row.
    """
    connection = connections[using]
    outermost = not connection.in_atomic_block
    with transaction.atomic(using=using):
        if outermost and connection.vendor == "postgresql":
            # One snapshot for every chunk, as one query would see (READ COMMITTED takes one per statement).
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield from stream


CHARGEBACK_HEADER = (
    "month",
    "group_by",
    "key",
    "label",
    "amount",
    "currency",
    "share_pct",
    "entries",
    "unpriced_entries",
    "unallocated",
)


def chargeback_rows(report: Chargeback) -> Iterator[tuple]:
    """Yield the chargeback's rows as CHARGEBACK_HEADER says (raw decimals, the unallocated rest last)."""
    month = report.month_start.strftime("%Y-%m")
    for row in report.rows:
        share = report.share(row)
        yield (
            month,
            report.group_by,
            row.key,
            row.label,
            row.amount,
            report.currency,
            "" if share is None else share,
            row.entries,
            row.unpriced_entries,
            "true" if row.unallocated else "false",
        )


# A register page's CSV: the page's rows (its filters and its sort, every page of them), as the machine
# exports write them (codes, raw decimals, ISO dates, the currency in a column).

PROJECT_LIST_HEADER = (
    "id",
    "slug",
    "name",
    "stage",
    "health",
    "use_case",
    "industry",
    "team",
    "spend_to_date",
    "spend_incomplete",
    "budget_amount",
    "budget_spend",
    "budget_period_start",
    "budget_period_end",
    "open_risks",
    "critical_risks",
    "currency",
)


def _project_list_row(project: Any) -> tuple:
    budget = budget_status_of(project)
    return (
        project.pk,
        project.slug,
        project.name,
        project.stage,
        project.health,
        project.use_case,
        project.industry,
        project.team.name if project.team else "",
        money_field(project.spend_to_date),
        project.spend_incomplete,
        *(
            (money_field(budget.amount), money_field(budget.spend), budget.period_start, budget.period_end)
            if budget
            else ("",) * 4
        ),
        project.open_risks,
        project.critical_risks,
        project.organization.currency,
    )


def project_list_csv(projects: QuerySet) -> Iterator[bytes]:
    """Yield the CSV of the project list's rows (`project_list_with_figures`, filtered and sorted as the page)."""
    rows = (_project_list_row(p) for p in projects.iterator(chunk_size=CHUNK_ROWS))
    return _read_only(csv_stream(header=PROJECT_LIST_HEADER, rows=rows), using=projects.db)


def risk_register_csv(risks: QuerySet) -> Iterator[bytes]:
    """Yield the CSV of the risk register's rows in the page's order, with the API export's columns."""
    rows = risks.values_list(*(lookup for _, lookup in RISKS.columns)).iterator(chunk_size=CHUNK_ROWS)
    return _read_only(csv_stream(header=RISKS.header, rows=rows), using=risks.db)
