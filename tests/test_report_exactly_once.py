"""Exactly once: a real Celery worker on Redis is SIGKILLed mid-build; a new worker finishes the report.

The build is held in the middle by a real table lock taken from the test (a long aggregate query
in production): the worker has claimed the report (state running) and waits on its query when it
is killed. The unacknowledged message comes back after the broker's visibility timeout (shortened
here) and the new worker builds the report once and sends one digest.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from celery import Celery
from django.conf import settings
from django.db import connection
from django.utils import timezone

from conftest import redis_url
from ops.models import Report, ReportKind, ReportState
from ops.selectors.reports import report_week
from ops.tests.factories import CostEntryFactory, ReportFactory
from projects.models import Role
from projects.tests.factories import MembershipFactory, OrganizationFactory, ProjectFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

VISIBILITY_TIMEOUT = 3
BASE_DIR = Path(settings.BASE_DIR)


def _db_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _wait(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out waiting for {what}")
        time.sleep(0.2)


class Worker:
    """A `celery -A tracker worker` subprocess on the test database and the test Redis."""

    def __init__(self, queue: str, mail_dir: Path, log: Path):
        env = os.environ | {
            "DATABASE_URL": _db_url(),
            "CELERY_BROKER_URL": redis_url(),
            "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(mail_dir),
            "DJANGO_SETTINGS_MODULE": "tracker.settings",
        }
        self.log = log.open("ab")
        command = [sys.executable, "-m", "celery", "-A", "tracker", "worker", "-P", "solo", "-Q", queue]
        command += ["--without-mingle", "--without-gossip", "-l", "INFO"]
        # Its own process group, so a kill reaches every process it started.
        self.process = subprocess.Popen(
            command, cwd=BASE_DIR, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if not self.log.closed:
            self.log.close()


def _blocked_on_costs(lock_conn: psycopg.Connection) -> bool:
    """Whether some other session waits for the lock on the cost table (the worker's build)."""
    row = lock_conn.execute(
        "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'ops_costentry'::regclass"
    ).fetchone()
    return row[0] > 0


def _advisory_locks(lock_conn: psycopg.Connection) -> int:
    row = lock_conn.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    ).fetchone()
    return row[0]


def _digest_recipients(mail_dir: Path) -> list[str]:
    """Return the recipient of every message the file-based e-mail backend wrote."""
    return [
        line.removeprefix("To: ")
        for path in mail_dir.glob("*")
        for line in path.read_text().splitlines()
        if line.startswith("To: ")
    ]


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
    producer = Celery("producer", broker=redis_url())
    lock_conn = psycopg.connect(_db_url().replace("postgres://", "postgresql://"))
    workers = []
    try:
        # Hold the build in the middle: the worker's aggregate over cost entries waits on this lock.
        lock_conn.execute("LOCK TABLE ops_costentry IN ACCESS EXCLUSIVE MODE")
        first = Worker(queue, mail_dir, log)
        workers.append(first)
        producer.send_task("ops.report_build", args=[report.pk], queue=queue)
        _wait(lambda: Report.objects.get(pk=report.pk).state == ReportState.RUNNING, "the build to start")
        _wait(lambda: _blocked_on_costs(lock_conn), "the build to reach its cost query")

        first.kill()
        lock_conn.rollback()  # the orphaned query ends, its session and advisory lock with it
        _wait(lambda: _advisory_locks(lock_conn) == 0, "the killed worker's session to end")
        report.refresh_from_db()
        assert report.state == ReportState.RUNNING and report.generated_at is None
        assert _digest_recipients(mail_dir) == []

        time.sleep(VISIBILITY_TIMEOUT + 1)  # the unacknowledged message becomes visible again
        workers.append(Worker(queue, mail_dir, log))
        _wait(
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
    assert _digest_recipients(mail_dir) == ["boss@example.com"]  # one digest, to the one manager
