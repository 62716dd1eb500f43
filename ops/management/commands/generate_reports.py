"""Build weekly reports now, in this process: the same job the scheduler and the API enqueue."""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from ops.models import ReportKind, ReportState
from ops.selectors.portfolio import report_week, week_before
from ops.services import report_build, report_digest_send, report_request
from projects.models import Organization


class Command(BaseCommand):
    help = (
        "Build the weekly status and risk reports (Monday–Sunday in each organization's timezone) "
        "synchronously, then e-mail their digests. Default: every organization, both kinds, last week."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", metavar="SLUG", help="Only this organization.")
        parser.add_argument("--kind", choices=ReportKind.values, help="Only this kind of report.")
        parser.add_argument(
            "--period",
            type=dt.date.fromisoformat,
            metavar="YYYY-MM-DD",
            help="Any day of the week to report on (default: last week in the organization's timezone).",
        )
        parser.add_argument("--rebuild", action="store_true", help="Build again reports that are already ready.")
        parser.add_argument("--no-digest", action="store_true", help="Do not e-mail digests.")

    def handle(self, *args, org: str | None, kind: str | None, period: dt.date | None, **options) -> None:
        organizations = Organization.objects.order_by("name")
        if org:
            organizations = organizations.filter(slug=org)
            if not organizations.exists():
                raise CommandError(f"No organization with slug “{org}”.")
        kinds = [kind] if kind else ReportKind.values
        units = [(o, k) for o in organizations for k in kinds]
        failed = 0
        with tqdm(units, desc="Reports", unit="report", disable=options["verbosity"] == 0) as bar:
            for organization, report_kind in bar:
                start, end = report_week(period) if period else week_before(organization=organization)
                bar.set_postfix_str(f"{organization.slug} {report_kind} {start}")
                report = report_request(
                    organization=organization,
                    kind=report_kind,
                    period_start=start,
                    period_end=end,
                    by=None,
                    notify=not options["no_digest"],
                    enqueue=False,
                )
                if report.state == ReportState.READY and options["rebuild"]:
                    report.state = ReportState.PENDING
                    report.save(update_fields=["state", "updated_at"])
                try:
                    built = report_build(report_id=report.pk)
                except Exception as exc:  # reported, and the other reports still run
                    failed += 1
                    bar.write(self.style.ERROR(f"{report}: failed: {exc}"))
                    continue
                if built is None:
                    bar.write(self.style.WARNING(f"{report}: being built by a worker right now; skipped."))
                    continue
                sent = 0 if options["no_digest"] else report_digest_send(report_id=report.pk).sent
                bar.write(f"{built}: {built.state}" + (f", digest to {sent}" if sent else ""))
        if failed:
            raise CommandError(f"{failed} report(s) failed.")
