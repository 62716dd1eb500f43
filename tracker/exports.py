"""Text that leaves the app as a file: CSV cells no spreadsheet runs, Markdown that renders as written.

Every CSV the app writes goes through `csv_writer`, every user text in a Markdown export through
`markdown_text` (tests/test_exports_writers.py keeps `csv.writer` out of every other module).
"""

import csv
import re
from collections.abc import Iterable
from typing import Any, TextIO

from django.db.models import Func, TextField

# OWASP "CSV injection": a cell starting with one of these is a formula in Excel, LibreOffice and
# Google Sheets (tab and carriage return let one hide behind blank space).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_FIRST = frozenset(FORMULA_STARTS)
# Report data keeps decimals as JSON strings ("-12.50"): a plain number is no formula and stays
# raw so that machines reading the file still get numbers.
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def csv_cell(value: Any) -> Any:
    """Return the value to write in a CSV cell: text a spreadsheet would evaluate gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


class CsvCell(Func):
    """`csv_cell` in SQL, for text PostgreSQL writes into a CSV itself (`COPY … TO STDOUT WITH (FORMAT csv)`).

    Built from the same constants as `csv_cell`. An empty text becomes NULL, which COPY writes as nothing,
    as csv.writer writes an empty string (COPY would write `""`).
    """

    output_field = TextField()

    def as_sql(self, compiler, connection, **extra_context):
        value, params = compiler.compile(self.source_expressions[0])
        # The first character's code point (0 for an empty text): integers compared, no substring made per cell.
        starts = ", ".join(str(ord(start)) for start in FORMULA_STARTS)
        sql = (
            f"CASE WHEN ascii({value}) IN ({starts}) AND {value} !~ %s THEN %s || {value} ELSE NULLIF({value}, '') END"
        )
        plain = f"^(?:{_PLAIN_NUMBER.pattern})$"
        return sql, [*params, *params, plain, "'", *params, *params]


class CsvWriter:
    """`csv.writer` whose every cell goes through `csv_cell`.

    `lineterminator` "\\n" writes lines as PostgreSQL's COPY does (the streamed exports mix the two).
    """

    def __init__(self, out: TextIO, *, lineterminator: str = "\r\n"):
        self._writer = csv.writer(out, lineterminator=lineterminator)

    def writerow(self, row: Iterable[Any]) -> None:
        # Only text starting like a formula needs `csv_cell`; checked inline: exports write millions of cells.
        self._writer.writerow(
            [csv_cell(value) if isinstance(value, str) and value[:1] in _FORMULA_FIRST else value for value in row]
        )

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


_HTML = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
# CommonMark's backslash escapes for what makes emphasis, code, links, tables, headings, strikethrough.
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]|#~])")
# A list item at the start of the text: "- x", "+ x", "1. x", "1) x".
_LIST_MARKER = re.compile(r"^(\s*)(?:([-+])|([0-9]{1,9})([.)]))(?=\s|$)")


def markdown_text(value: Any) -> str:
    """Return the value as Markdown text that renders literally: no HTML, links, emphasis, table cells or lists."""
    text = " ".join(("" if value is None else str(value)).splitlines())
    text = _MARKDOWN_PUNCTUATION.sub(r"\\\1", text.translate(_HTML))
    return _LIST_MARKER.sub(lambda m: f"{m[1]}\\{m[2]}" if m[2] else f"{m[1]}{m[3]}\\{m[4]}", text)
