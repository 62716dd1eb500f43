"""What every file importer shares: its interface, its results and the reading of a CSV file.

An importer is parsed twice, never trusted in between: `preview` reads the file and says what
`apply` would do (the rows, every refused line, the totals) without writing; `apply` reads it
again and writes. Lines are the file's own line numbers (the header is line 1).
"""

import codecs
import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, Any

from tracker.exceptions import ValidationFailed

MAX_ROWS = 10_000


@dataclass(frozen=True)
class LineError:
    """A refused line of the file: which line, which column, why."""

    line: int
    column: str
    message: str


@dataclass
class Summary:
    """What an import did (or, in a preview, would do)."""

    format: str
    rows: int = 0  # data lines read
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0  # records the file no longer holds (a FOCUS period re-issued)
    refused: int = 0  # lines refused (see `errors`)
    totals: dict[str, Decimal] = field(default_factory=dict)
    by_project: dict[str, dict[str, Any]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)  # what only this format reports, JSON-ready
    errors: list[LineError] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """Return the summary as an import job stores it: JSON, amounts as decimal strings, without the errors."""
        counts = ("format", "rows", "created", "updated", "unchanged", "removed", "refused")
        return {name: getattr(self, name) for name in counts} | {
            "totals": json_ready(self.totals),
            "by_project": json_ready(self.by_project),
            "details": self.details,
        }


def json_ready(figures: dict[str, Any]) -> dict[str, Any]:
    """Return `figures` with its decimals (nested too) as strings."""
    return {
        name: str(value) if isinstance(value, Decimal) else json_ready(value) if isinstance(value, dict) else value
        for name, value in figures.items()
    }


@dataclass
class Preview:
    rows: list[dict[str, Any]]  # the accepted rows (or the first of them), as they would be written
    errors: list[LineError]
    summary: Summary


@dataclass(frozen=True)
class FileImporter:
    """One format's importer, as the import registry holds it."""

    format: str
    # preview(*, organization, stream, options) -> Preview: read the file, write nothing.
    preview: Callable[..., Preview]
    # apply(*, organization, stream, options, actor) -> Summary: read the file again and write it.
    apply: Callable[..., Summary]


def csv_lines(stream: IO, *, max_rows: int = MAX_ROWS) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """Return a CSV file's header and an iterator of (line number, row by header name).

    Take a text or binary stream (UTF-8, with or without a byte-order mark). Refuse a file with no
    header, repeated header names, a line with more cells than the header, or more than `max_rows` rows.
    """
    text = stream if isinstance(stream, io.TextIOBase) else codecs.getreader("utf-8-sig")(stream, errors="strict")
    reader = csv.reader(text)
    try:
        header = [name.strip().lstrip("\ufeff") for name in next(reader, [])]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValidationFailed("The file is not a UTF-8 CSV file.", errors={"file": [str(exc)]}) from exc
    if not any(header):
        raise ValidationFailed("The file has no header line.", errors={"file": ["The first line names the columns."]})
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ValidationFailed(
            f"Repeated column names: {', '.join(repeated)}.", errors={"file": ["Each column name appears once."]}
        )

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        count = 0
        line = 1
        try:
            for cells in reader:
                line, count = reader.line_num, count + 1
                if not any(cell.strip() for cell in cells):
                    count -= 1
                    continue
                if count > max_rows:
                    raise ValidationFailed(
                        f"At most {max_rows} rows per file.", errors={"file": [f"At most {max_rows} rows."]}
                    )
                if len(cells) > len(header):
                    raise ValidationFailed(
                        f"Line {line} has more cells than the header.", errors={"file": [f"Line {line}."]}
                    )
                if any("\x00" in cell for cell in cells):  # PostgreSQL text cannot hold it
                    raise ValidationFailed(f"Line {line} holds a null character.", errors={"file": [f"Line {line}."]})
                yield line, {name: cell.strip() for name, cell in zip(header, cells, strict=False)}
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ValidationFailed(f"Line {line + 1} is not valid UTF-8 CSV.", errors={"file": [str(exc)]}) from exc

    return header, rows()
