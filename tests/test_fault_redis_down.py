"""Redis down: the site keeps serving; a report request answers 503 and is kept; Redis back, reports complete.

Everything runs as real processes against a redis-server of the test's own (broker on db 0, cache on
db 1, as in production): gunicorn serving the site and the API, and one `celery -A tracker worker`
started before the outage and never restarted. The machine's shared Redis is never touched.
"""

import datetime as dt
import time

import pytest
from celery import Celery
from django.utils import timezone

from ops.models import Report, ReportKind, ReportState
from ops.selectors.reports import report_week
from ops.tests.factories import CostEntryFactory
from projects.models import Role, StatusUpdate
from projects.services import api_token_create
from projects.tests.factories import MembershipFactory, OrganizationFactory, ProjectFactory, UserFactory
from tests.fault_helpers import Gunicorn, RedisServer, Worker, db_url, digest_subjects, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.real_password_hashing]

PASSWORD = "correct-horse-battery"  # the factories' password


def _status_form(summary: str) -> dict[str, str]:
    return {"date": str(timezone.localdate()), "health": "amber", "progress": "40", "summary": summary}


def test_redis_down_keeps_the_site_serving_answers_503_for_reports_and_recovers_without_restarts(tmp_path):
    org = OrganizationFactory(name="Acme")
    manager = UserFactory(username="boss")
    MembershipFactory(organization=org, user=manager, role=Role.MANAGER)
    project = ProjectFactory(organization=org, name="Support bot")
    CostEntryFactory(project=project, date=timezone.localdate())
    _, api_key = api_token_create(user=manager, name="integration")
    week, _ = report_week(timezone.localdate())
    earlier = week - dt.timedelta(days=7)
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()

    broker = RedisServer(tmp_path).start()
    processes = []
    producer = Celery("producer", broker=broker.url(0), set_as_current=False)
    try:
        app_env = {
            "DATABASE_URL": db_url("fault-redis-web"),
            "DATABASE_CONN_MAX_AGE": "60",
            "CELERY_BROKER_URL": broker.url(0),
            "CACHE_URL": broker.url(1),
        }
        web = Gunicorn(tmp_path / "web.log", workers=2, env=app_env)
        processes.append(web)
        web.wait_serving()
        # A pending report older than REPORT_PENDING_REQUEUE_MINUTES is re-enqueued by the weekly job:
        # 0 here, so the job re-enqueues every pending report when the test runs it.
        worker_env = {
            "CACHE_URL": broker.url(1),
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(mail_dir),
            "REPORT_PENDING_REQUEUE_MINUTES": "0",
        }
        worker = Worker(tmp_path / "worker.log", broker=broker.url(0), queue="celery", env=worker_env)
        processes.append(worker)
        worker.wait_ready()

        browser = web.client()
        assert browser.sign_in("boss", PASSWORD).status == 302
        api = web.client()
        api.headers["Authorization"] = f"Bearer {api_key}"

        # Before the outage: a report requested through the API is built by the worker.
        before = api.post_json(
            "/api/v1/reports/",
            {
                "kind": "status",
                "period_start": str(earlier),
                "period_end": str(earlier + dt.timedelta(days=6)),
                "notify": True,
            },
        )
        assert before.status == 202, before.text
        wait_for(
            lambda: Report.objects.filter(pk=before.json()["id"], digest_sent_at__isnull=False).exists(),
            "the report requested before the outage",
            timeout=120,
            processes=processes,
        )

        broker.stop()

        # Reads and writes keep working: pages, the list, a status update through the UI and the API.
        assert browser.get(f"/projects/{project.pk}/").status == 200
        assert browser.get("/projects/").status == 200
        assert browser.get("/").status == 200
        form = browser.post_form(
            f"/projects/{project.pk}/status/",
            _status_form("Logged while Redis is down"),
            page=f"/projects/{project.pk}/",
        )
        assert form.status in (200, 302), form.text[:500]
        listing = api.get("/api/v1/projects/")
        assert listing.status == 200 and [row["id"] for row in listing.json()["results"]] == [project.pk]
        created = api.post_json(
            "/api/v1/status-updates/", {"project": project.pk, **_status_form("Pushed while Redis is down")}
        )
        assert created.status == 201, created.text
        assert sorted(StatusUpdate.objects.filter(project=project).values_list("summary", flat=True)) == [
            "Logged while Redis is down",
            "Pushed while Redis is down",
        ]
        # Sign-in back-off fails open on a cache outage: a right password signs in, a wrong one is refused.
        assert web.client().sign_in("boss", "wrong-password-123").status == 200
        assert web.client().sign_in("boss", PASSWORD).status == 302

        # A report request answers 503 with the reason, well within 15 s (no hang); the report is kept pending.
        api.timeout = browser.timeout = 15
        started = time.monotonic()
        refused = api.post_json(
            "/api/v1/reports/",
            {
                "kind": "status",
                "period_start": str(week),
                "period_end": str(week + dt.timedelta(days=6)),
                "notify": True,
            },
        )
        api_seconds = time.monotonic() - started
        assert refused.status == 503, refused.text
        assert refused.json()["code"] == "queue_unavailable"
        assert "task queue is unavailable" in refused.json()["detail"]
        started = time.monotonic()
        page = browser.post_form("/reports/new/", {"kind": "risk", "week": str(week), "notify": "on"}, page="/reports/")
        ui_seconds = time.monotonic() - started
        assert page.status == 503
        assert "task queue is unavailable" in page.text
        pending = Report.objects.filter(organization=org, period_start=week).order_by("kind")
        assert [(r.kind, r.state) for r in pending] == [
            (ReportKind.RISK, ReportState.PENDING),
            (ReportKind.STATUS, ReportState.PENDING),
        ]
        assert worker.alive() and web.alive()
        print(f"503 answered in {api_seconds:.2f} s (API) and {ui_seconds:.2f} s (UI) while Redis was down")

        # Redis back on the same port: the same worker process resumes; the weekly job re-enqueues the pending reports.
        broker.start()
        producer.send_task("ops.reports_schedule")
        wait_for(
            lambda: all(r.state == ReportState.READY and r.digest_sent_at for r in pending.all()),
            "the pending reports to be built once Redis is back",
            timeout=120,
            processes=processes,
        )
        # And new requests are queued again.
        again = api.post_json(
            "/api/v1/reports/",
            {
                "kind": "risk",
                "period_start": str(earlier),
                "period_end": str(earlier + dt.timedelta(days=6)),
                "notify": True,
            },
        )
        assert again.status == 202, again.text
        wait_for(
            lambda: Report.objects.filter(pk=again.json()["id"], digest_sent_at__isnull=False).exists(),
            "a report requested after the outage",
            timeout=120,
            processes=processes,
        )
        assert worker.log.read_text().count(" ready.") == 1  # never restarted
    finally:
        for process in reversed(processes):
            process.stop()
        broker.stop()
        producer.close()

    assert Report.objects.filter(organization=org).count() == 4
    assert set(Report.objects.filter(organization=org).values_list("state", flat=True)) == {ReportState.READY}
    # One digest per report, to the one manager.
    assert len(digest_subjects(mail_dir)) == 4
