"""Imports of the field's own files (FOCUS bills, CodeCarbon runs, spreadsheets, price books).

An importer is an object with a `format` name and two methods, both reading `stream` (a text
stream of the file, opened with `newline=""`, read once from the start):

- `preview(*, organization, stream, options) -> Preview`: parse and check, write nothing;
- `apply(*, organization, stream, options, actor) -> Summary`: write, and say what was written.

`ops.imports.jobs.FORMATS` names the importer of each format; an `ImportJob` stores an uploaded
file and runs its importer in a worker (docs/imports.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # ops.models loads this package: no model imports at run time
    from django.contrib.auth.models import AbstractBaseUser

    from projects.models import Organization


@dataclass(frozen=True)
class LineError:
    """A refused line of the file (1 is the header) and why."""

    line: int
    message: str
    column: str = ""


@dataclass
class Preview:
    """What an import would write: the first rows as read, every error, and the totals."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class Summary:
    """What an import wrote (`summary`, JSON-ready) and the lines it refused."""

    summary: dict[str, Any] = field(default_factory=dict)
    errors: list[LineError] = field(default_factory=list)


class Importer(Protocol):
    format: str

    def preview(self, *, organization: Organization, stream: Any, options: Mapping[str, Any]) -> Preview: ...

    def apply(
        self,
        *,
        organization: Organization,
        stream: Any,
        options: Mapping[str, Any],
        actor: AbstractBaseUser | None,
    ) -> Summary: ...
