"""`manage.py generate_reports`: the weekly job, run synchronously from the command line."""

import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from ops.models import Report, ReportKind, ReportState
from projects.models import Role
from projects.tests.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("generate_reports", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_builds_the_week_containing_the_given_day_for_one_organization(mailoutbox):
    org = OrganizationFactory(slug="acme")
    OrganizationFactory(slug="other")
    MembershipFactory(organization=org, role=Role.MANAGER)
    run("--org", "acme", "--kind", "risk", "--period", "2026-03-04")
    report = Report.objects.get()
    assert (report.organization, report.kind, report.period_start, report.period_end, report.state) == (
        org,
        ReportKind.RISK,
        dt.date(2026, 3, 2),
        dt.date(2026, 3, 8),
        ReportState.READY,
    )
    assert len(mailoutbox) == 1
    run("--org", "acme", "--kind", "risk", "--period", "2026-03-06")  # same week: nothing new, no second digest
    assert Report.objects.count() == 1 and len(mailoutbox) == 1


def test_without_options_builds_both_kinds_of_last_week_everywhere():
    OrganizationFactory()
    OrganizationFactory()
    run()
    assert Report.objects.filter(state=ReportState.READY).count() == 4
    assert len({r.period_start for r in Report.objects.all()}) == 1


def test_an_unknown_organization_is_refused_and_nothing_is_written():
    with pytest.raises(CommandError, match="nope"):
        run("--org", "nope")
    assert not Report.objects.exists()
