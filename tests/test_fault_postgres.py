"""PostgreSQL connections dropped under a running app: requests fail at most briefly, tasks still succeed.

gunicorn and a Celery worker run as real processes with production-like database settings:
persistent connections (DATABASE_CONN_MAX_AGE) checked before reuse (CONN_HEALTH_CHECKS). Their
sessions carry an application_name of their own, so `pg_terminate_backend` ends only the app's
connections, never the test's or any other session on the machine.

A Celery worker closes its connections after every task (Celery's Django fixup), so an idle worker
has none to lose; a task in flight loses its own and is retried.
"""

import datetime as dt
from decimal import Decimal

import psycopg
import pytest
from celery import Celery
from django.db import connection
from django.utils import timezone

from ops.models import Report, ReportKind, ReportState
from ops.tests.factories import CostEntryFactory, ReportFactory
from projects.models import Project, Role, StatusUpdate
from projects.services import api_token_create
from projects.tests.factories import MembershipFactory, OrganizationFactory, ProjectFactory, UserFactory
from tests.fault_helpers import Gunicorn, RedisServer, Worker, blocked_on_costs, db_url, digest_recipients, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.real_password_hashing]

WEB_WORKERS = 2
ROUNDS = 3
REQUESTS_PER_ROUND = 18
WEB_APP, WORKER_APP = "fault-pg-web", "fault-pg-worker"


def _app_sessions(application_name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
            [application_name],
        )
        return cursor.fetchone()[0]


def _terminate(application_name: str) -> int:
    """End the app's own database sessions (never this test's, never another application's); return how many."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = %s",
            [application_name],
        )
        return cursor.fetchone()[0]


def _gunicorn_workers(web: Gunicorn) -> set[int]:
    with open(f"/proc/{web.pid}/task/{web.pid}/children") as children:
        return {int(pid) for pid in children.read().split()}


def test_terminated_database_sessions_cost_at_most_one_failed_request_per_web_worker_and_no_restart(tmp_path):
    org = OrganizationFactory()
    user = UserFactory(username="lead")
    MembershipFactory(organization=org, user=user, role=Role.CONTRIBUTOR)
    project = ProjectFactory(organization=org)
    _, api_key = api_token_create(user=user, name="integration")
    env = {"DATABASE_URL": db_url(WEB_APP), "DATABASE_CONN_MAX_AGE": "60"}
    web = Gunicorn(tmp_path / "web.log", workers=WEB_WORKERS, env=env)
    failures_per_round = []
    try:
        web.wait_serving()
        api = web.client()
        api.headers["Authorization"] = f"Bearer {api_key}"
        browser = web.client()
        assert browser.sign_in("lead", "correct-horse-battery").status == 302
        written = []

        def status_update():
            body = {"project": project.pk, "date": str(timezone.localdate()), "health": "green", "progress": 50}
            response = api.post_json("/api/v1/status-updates/", body | {"summary": f"Update {len(written)}"})
            if response.status == 201:
                written.append(response.json()["id"])
            return response

        requests = [
            lambda: api.get("/api/v1/projects/"),
            lambda: browser.get(f"/projects/{project.pk}/"),
            status_update,
        ]
        for n in range(2 * WEB_WORKERS * len(requests)):  # every web worker opens its persistent connection
            assert requests[n % len(requests)]().status < 400
        workers_before = _gunicorn_workers(web)

        for _ in range(ROUNDS):
            assert _app_sessions(WEB_APP) >= 1
            assert _terminate(WEB_APP) >= 1
            failed = 0
            for n in range(REQUESTS_PER_ROUND):
                try:
                    failed += requests[n % len(requests)]().status >= 500
                except OSError:  # a dropped or refused connection counts as a failure too
                    failed += 1
            failures_per_round.append(failed)
        workers_after = _gunicorn_workers(web)
    finally:
        web.stop()
    print(f"failed requests after pg_terminate_backend, per round of {REQUESTS_PER_ROUND}: {failures_per_round}")

    assert all(failed <= WEB_WORKERS for failed in failures_per_round), failures_per_round
    assert workers_after == workers_before  # recovered without restarting a web worker
    # Every write that was answered 201 is stored, once; nothing else was written.
    assert sorted(StatusUpdate.objects.filter(project=project).values_list("pk", flat=True)) == sorted(written)


def test_a_worker_keeps_no_idle_session_and_a_task_whose_session_is_terminated_mid_build_retries_to_ready(tmp_path):
    org = OrganizationFactory()
    MembershipFactory(organization=org, role=Role.MANAGER, user=UserFactory(username="boss"))
    project = ProjectFactory(organization=org)
    Project.objects.filter(pk=project.pk).update(created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    CostEntryFactory(project=project, amount=Decimal("10.00"), date=dt.date(2026, 3, 3))
    first, second = (
        ReportFactory(organization=org, kind=ReportKind.STATUS, period_start=start, period_end=start + dt.timedelta(6))
        for start in (dt.date(2026, 3, 2), dt.date(2026, 3, 9))
    )
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    broker = RedisServer(tmp_path).start()
    producer = Celery("producer", broker=broker.url(), set_as_current=False)
    env = {
        "DATABASE_URL": db_url(WORKER_APP),
        "DATABASE_CONN_MAX_AGE": "60",
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mail_dir),
    }
    worker = Worker(tmp_path / "worker.log", broker=broker.url(), queue="celery", env=env)
    lock_conn = psycopg.connect(db_url().replace("postgres://", "postgresql://"))
    try:
        worker.wait_ready()
        task = producer.send_task("ops.report_build", args=[first.pk])
        wait_for(lambda: f"{task.id}] succeeded" in worker.log.read_text(), "the first task", timeout=120)
        # Idle, the worker holds no session to lose: Celery closes the task's connections after each task.
        assert _app_sessions(WORKER_APP) == 0

        # Mid-build: the worker waits on its cost query (held by this lock) when its session is terminated.
        lock_conn.execute("LOCK TABLE ops_costentry IN ACCESS EXCLUSIVE MODE")
        producer.send_task("ops.report_build", args=[second.pk])
        wait_for(lambda: blocked_on_costs(lock_conn), "the second build to reach its cost query", timeout=120)
        terminated = _terminate(WORKER_APP)
        lock_conn.rollback()
        wait_for(
            lambda: Report.objects.filter(pk=second.pk, digest_sent_at__isnull=False).exists(),
            "the second report, retried",
            timeout=120,
            processes=[worker],
        )
        assert worker.log.read_text().count(" ready.") == 1  # the same worker, never restarted
    finally:
        lock_conn.close()
        worker.stop()
        broker.stop()
        producer.close()

    assert terminated == 1
    # The dropped session failed the build's query; the task retried (OperationalError is transient) and built it.
    assert "retry: Retry in" in worker.log.read_text()
    second.refresh_from_db()
    assert second.state == ReportState.READY and second.attempts == 2
    assert second.data["totals"]["spend_to_date"] == "10.00"
    assert digest_recipients(mail_dir) == ["boss@example.com", "boss@example.com"]  # one per report
