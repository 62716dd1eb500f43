"""Worker killed mid-task, 10 times: 5 pool processes and 5 whole workers, SIGKILLed in the middle of a build.

Real `celery -A tracker worker` processes (prefork, one pool process each; three, and a replacement
for each one killed) consume from a redis-server of the test's own with a short visibility timeout.
Each build is held in the middle by a table lock taken from the test (as a long aggregate query
would in production): the worker has claimed the report (state running) and waits on its cost
query when it is killed.

- A pool process killed: its worker notices, requeues the message at once and a pool process takes
  it (retrying while the dead build's database session still holds the build lock).
- The whole worker killed: its unacknowledged message comes back after the visibility timeout, on
  the broker sweep a live worker runs (run by the test at once instead of in 100 s), and another
  worker builds it; a replacement worker is started meanwhile, as a supervisor would.

Every report ends ready, built to completion once, with one digest.
"""

import datetime as dt
import os
import signal
import time
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from celery import Celery

from ops.models import Report, ReportKind, ReportState
from ops.tests.factories import CostEntryFactory, ReportFactory
from projects.models import Project, Role
from projects.tests.factories import MembershipFactory, OrganizationFactory, ProjectFactory, UserFactory
from tests.fault_helpers import (
    RedisServer,
    Worker,
    blocked_on_costs,
    db_url,
    digest_recipients,
    digest_subjects,
    restore_unacked,
    wait_for,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

VISIBILITY_TIMEOUT = 2
KILLS_PER_KIND = 5


def _digested(report: Report) -> bool:
    return Report.objects.filter(pk=report.pk, state=ReportState.READY, digest_sent_at__isnull=False).exists()


class Fleet:
    """The workers on the test's broker; each logs to its own file, so the one holding a task can be told."""

    def __init__(self, tmp_path: Path, broker: RedisServer, mail_dir: Path):
        self.tmp_path, self.broker, self.workers = tmp_path, broker, []
        self.env = {
            "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(mail_dir),
        }

    def start(self) -> Worker:
        log = self.tmp_path / f"worker-{len(self.workers)}.log"
        self.workers.append(Worker(log, broker=self.broker.url(), queue="celery", env=self.env))
        return self.workers[-1]

    def live(self) -> list[Worker]:
        return [worker for worker in self.workers if worker.alive()]

    def holding(self, task_id: str) -> Worker:
        """Return the live worker that received the task last."""
        return wait_for(
            lambda: next((w for w in self.live() if f"{task_id}] received" in w.log.read_text()), None),
            f"a worker to receive task {task_id}",
        )

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()


def _hold_build_mid_way(lock_conn: psycopg.Connection, producer: Celery, report: Report, fleet: Fleet) -> Worker:
    """Send the build; return the worker inside it once the report is running and its cost query waits."""
    lock_conn.execute("LOCK TABLE ops_costentry IN ACCESS EXCLUSIVE MODE")
    task = producer.send_task("ops.report_build", args=[report.pk])
    wait_for(
        lambda: Report.objects.get(pk=report.pk).state == ReportState.RUNNING,
        f"report {report.pk}'s build to start",
        timeout=120,
    )
    wait_for(lambda: blocked_on_costs(lock_conn), "the build to reach its cost query")
    return fleet.holding(task.id)


def test_workers_and_pool_processes_killed_mid_build_ten_times_leave_every_report_built_and_digested_once(tmp_path):
    org = OrganizationFactory(name="Acme")
    MembershipFactory(organization=org, role=Role.MANAGER, user=UserFactory(username="boss"))
    project = ProjectFactory(organization=org)
    Project.objects.filter(pk=project.pk).update(created_at=dt.datetime(2025, 12, 1, tzinfo=dt.UTC))
    CostEntryFactory(project=project, amount=Decimal("10.00"), date=dt.date(2026, 1, 7))
    # One status report (its build aggregates cost entries) per kill, each its own week.
    reports = [
        ReportFactory(
            organization=org,
            kind=ReportKind.STATUS,
            period_start=dt.date(2026, 1, 5) + dt.timedelta(weeks=n),
            period_end=dt.date(2026, 1, 11) + dt.timedelta(weeks=n),
        )
        for n in range(2 * KILLS_PER_KIND)
    ]
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    broker = RedisServer(tmp_path).start()
    producer = Celery("producer", broker=broker.url(), set_as_current=False)
    fleet = Fleet(tmp_path, broker, mail_dir)
    lock_conn = psycopg.connect(db_url().replace("postgres://", "postgresql://"))
    kills = []
    started = time.monotonic()
    try:
        # Spares, so a whole-worker kill always leaves a ready worker while its replacement boots.
        for worker in [fleet.start() for _ in range(3)]:
            worker.wait_ready()

        for report in reports[:KILLS_PER_KIND]:
            worker = _hold_build_mid_way(lock_conn, producer, report, fleet)
            (child,) = worker.pool_children()
            os.kill(child, signal.SIGKILL)
            kills.append("pool process")
            wait_for(lambda pid=child, w=worker: pid not in w.pool_children(), "the killed pool process to be reaped")
            lock_conn.rollback()  # the dead build's query ends, its session and build lock with it
            wait_for(
                lambda r=report: _digested(r), f"report {report.pk} after its pool process was killed", timeout=120
            )
            assert worker.alive()

        for report in reports[KILLS_PER_KIND:]:
            worker = _hold_build_mid_way(lock_conn, producer, report, fleet)
            worker.kill()
            kills.append("worker")
            lock_conn.rollback()
            fleet.start()  # the replacement; the surviving worker picks the message up meanwhile
            assert Report.objects.get(pk=report.pk).state == ReportState.RUNNING
            time.sleep(VISIBILITY_TIMEOUT + 1)  # the unacknowledged message becomes visible again
            restore_unacked(broker.url(), visibility_timeout=VISIBILITY_TIMEOUT)
            wait_for(lambda r=report: _digested(r), f"report {report.pk} after its worker was killed", timeout=120)
        time.sleep(VISIBILITY_TIMEOUT + 1)  # a duplicate delivery, if any, would have run by now
    finally:
        lock_conn.close()
        fleet.stop()
        broker.stop()
        producer.close()
    print(f"{len(kills)} kills ({kills.count('pool process')} pool processes, {kills.count('worker')} workers)"
          f" in {time.monotonic() - started:.0f} s")  # fmt: skip

    assert kills == ["pool process"] * KILLS_PER_KIND + ["worker"] * KILLS_PER_KIND
    assert Report.objects.filter(organization=org).count() == len(reports)
    for report in reports:
        report.refresh_from_db()
        assert report.state == ReportState.READY and report.progress == 100
        assert report.attempts == 2  # the killed build and the one that finished
        assert report.data["totals"]["spend_to_date"] == "10.00"
    # One digest per report, to the one manager: none lost, none sent twice.
    subjects = digest_subjects(mail_dir)
    assert len(subjects) == len(set(subjects)) == len(reports)
    assert digest_recipients(mail_dir) == ["boss@example.com"] * len(reports)
