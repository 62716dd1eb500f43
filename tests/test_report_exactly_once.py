"""Exactly once: a real Celery worker on Redis is SIGKILLed mid-build; a new worker finishes the report.

The build is held in the middle by a real table lock taken from the test (a long aggregate query
in production): the worker has claimed the report (state running) and waits on its query when it
is killed. The unacknowledged message comes back after the broker's visibility timeout (shortened
here) and the new worker builds the report once and sends one digest.
"""

import time
import uuid
from decimal import Decimal

import psycopg
import pytest
from celery import Celery
from django.utils import timezone

from conftest import redis_url
from ops.models import Report, ReportKind, ReportState
from ops.selectors.reports import report_week
from ops.tests.factories import CostEntryFactory, ReportFactory
from projects.models import Role
from projects.tests.factories import MembershipFactory, OrganizationFactory, ProjectFactory, UserFactory
from tests.fault_helpers import Worker, blocked_on_costs, db_url, digest_recipients, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

VISIBILITY_TIMEOUT = 3


def _advisory_locks(lock_conn: psycopg.Connection) -> int:
    row = lock_conn.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    ).fetchone()
    return row[0]


def test_report_killed_mid_build_is_built_once_and_digested_once(tmp_path):
    org = OrganizationFactory(name="Acme")
    MembershipFactory(organization=org, role=Role.MANAGER, user=UserFactory(username="boss"))
    MembershipFactory(organization=org, role=Role.CONTRIBUTOR, user=UserFactory(username="dev"))
    today = timezone.localdate()
    for _ in range(3):
        CostEntryFactory(project=ProjectFactory(organization=org), amount=Decimal("10.00"), date=today)
    start, end = report_week(today)
    report = ReportFactory(organization=org, kind=ReportKind.STATUS, period_start=start, period_end=end)
    queue = f"test-exactly-once-{uuid.uuid4().hex[:8]}"
    mail_dir, log = tmp_path / "mail", tmp_path / "worker.log"
    mail_dir.mkdir()
    producer = Celery("producer", broker=redis_url(), set_as_current=False)
    worker_env = {
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mail_dir),
    }
    lock_conn = psycopg.connect(db_url().replace("postgres://", "postgresql://"))
    workers = []
    try:
        # Hold the build in the middle: the worker's aggregate over cost entries waits on this lock.
        lock_conn.execute("LOCK TABLE ops_costentry IN ACCESS EXCLUSIVE MODE")
        first = Worker(log, broker=redis_url(), queue=queue, pool="solo", env=worker_env)
        workers.append(first)
        producer.send_task("ops.report_build", args=[report.pk], queue=queue)
        wait_for(lambda: Report.objects.get(pk=report.pk).state == ReportState.RUNNING, "the build to start")
        wait_for(lambda: blocked_on_costs(lock_conn), "the build to reach its cost query")

        first.kill()
        lock_conn.rollback()  # the orphaned query ends, its session and advisory lock with it
        wait_for(lambda: _advisory_locks(lock_conn) == 0, "the killed worker's session to end")
        report.refresh_from_db()
        assert report.state == ReportState.RUNNING and report.generated_at is None
        assert digest_recipients(mail_dir) == []

        time.sleep(VISIBILITY_TIMEOUT + 1)  # the unacknowledged message becomes visible again
        workers.append(Worker(log, broker=redis_url(), queue=queue, pool="solo", env=worker_env))
        wait_for(
            lambda: Report.objects.get(pk=report.pk).digest_sent_at is not None,
            "the new worker to build the report and send its digest",
            timeout=90,
        )
        time.sleep(2)  # a duplicate delivery, if any, would have run by now
    finally:
        lock_conn.close()
        for worker in workers:
            worker.stop()
        producer.close()

    reports = Report.objects.filter(organization=org, kind=ReportKind.STATUS)
    assert reports.count() == 1
    report = reports.get()
    assert report.state == ReportState.READY and report.progress == 100
    assert report.attempts == 2  # the killed build and the one that finished
    assert report.data["totals"]["spend_to_date"] == "30.00"
    assert digest_recipients(mail_dir) == ["boss@example.com"]  # one digest, to the one manager
