"""Reports: requesting one (on demand or on schedule); building it lives beside it."""

import datetime as dt

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from ops.models import Report, ReportKind, ReportState
from projects.models import Organization, Project, Role
from projects.services import membership_require
from tracker.exceptions import ValidationFailed


@transaction.atomic
def report_request(
    *,
    organization: Organization,
    kind: str,
    period_start: dt.date,
    period_end: dt.date,
    by: AbstractBaseUser,
    project: Project | None = None,
) -> Report:
    """Ask for a report of a period (managers only); asking again returns the same report.

    A failed report is reset to pending, so asking again retries it.
    """
    membership_require(user=by, organization=organization, role=Role.MANAGER)
    errors: dict[str, list[str]] = {}
    if kind not in ReportKind.values:
        errors["kind"] = [f"Choose one of {', '.join(ReportKind.values)}."]
    if period_end < period_start:
        errors["period_end"] = ["The period ends before it starts."]
    if project is not None and project.organization_id != organization.pk:
        errors["project"] = ["Unknown project."]
    if errors:
        raise ValidationFailed(next(iter(errors.values()))[0], errors=errors)
    report, created = Report.objects.select_for_update().get_or_create(
        organization=organization,
        project=project,
        kind=kind,
        period_start=period_start,
        period_end=period_end,
        defaults={"requested_by": by},
    )
    if not created and report.state == ReportState.FAILED:
        report.state, report.error = ReportState.PENDING, ""
        report.save(update_fields=["state", "error", "updated_at"])
    return report
