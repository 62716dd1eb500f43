"""Import a file (FOCUS bill, CodeCarbon runs, cost entries CSV) into an organization, in this process."""

from dataclasses import asdict
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ops.imports.jobs import FORMATS, import_file_preview, import_file_run
from ops.imports.models import ImportStatus
from ops.management.commands._lookup import organization_and_user
from tracker.exceptions import DomainError


def _pairs(values: list[str], option: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        name, equals, target = value.partition("=")
        if not equals or not name:
            raise CommandError(f"{option} takes NAME=VALUE, not “{value}”.")
        pairs[name] = target
    return pairs


class Command(BaseCommand):
    help = (
        "Import a file: a FOCUS bill (--format focus), CodeCarbon's emissions.csv (codecarbon) or cost entries "
        "(csv), through the same import jobs the upload page and POST /api/v1/imports/ use. Prints what was "
        "imported per project, the unmapped rows and the refused lines (docs/imports.md)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, metavar="FILE")
        parser.add_argument("--format", required=True, choices=list(FORMATS))
        parser.add_argument("--org", required=True, metavar="SLUG", help="The organization to import into.")
        parser.add_argument("--by", required=True, metavar="USERNAME", help="The manager the import is recorded for.")
        parser.add_argument("--source", default="", help="focus: who issued the bill (default: its ProviderName).")
        parser.add_argument("--project", default="", metavar="SLUG", help="csv: the project of rows without one.")
        parser.add_argument(
            "--mapping", action="append", default=[], metavar="COLUMN=FIELD", help="csv: a column's cost field."
        )
        parser.add_argument(
            "--project-map",
            action="append",
            default=[],
            metavar="NAME=SLUG",
            help="codecarbon: a project_name's project.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Check and total the file; write nothing.")

    def handle(self, *args, file: Path, format: str, org: str, by: str, dry_run: bool, **options) -> None:
        organization, user = organization_and_user(org=org, by=by)
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        chosen = {
            "source": options["source"],
            "project": options["project"],
            "mapping": _pairs(options["mapping"], "--mapping"),
            "project_map": _pairs(options["project_map"], "--project-map"),
        }
        import_options = {name: value for name, value in chosen.items() if value}
        try:
            with file.open("rb") as binary:
                if dry_run:
                    preview = import_file_preview(
                        organization=organization, format=format, binary=binary, options=import_options
                    )
                    summary, errors = preview.summary.as_json(), [asdict(e) for e in preview.errors]
                    error_count = len(errors)
                else:
                    job = import_file_run(
                        organization=organization,
                        format=format,
                        binary=binary,
                        filename=file.name,
                        by=user,
                        options=import_options,
                    )
                    if job.status == ImportStatus.FAILED:
                        self._errors(job.errors, len(job.errors))
                        raise CommandError(job.failure)
                    summary, errors, error_count = job.summary, job.errors, job.error_count
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self._print(summary, dry_run=dry_run)
        self._errors(errors, error_count)

    def _print(self, summary: dict, *, dry_run: bool) -> None:
        write, details = self.stdout.write, summary["details"]
        currency = f" ({details['currency']})" if "currency" in details else ""
        write(f"{'Would import' if dry_run else 'Imported'} per project{currency}:")
        for slug, figures in summary["by_project"].items():
            write(
                f"  {slug}: " + ", ".join(f"{name} {value}" for name, value in figures.items() if name != "by_category")
            )
        unmapped = details.get("unmapped") or {}
        if unmapped.get("rows"):
            write(
                self.style.WARNING(
                    f"  unmapped: {unmapped['rows']} row(s), billed {unmapped['billed_cost']} "
                    "(kept with no project: add a mapping rule or a tracker_project tag)"
                )
            )
        for period in details.get("periods", []):
            write(
                f"Period {period['billing_period_start']} from {period['source']}: "
                f"{period['added']} added, {period['removed']} removed"
            )
        verb = "would be new" if dry_run else "new"
        write(
            f"{summary['rows']} row(s) read: {summary['created']} {verb}, {summary['updated']} updated, "
            f"{summary['removed']} removed, {summary['unchanged']} unchanged, {summary['refused']} refused."
        )

    def _errors(self, errors: list[dict], error_count: int) -> None:
        if error_count:
            self.stdout.write(self.style.ERROR(f"{error_count} line(s) refused:"))
            for e in errors:
                column = f" {e['column']}" if e.get("column") else ""
                self.stdout.write(f"  line {e['line']}{column}: {e['message']}")
            if error_count > len(errors):
                self.stdout.write(f"  … and {error_count - len(errors)} more")
