"""Beat schedule and periodic jobs: declared times, weekly reports in each timezone, catch-up, stuck reports."""

import datetime as dt

import pytest
import time_machine
from celery.schedules import crontab

from ops.models import Report, ReportKind, ReportState, RiskSnapshot
from ops.tasks import report_build_task, reports_schedule_task, snapshots_schedule_task
from ops.tests.factories import ReportFactory
from projects import tasks as project_tasks  # noqa: F401 - registers the tasks beat names
from projects.tests.factories import OrganizationFactory
from tracker.celery import app
from webhooks import tasks as webhook_tasks  # noqa: F401 - registers the tasks beat names

pytestmark = pytest.mark.django_db

UTC = dt.UTC


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks):
    """Run on-commit callbacks (the enqueues) although the test's transaction never commits."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def eager():
    """Run enqueued tasks in-process, so a test sees what a worker would do."""
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def periods(org) -> list[tuple[str, dt.date, dt.date, str]]:
    return sorted(
        Report.objects.filter(organization=org).values_list("kind", "period_start", "period_end", "state"),
        key=lambda row: (row[1], row[0]),
    )


def test_every_periodic_job_is_declared_in_the_beat_schedule():
    schedule = app.conf.beat_schedule
    assert {entry["task"] for entry in schedule.values()} == {
        "ops.reports_schedule",
        "ops.snapshots_schedule",
        "ops.risk_signals_schedule",
        "ops.review_reminders_schedule",
        "ops.api_token_expiry_warnings_send",
        "webhooks.deliveries_due",
        "ops.otlp_span_keys_purge",
        "projects.idempotency_keys_purge",
    }
    assert all(entry["task"] in app.tasks for entry in schedule.values())
    assert schedule["reports-weekly"]["schedule"] == crontab(minute=5)


def test_reports_job_is_due_at_its_declared_time():
    entry = app.conf.beat_schedule["reports-weekly"]["schedule"]
    entry.nowfun = lambda: dt.datetime(2026, 3, 9, 0, 5, 1, tzinfo=UTC)
    due, _ = entry.is_due(dt.datetime(2026, 3, 8, 23, 5, tzinfo=UTC))
    assert due
    entry.nowfun = lambda: dt.datetime(2026, 3, 9, 0, 30, tzinfo=UTC)
    due, _ = entry.is_due(dt.datetime(2026, 3, 9, 0, 5, 1, tzinfo=UTC))
    assert not due


def test_weekly_job_builds_last_weeks_reports_in_each_organizations_timezone(eager, run_on_commit):
    with time_machine.travel(dt.datetime(2026, 3, 2, tzinfo=UTC), tick=False):
        utc_org = OrganizationFactory(timezone="UTC")
        auckland = OrganizationFactory(timezone="Pacific/Auckland")
    # Sunday 8 March 12:05 UTC: Monday 01:05 in Auckland (its week is over), still Sunday in UTC.
    with time_machine.travel(dt.datetime(2026, 3, 8, 12, 5, tzinfo=UTC), tick=False), run_on_commit():
        reports_schedule_task()
    week = (dt.date(2026, 3, 2), dt.date(2026, 3, 8))
    assert periods(auckland) == [
        (ReportKind.RISK, *week, ReportState.READY),
        (ReportKind.STATUS, *week, ReportState.READY),
    ]
    # The UTC organization's last complete week (23 February – 1 March) is before it existed.
    assert periods(utc_org) == []
    with time_machine.travel(dt.datetime(2026, 3, 9, 0, 5, tzinfo=UTC), tick=False), run_on_commit():
        reports_schedule_task()
        reports_schedule_task()  # a second run the same hour changes nothing
    assert periods(utc_org) == [
        (ReportKind.RISK, *week, ReportState.READY),
        (ReportKind.STATUS, *week, ReportState.READY),
    ]
    assert Report.objects.count() == 4


def test_weekly_job_catches_up_missed_weeks_within_the_bound(eager, run_on_commit, settings):
    settings.REPORT_CATCH_UP_WEEKS = 4
    with time_machine.travel(dt.datetime(2026, 1, 1, tzinfo=UTC), tick=False):
        org = OrganizationFactory(timezone="UTC")
    ReportFactory(
        organization=org, kind=ReportKind.STATUS, period_start=dt.date(2026, 3, 2), period_end=dt.date(2026, 3, 8)
    )
    # Workers were down for weeks: the next run on Monday 16 March produces the 4 last weeks, no more.
    with time_machine.travel(dt.datetime(2026, 3, 16, 0, 5, tzinfo=UTC), tick=False), run_on_commit():
        reports_schedule_task()
    starts = sorted({row[1] for row in periods(org)})
    assert starts == [dt.date(2026, 2, 16), dt.date(2026, 2, 23), dt.date(2026, 3, 2), dt.date(2026, 3, 9)]
    assert Report.objects.filter(organization=org).count() == 8
    # The report that existed is left to its own build (still pending until a worker or the requeue takes it).
    assert Report.objects.filter(state=ReportState.READY).count() == 7


def test_weekly_job_requeues_reports_stuck_running_past_the_time_limit(eager, run_on_commit, settings):
    with time_machine.travel(dt.datetime(2026, 3, 1, tzinfo=UTC), tick=False):
        org = OrganizationFactory(timezone="UTC")
    stuck = ReportFactory(
        organization=org,
        state=ReportState.RUNNING,
        started_at=dt.datetime(2026, 3, 9, 0, 0, tzinfo=UTC),
        period_start=dt.date(2026, 3, 2),
        period_end=dt.date(2026, 3, 8),
    )
    late = dt.datetime(2026, 3, 9, 0, 0, tzinfo=UTC) + dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT - 60)
    with time_machine.travel(late, tick=False), run_on_commit():
        reports_schedule_task()
    stuck.refresh_from_db()
    assert stuck.state == ReportState.RUNNING  # within the time limit: a worker may still be on it
    with time_machine.travel(late + dt.timedelta(minutes=5), tick=False), run_on_commit():
        reports_schedule_task()
    stuck.refresh_from_db()
    assert stuck.state == ReportState.READY and stuck.attempts == 1


def test_report_task_builds_then_sends_the_digest_once(eager, mailoutbox):
    from projects.models import Role
    from projects.tests.factories import MembershipFactory

    org = OrganizationFactory()
    MembershipFactory(organization=org, role=Role.ADMIN)
    report = ReportFactory(organization=org)
    report_build_task.delay(report.pk)
    report_build_task.delay(report.pk)  # a redelivery
    report.refresh_from_db()
    assert report.state == ReportState.READY and report.digest_sent_at is not None
    assert len(mailoutbox) == 1


def test_snapshot_job_takes_each_organizations_yesterday_once(eager):
    with time_machine.travel(dt.datetime(2026, 3, 1, tzinfo=UTC), tick=False):
        utc_org = OrganizationFactory(timezone="UTC")
        auckland = OrganizationFactory(timezone="Pacific/Auckland")
    with time_machine.travel(dt.datetime(2026, 3, 8, 12, 15, tzinfo=UTC), tick=False):
        snapshots_schedule_task()
        snapshots_schedule_task()
    assert sorted(RiskSnapshot.objects.values_list("organization_id", "date")) == sorted(
        [(utc_org.pk, dt.date(2026, 3, 7)), (auckland.pk, dt.date(2026, 3, 8))]
    )
