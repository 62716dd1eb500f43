"""Exports an integrator downloads: costs, token usage and risks as CSV or NDJSON, costs as FOCUS 1.0.

Rows are read with a server-side cursor (`.iterator(chunk_size=...)` in a transaction, so PostgreSQL
keeps no WITH HOLD copy) and written as they come, a chunk of rows at a time: memory stays flat whatever
the number of rows. Machine exports carry what the JSON API carries: codes, not labels, and raw
decimals, with the organization's currency on every money row.
"""

import datetime as dt
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import models, transaction
from django.db.models import CharField, Func, QuerySet

from ops import focus
from ops.models import CostSource
from tracker.exports import CsvWriter

CHUNK_ROWS = 2000  # rows fetched per round trip and written per chunk of the response


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
    writer = CsvWriter(buffer)
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
    """Yield the file of `queryset`'s rows in `export_format`, read in one read-only transaction.

    Inside a transaction Django's server-side cursor is a plain one; in autocommit it would be declared
    WITH HOLD, which makes PostgreSQL copy the whole result before the first row.
    """
    header, rows = export.rows(queryset, export_format)
    write = ndjson_stream if export_format == ExportFormat.NDJSON else csv_stream
    with transaction.atomic():
        yield from write(header=header, rows=rows)
