"""CodeCarbon's `emissions.csv`: each run's energy and emissions, kept as an `EnergyRun` of a project.

Columns are read by header name, so both layouts CodeCarbon has written are read unchanged: the
current one (`run_id`, the CPU/GPU/RAM split, `cloud_provider`, `gpu_count`, …) and the legacy
12-column one (`experiment_id`, no `run_id`, no split). The run id (`experiment_id` in the legacy
layout) is the key: importing a file again changes nothing, and a run whose figures CodeCarbon
updated is updated. A line that cannot be read (an impossible date, a negative figure, an unknown
project) is refused with its line number; the other lines are imported.

A run belongs to the project its `project_name` names (a project's slug, or its exact name), or
to the one `options["project_map"]` maps that name to (a project slug). It links to the cost entry
of the same project whose `external_id` is the run id: that entry's `energy_kwh` is set to the
run's energy, rounded to the entry's two decimal places.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import IO, Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from ops.imports.base import FileImporter, LineError, Preview, Summary, csv_lines
from ops.models import CostEntry, CostSource, EnergyRun
from ops.services.costs import cost_entry_update
from projects import audit
from projects.models import Organization, Project, Role
from projects.services import membership_require
from tracker.exceptions import Conflict, ValidationFailed

FORMAT = "codecarbon"
RUN_ID, LEGACY_RUN_ID = "run_id", "experiment_id"
REQUIRED_COLUMNS = ("timestamp", "project_name", "duration", "emissions", "energy_consumed")
# CodeCarbon column → (EnergyRun field, decimal places, required). Energy in kWh, emissions in kg CO₂eq.
FIGURES = {
    "duration": ("duration_s", 3, True),
    "energy_consumed": ("energy_kwh", 12, True),
    "emissions": ("emissions_kg", 12, True),
    "cpu_energy": ("cpu_energy_kwh", 12, False),
    "gpu_energy": ("gpu_energy_kwh", 12, False),
    "ram_energy": ("ram_energy_kwh", 12, False),
}
# CodeCarbon column → EnergyRun field (same name), kept as text.
TEXTS = ("country_iso_code", "region", "cloud_provider", "cloud_region", "gpu_model")
FIELDS = [
    "project_id",
    "recorded_at",
    *(name for name, _, _ in FIGURES.values()),
    *TEXTS,
    "gpu_count",
    "cost_entry_id",
]
FIGURE_LIMIT = Decimal(10) ** 8  # the fields' max_digits minus their decimal places
ENTRY_ENERGY = Decimal("0.01")


class _Refused(ValueError):
    pass


@dataclass
class _Run:
    line: int
    run_id: str
    project: Project
    values: dict[str, Any]
    existing: EnergyRun | None = None

    @property
    def status(self) -> str:
        if self.existing is None:
            return "new"
        changed = any(getattr(self.existing, name) != value for name, value in self.values.items())
        return "updated" if changed else "unchanged"


def _figure(value: str, places: int) -> Decimal:
    try:
        number = Decimal(value)
    except InvalidOperation as exc:
        raise _Refused(f"Not a number: “{value[:50]}”.") from exc
    if not number.is_finite() or number < 0:
        raise _Refused("A finite, non-negative number is required.")
    number = number.quantize(Decimal(1).scaleb(-places))
    if number >= FIGURE_LIMIT:
        raise _Refused(f"Must be less than {FIGURE_LIMIT}.")
    return number


def _timestamp(value: str, organization: Organization) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise _Refused(f"Not a valid date and time: “{value[:50]}” ({exc}).") from exc
    # CodeCarbon writes local time without an offset: read it in the organization's time zone.
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, organization.tzinfo)


def _gpu_count(value: str) -> int | None:
    if not value:
        return None
    number = _figure(value, 3)
    if number != number.to_integral_value():
        raise _Refused("A whole number is required.")
    return int(number)


class _Projects:
    """The organization's projects by slug and by name, and the import's `project_map`."""

    def __init__(self, organization: Organization, project_map: dict[str, str]):
        projects = list(Project.objects.filter(organization=organization))
        self.by_slug = {p.slug: p for p in projects}
        self.by_name = {p.name: p for p in projects}
        self.project_map = project_map

    def find(self, name: str) -> Project:
        if name in self.project_map:
            slug = self.project_map[name]
            if slug not in self.by_slug:
                raise _Refused(f"The mapping sends “{name[:100]}” to “{slug[:100]}”, which is no project here.")
            return self.by_slug[slug]
        project = self.by_slug.get(name) or self.by_name.get(name)
        if project is None:
            raise _Refused(f"No project has the slug or name “{name[:100]}”; map it to one.")
        return project


def _read(
    *, organization: Organization, stream: IO, options: dict[str, Any], lock: bool = False
) -> tuple[list[_Run], list[LineError], int]:
    """Return the file's readable runs (with what is recorded under their ids), its refused lines, its line count."""
    header, lines = csv_lines(stream)
    key = RUN_ID if RUN_ID in header else LEGACY_RUN_ID
    missing = [name for name in (key, *REQUIRED_COLUMNS) if name not in header]
    if missing:
        raise ValidationFailed(
            f"Not a CodeCarbon emissions.csv: no {', '.join(missing)} column.",
            errors={"file": [f"Missing column: {name}." for name in missing]},
        )
    projects = _Projects(organization, options.get("project_map") or {})
    runs: list[_Run] = []
    errors: list[LineError] = []
    seen: dict[str, int] = {}
    count = 0
    for line, row in lines:
        count += 1
        column = key
        try:
            run_id = row.get(key, "")
            if not run_id or len(run_id) > 200:
                raise _Refused("A run id of at most 200 characters is required.")
            if run_id in seen:
                raise _Refused(f"Repeats the run of line {seen[run_id]}.")
            column = "project_name"
            project = projects.find(row.get("project_name", ""))
            column = "timestamp"
            values: dict[str, Any] = {
                "project_id": project.pk,
                "recorded_at": _timestamp(row.get("timestamp", ""), organization),
            }
            for column, (name, places, required) in FIGURES.items():
                cell = row.get(column, "")
                if not cell and required:
                    raise _Refused("This figure is required.")
                values[name] = _figure(cell, places) if cell else None
            for column in TEXTS:
                values[column] = row.get(column, "")[: EnergyRun._meta.get_field(column).max_length]
            column = "gpu_count"
            values["gpu_count"] = _gpu_count(row.get("gpu_count", ""))
        except _Refused as exc:
            errors.append(LineError(line=line, column=column, message=str(exc)))
            continue
        seen[run_id] = line
        runs.append(_Run(line=line, run_id=run_id, project=project, values=values))
    _attach_recorded(organization, runs, lock=lock)
    return runs, errors, count


