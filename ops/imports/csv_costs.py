"""Cost entries from any spreadsheet: a CSV file, a column mapping, all or nothing.

`options["mapping"]` maps the file's column names to cost entry fields (the fields of
`ingest.COST_ROW`); a column named like a field ("amount", "Input tokens") maps itself.
`options["project"]` (a project slug) is the project of rows without a project column. Values are
checked by the rules `cost_entries_ingest` applies to the API (ISO dates, category codes, plain
decimals); the rows are written by `cost_entries_import`, so nothing is written unless every line
is good, and the file is one history event.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from ops.imports.base import FileImporter, LineError, Preview, Summary, csv_lines
from ops.models import CostCategory
from ops.services.ingest import COST_ROW, CostBatchCheck, cost_entries_check, cost_entries_import
from projects.models import Organization, Project, Role
from projects.services import membership_require
from tracker.exceptions import ValidationFailed

FORMAT = "csv"
FIELDS = tuple(name for name in COST_ROW if name != "tags")  # tags are a JSON object: API and FOCUS only
REQUIRED = tuple(name for name, (_, required) in COST_ROW.items() if required)
INTEGERS = ("input_tokens", "cached_input_tokens", "output_tokens", "requests")
PREVIEW_ROWS = 10
# A category may be written as its code or its label, in any case ("Fine-tuning", "fine_tuning").
CATEGORIES = {spelling.casefold(): code for code, name in CostCategory.choices for spelling in (code, name)}


def _field_name(column: str) -> str:
    return column.strip().casefold().replace(" ", "_").replace("-", "_")


def column_mapping(*, header: list[str], mapping: dict[str, str] | None) -> dict[str, str]:
    """Return {column: field} for the file: the given mapping, else each column named like a field."""
    if mapping:
        unknown = sorted(set(mapping) - set(header))
        bad_fields = sorted({f for f in mapping.values() if f and f not in FIELDS})
        errors = {f"mapping.{c}": ["No such column in the file."] for c in unknown} | {
            f"mapping.{f}": [f"Not a cost field: choose among {', '.join(FIELDS)}."] for f in bad_fields
        }
        if errors:
            raise ValidationFailed("The column mapping does not fit the file.", errors=errors)
        chosen = {column: field for column, field in mapping.items() if field}
    else:
        chosen = {column: _field_name(column) for column in header if _field_name(column) in FIELDS}
    twice = sorted({f for f in chosen.values() if list(chosen.values()).count(f) > 1})
    if twice:
        raise ValidationFailed(
            f"Several columns map to {', '.join(twice)}.", errors={f"mapping.{f}": ["One column each."] for f in twice}
        )
    return chosen


def _cell(field: str, value: str) -> Any:
    """Give a CSV cell the type the JSON rows carry, so the API's parsers judge it (a bad number stays text)."""
    if field in INTEGERS and value.isdigit():
        return int(value)
    if field == "category":
        return CATEGORIES.get(value.casefold(), value)
    return value


@dataclass
class _File:
    entries: list[dict[str, Any]]  # the rows as cost entry fields, as `cost_entries_import` takes them
    lines: list[int]  # each row's line number
    check: CostBatchCheck
    errors: list[LineError]
    projects: dict[int, Project]


def _read(*, organization: Organization, stream: IO, options: dict[str, Any]) -> _File:
    """Read the file through the mapping and check every row as the API's costs are checked."""
    header, lines = csv_lines(stream)
    mapping = column_mapping(header=header, mapping=options.get("mapping"))
    projects = {p.slug: p for p in Project.objects.filter(organization=organization)}
    by_id = {str(p.pk): p for p in projects.values()}
    default = options.get("project") or ""
    columns = {field: column for column, field in mapping.items()}
    if "project" not in columns and default not in projects:
        raise ValidationFailed(
            "Say which project the costs are for: a project column or a project for the whole file.",
            errors={"project": ["Map a column to project, or choose a project."]},
        )
    missing = [f for f in REQUIRED if f not in columns and f != "project"]
    if missing:
        raise ValidationFailed(
            f"No column for {', '.join(missing)}.", errors={f"mapping.{f}": ["Map a column to it."] for f in missing}
        )
    entries, numbers, errors = [], [], []
    for line, row in lines:
        entry = {field: _cell(field, row.get(column, "")) for column, field in mapping.items() if row.get(column, "")}
        name = entry.pop("project", "") or default
        project = projects.get(name) or by_id.get(name)
        if project is None:
            errors.append(LineError(line, columns.get("project", "project"), f"No project “{name[:100]}” here."))
        entry["project"] = project.pk if project else 0
        entries.append(entry)
        numbers.append(line)
    if not entries:
        raise ValidationFailed("The file has no rows.", errors={"file": ["At least one row under the header."]})
    check = cost_entries_check(entries=entries)
    for key, messages in check.errors.items():
        _, index, *rest = key.split(".")
        field = rest[0] if rest else ""
        if field == "project":
            continue  # an unknown project is already named above
        errors.append(LineError(numbers[int(index)], columns.get(field, field), messages[0]))
    errors.sort(key=lambda e: (e.line, e.column))
    return _File(entries, numbers, check, errors, {p.pk: p for p in projects.values()})


def _summary(file: _File, existing: set[int]) -> Summary:
    """Count the file's rows: new, already recorded (by external id), refused; total the new ones per project."""
    rows, projects = file.check.rows, file.projects
    summary = Summary(format=FORMAT, rows=len(rows), refused=len({e.line for e in file.errors}), errors=file.errors)
    if file.errors:
        return summary
    summary.unchanged = len(existing)
    summary.created = len(rows) - len(existing)
    summary.totals = {"amount": Decimal(0)}
    for index, row in enumerate(rows):
        if index in existing:
            continue
        project = summary.by_project.setdefault(projects[row["project"]].slug, {"entries": 0, "amount": Decimal(0)})
        project["entries"] += 1
        project["amount"] += row["amount"]
        summary.totals["amount"] += row["amount"]
    return summary


def preview(*, organization: Organization, stream: IO, options: dict[str, Any]) -> Preview:
    """Show the first rows as they would be recorded and every error of the file, writing nothing."""
    file = _read(organization=organization, stream=stream, options=options)
    existing = {item["index"] for item in file.check.existing}
    rows = [
        {
            "line": file.lines[index],
            **{k: v for k, v in row.items() if k != "project"},
            "project": file.projects[row["project"]].slug if row.get("project") in file.projects else "",
            "status": "recorded" if index in existing else "new",
        }
        for index, row in enumerate(file.check.rows[:PREVIEW_ROWS])
    ]
    return Preview(rows=rows, errors=file.errors, summary=_summary(file, existing))


@transaction.atomic
def apply(*, organization: Organization, stream: IO, options: dict[str, Any], actor: AbstractBaseUser) -> Summary:
    """Record every row of the file, or none: any bad line refuses the whole file (managers only)."""
    membership_require(user=actor, organization=organization, role=Role.MANAGER)
    file = _read(organization=organization, stream=stream, options=options)
    if file.errors:
        raise ValidationFailed(
            f"{len({e.line for e in file.errors})} lines refused; nothing was recorded.",
            errors={f"line {e.line}.{e.column}": [e.message] for e in file.errors},
        )
    name = options.get("filename") or "file"
    result = cost_entries_import(
        organization=organization, by=actor, entries=file.entries, label=f"CSV import of {name[:100]}"
    )
    return _summary(file, {item["index"] for item in result.existing})


IMPORTER = FileImporter(format=FORMAT, preview=preview, apply=apply)
