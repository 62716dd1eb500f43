"""Requesting reports: managers only, idempotent per period, a failed one retried; against PostgreSQL."""

import datetime as dt

import pytest

from ops.models import Report, ReportKind, ReportState
from ops.services import report_request
from ops.tests.factories import ReportFactory
from projects.models import Role
from projects.tests.factories import OrganizationFactory, ProjectFactory, member
from tracker.exceptions import NotPermitted, ValidationFailed

pytestmark = pytest.mark.django_db

MONDAY, SUNDAY = dt.date(2026, 3, 2), dt.date(2026, 3, 8)


def request(org, by, **kwargs):
    values = {"kind": ReportKind.STATUS, "period_start": MONDAY, "period_end": SUNDAY} | kwargs
    return report_request(organization=org, by=by, **values)


def test_report_request_creates_a_pending_report_and_enqueues_its_build(
    org, manager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        report = request(org, manager)

    stored = Report.objects.get(pk=report.pk)
    assert (stored.state, stored.requested_by, stored.project) == (ReportState.PENDING, manager, None)
    assert (stored.period_start, stored.period_end, stored.kind) == (MONDAY, SUNDAY, ReportKind.STATUS)
    assert len(callbacks) == 1


def test_report_request_allowed_to_an_admin_and_to_the_scheduler(org):
    request(org, member(org, Role.ADMIN))
    request(org, None, kind=ReportKind.RISK)

    assert Report.objects.filter(organization=org).count() == 2


@pytest.mark.parametrize("role", [Role.VIEWER, Role.CONTRIBUTOR])
def test_report_request_refused_below_manager(org, role, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(NotPermitted):
        request(org, member(org, role))

    assert not Report.objects.exists()
    assert callbacks == []


def test_report_request_refused_to_a_manager_of_another_organization(org):
    with pytest.raises(NotPermitted):
        request(org, member(OrganizationFactory(), Role.MANAGER))

    assert not Report.objects.exists()


def test_report_request_twice_for_the_same_period_returns_the_same_report(org, manager):
    first = request(org, manager)
    second = request(org, member(org, Role.MANAGER))

    assert first.pk == second.pk
    assert Report.objects.count() == 1
    assert Report.objects.get().requested_by == manager


def test_report_request_keeps_kinds_projects_and_periods_apart(org, manager):
    project = ProjectFactory(organization=org)
    request(org, manager)
    request(org, manager, kind=ReportKind.RISK)
    request(org, manager, project=project)
    request(org, manager, project=project)
    request(org, manager, period_start=SUNDAY + dt.timedelta(days=1), period_end=SUNDAY + dt.timedelta(days=7))

    assert Report.objects.filter(organization=org).count() == 4
    assert Report.objects.filter(project=project).count() == 1


def test_report_request_resets_a_failed_report_to_pending(org, manager, django_capture_on_commit_callbacks):
    failed = ReportFactory(
        organization=org, period_start=MONDAY, period_end=SUNDAY, state=ReportState.FAILED, error="Worker lost"
    )

    with django_capture_on_commit_callbacks() as callbacks:
        report = request(org, manager)

    assert report.pk == failed.pk
    stored = Report.objects.get(pk=failed.pk)
    assert (stored.state, stored.error) == (ReportState.PENDING, "")
    assert len(callbacks) == 1
    assert Report.objects.count() == 1


@pytest.mark.parametrize("state", [ReportState.READY, ReportState.RUNNING])
def test_report_request_leaves_a_ready_or_running_report_alone(org, manager, state, django_capture_on_commit_callbacks):
    existing = ReportFactory(
        organization=org, period_start=MONDAY, period_end=SUNDAY, state=state, data={"projects": 3}
    )

    with django_capture_on_commit_callbacks() as callbacks:
        report = request(org, manager)

    assert report.pk == existing.pk
    stored = Report.objects.get(pk=existing.pk)
    assert (stored.state, stored.data) == (state, {"projects": 3})
    assert callbacks == []


def test_report_request_refuses_a_period_that_is_neither_a_week_nor_a_month(org, manager):
    with pytest.raises(ValidationFailed, match=r"a week \(Monday to Sunday\) or a calendar month"):
        request(org, manager, period_start=MONDAY, period_end=MONDAY)

    assert not Report.objects.exists()


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"kind": "gossip"}, "kind"),
        ({"period_start": SUNDAY, "period_end": MONDAY}, "period_end"),
    ],
)
def test_report_request_refuses_bad_input_and_writes_nothing(org, manager, values, field):
    with pytest.raises(ValidationFailed) as excinfo:
        request(org, manager, **values)

    assert list(excinfo.value.errors) == [field]
    assert not Report.objects.exists()


def test_report_request_refuses_a_project_of_another_organization(org, manager):
    foreign = ProjectFactory(organization=OrganizationFactory())

    with pytest.raises(ValidationFailed) as excinfo:
        request(org, manager, project=foreign)

    assert list(excinfo.value.errors) == ["project"]
    assert not Report.objects.exists()