def _attach_recorded(organization: Organization, runs: list[_Run], *, lock: bool) -> None:
    """Give each run what is already recorded under its id, and the cost entry it links to: two queries."""
    ids = [run.run_id for run in runs]
    recorded = EnergyRun.objects.filter(organization=organization, run_id__in=ids)
    if lock:
        recorded = recorded.select_for_update()
    existing = {run.run_id: run for run in recorded}
    entries = {
        (project_id, external_id): pk
        for pk, project_id, external_id in CostEntry.objects.filter(
            project__organization=organization, external_id__in=ids
        )
        .exclude(source=CostSource.USAGE)  # token usage is priced, never given a run's energy
        .values_list("pk", "project_id", "external_id")
    }
    for run in runs:
        run.existing = existing.get(run.run_id)
        run.values["cost_entry_id"] = entries.get((run.project.pk, run.run_id))


def _summary(runs: list[_Run], errors: list[LineError], count: int) -> Summary:
    summary = Summary(format=FORMAT, rows=count, refused=len(errors), errors=errors)
    totals = dict.fromkeys(("duration_s", "energy_kwh", "emissions_kg"), Decimal(0))
    for run in runs:
        status = run.status
        summary.created += status == "new"
        summary.updated += status == "updated"
        summary.unchanged += status == "unchanged"
        project = summary.by_project.setdefault(
            run.project.slug, {"runs": 0, "energy_kwh": Decimal(0), "emissions_kg": Decimal(0), "linked_entries": 0}
        )
        project["runs"] += 1
        project["linked_entries"] += run.values["cost_entry_id"] is not None
        for name in totals:
            totals[name] += run.values[name]
            if name in project:
                project[name] += run.values[name]
    summary.totals = totals
    return summary


