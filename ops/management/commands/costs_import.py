"""Import a cost file (FOCUS bill, CodeCarbon runs, CSV) into an organization, in this process."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ops.imports.jobs import FORMATS, import_file_preview, import_file_run
from ops.imports.models import ImportStatus
from projects.models import Organization
from tracker.exceptions import DomainError


class Command(BaseCommand):
    help = (
        "Import a file of costs: a FOCUS bill (--format focus), CodeCarbon runs or a CSV, through the same "
        "importers the upload page and POST /api/v1/imports/ use. Prints what was imported per project, "
        "the unmapped rows and the refused lines (docs/imports.md)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, metavar="FILE")
        parser.add_argument("--format", required=True, choices=sorted(FORMATS))
        parser.add_argument("--org", required=True, metavar="SLUG", help="The organization to import into.")
        parser.add_argument("--source", default="", help="FOCUS: who issued the bill (default: its ProviderName).")
        parser.add_argument("--dry-run", action="store_true", help="Check and total the file; write nothing.")

    def handle(self, *args, file: Path, format: str, org: str, source: str, dry_run: bool, **options) -> None:
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization with slug “{org}”.")
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        import_options = {"source": source} if source else {}
        try:
            with file.open("rb") as binary:
                if dry_run:
                    preview = import_file_preview(
                        organization=organization, format=format, binary=binary, options=import_options
                    )
                    summary, errors = preview.summary, [vars(e) for e in preview.errors]
                    error_count = len(errors)
                else:
                    job = import_file_run(
                        organization=organization,
                        format=format,
                        binary=binary,
                        filename=file.name,
                        options=import_options,
                    )
                    if job.status == ImportStatus.FAILED:
                        raise CommandError(job.failure)
                    summary, errors, error_count = job.summary, job.errors, job.error_count
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self._print(summary, errors, error_count, dry_run=dry_run)

    def _print(self, summary: dict, errors: list[dict], error_count: int, *, dry_run: bool) -> None:
        currency = summary.get("currency", "")
        write = self.stdout.write
        write(f"{'Would import' if dry_run else 'Imported'} per project ({currency}):")
        for p in summary.get("projects", []):
            write(f"  {p.get('slug', p.get('project_id'))}: {p['rows']} row(s), billed {p['billed_cost']}")
        unmapped = summary.get("unmapped") or {}
        if unmapped.get("rows"):
            write(
                self.style.WARNING(
                    f"  unmapped: {unmapped['rows']} row(s), billed {unmapped['billed_cost']} "
                    "(kept with no project: add a mapping rule or a tracker_project tag)"
                )
            )
        for period in summary.get("periods", []):
            write(
                f"Period {period['billing_period_start']} from {period['source']}: "
                f"{period['added']} added, {period['removed']} removed"
            )
        if not dry_run:
            write(
                f"{summary.get('added', 0)} row(s) added, {summary.get('removed', 0)} removed, "
                f"{summary.get('unchanged', 0)} unchanged."
            )
        if error_count:
            write(self.style.ERROR(f"{error_count} line(s) refused:"))
            for e in errors:
                write(f"  line {e['line']}: {e['message']}")
            if error_count > len(errors):
                write(f"  … and {error_count - len(errors)} more")