def preview(*, organization: Organization, stream: IO, options: dict[str, Any]) -> Preview:
    """Say what importing the file would do, writing nothing: every readable run and every refused line."""
    runs, errors, count = _read(organization=organization, stream=stream, options=options)
    rows = [
        {
            "line": run.line,
            "run_id": run.run_id,
            "project": run.project.slug,
            "status": run.status,
            **{name: run.values[name] for name in ("recorded_at", "duration_s", "energy_kwh", "emissions_kg")},
            "cost_entry": run.values["cost_entry_id"],
        }
        for run in runs
    ]
    return Preview(rows=rows, errors=errors, summary=_summary(runs, errors, count))


@transaction.atomic
def apply(*, organization: Organization, stream: IO, options: dict[str, Any], actor: AbstractBaseUser) -> Summary:
    """Import the file's readable runs (managers only): new ones created, changed ones updated, in one transaction.

    Write one history event per project listing the runs created and changed, and the energy set
    on each linked cost entry through `cost_entry_update` (its own history).
    """
    membership_require(user=actor, organization=organization, role=Role.MANAGER)
    runs, errors, count = _read(organization=organization, stream=stream, options=options, lock=True)
    summary = _summary(runs, errors, count)
    new = [run for run in runs if run.status == "new"]
    changed = [run for run in runs if run.status == "updated"]
    with audit.audit_actor(actor):
        try:
            with transaction.atomic():
                created = EnergyRun.objects.bulk_create(
                    EnergyRun(organization=organization, run_id=run.run_id, **run.values) for run in new
                )
        except IntegrityError as exc:  # another import recorded one of these runs meanwhile
            raise Conflict("Another import recorded some of these runs at the same time: import again.") from exc
        for run in changed:
            for name, value in run.values.items():
                setattr(run.existing, name, value)
        EnergyRun.objects.bulk_update([run.existing for run in changed], FIELDS)
        _entries_energy_set(runs=runs, actor=actor)
        by_project: dict[Project, tuple[list[int], list[int]]] = {}
        for run, record in zip(new, created, strict=True):
            by_project.setdefault(run.project, ([], []))[0].append(record.pk)
        for run in changed:
            by_project.setdefault(run.project, ([], []))[1].append(run.existing.pk)
        for project, (created_ids, changed_ids) in sorted(by_project.items(), key=lambda item: item[0].pk):
            audit.record_batch(
                model=EnergyRun,
                organization_id=organization.pk,
                project_id=project.pk,
                label=f"CodeCarbon import: {len(created_ids)} new, {len(changed_ids)} updated runs",
                created=created_ids,
                changed=changed_ids,
            )
    return summary


def _entries_energy_set(*, runs: list[_Run], actor: AbstractBaseUser) -> None:
    """Give each linked cost entry its run's energy, where it differs."""
    energy = {
        run.values["cost_entry_id"]: run.values["energy_kwh"].quantize(ENTRY_ENERGY, rounding=ROUND_HALF_UP)
        for run in runs
        if run.values["cost_entry_id"] is not None
    }
    entries = CostEntry.objects.filter(pk__in=energy).select_related("project__organization").order_by("pk")
    for entry in entries:
        if entry.energy_kwh != energy[entry.pk]:
            cost_entry_update(entry=entry, by=actor, energy_kwh=energy[entry.pk])


IMPORTER = FileImporter(format=FORMAT, preview=preview, apply=apply)
