"""Limits (hardening points 1 and 6): bounded search, a database ceiling on web requests, per-user and
per-organization rate limits with RateLimit-* headers.

Each test performs the attack: the 2,000-term search, a request stuck in the database, one user's
tokens and session spending one budget each, an organization's members each spending their own.
"""

import datetime as dt
import json
import subprocess
import sys
import time
from decimal import Decimal
from unittest import mock

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.test import Client, override_settings
from redis.exceptions import ConnectionError as RedisConnectionError
from rest_framework.settings import api_settings

from ops.models import CostEntry, Report
from ops.tests.factories import CostEntryFactory
from projects.models import Role
from projects.services import api_token_create
from projects.tests.api_support import _fresh_throttle, client_for, member  # noqa: F401
from projects.tests.factories import OrganizationFactory, ProjectFactory
from tests.fault_helpers import ROOT, Gunicorn, child_env, db_url
from tracker.api import RateThrottle

pytestmark = pytest.mark.django_db

# The dearest search allowed: PostgreSQL stops at a row's first missed term, so every term matches every row,
# and only in the last search field of costs (description, model, external_id): every comparison is made.
WORST_SEARCH = " ".join(["bench"] * settings.SEARCH_MAX_TERMS)


def _rates(**rates: str):
    """Override the throttle rates (the settings are read at each request)."""
    merged = {**api_settings.DEFAULT_THROTTLE_RATES, **rates}
    return override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": merged})


def _entries(project, count: int, prefix: str) -> dict:
    rows = [
        {
            "project": project.pk,
            "date": "2026-03-01",
            "category": "inference",
            "amount": "1.50",
            "external_id": f"{prefix}-{n}",
        }
        for n in range(count)
    ]
    return {"entries": rows}


# --- Point 1: search bounds ---------------------------------------------------------------------


def test_a_search_of_2000_terms_is_a_400_naming_the_limit_and_runs_no_search():
    organization = OrganizationFactory()
    CostEntryFactory(project=ProjectFactory(organization=organization), description="gpu")
    client = client_for(member(organization, Role.VIEWER))
    attack = " ".join(f"term{n}" for n in range(2000))  # about 16 KB of terms

    response = client.get("/api/v1/costs/", {"search": attack})

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["errors"] == {"search": [f"At most {settings.SEARCH_MAX_TERMS} search terms are allowed (2000 given)."]}


def test_a_search_term_longer_than_the_limit_is_a_400_naming_it():
    client = client_for(member(OrganizationFactory(), Role.VIEWER))
    response = client.get("/api/v1/risks/", {"search": "a" * (settings.SEARCH_MAX_TERM_LENGTH + 1)})
    assert response.status_code == 400
    limit = settings.SEARCH_MAX_TERM_LENGTH
    assert response.json()["errors"] == {"search": [f"A search term may have at most {limit} characters."]}


def test_the_worst_search_still_allowed_answers_inside_the_web_ceiling_on_30000_costs():
    """As many terms as allowed, each matching all of the benchmark's 30,000 cost rows in the last field.

    It must answer under the database ceiling every web request has (set here on the test's own
    connection, for its transaction only), never be cancelled by it. How fast it answers is a figure
    of `python -m bench search` (349 ms on the idle machine), not of a test on a shared machine.
    """
    organization = OrganizationFactory()
    projects = [ProjectFactory(organization=organization) for _ in range(10)]
    CostEntry.objects.bulk_create(
        (
            CostEntry(
                project=projects[n % 10],
                date=dt.date(2026, 1, 1) + dt.timedelta(n % 365),
                category="inference",
                amount=Decimal("10.50"),
                description="Nightly invoice line",
                model="gpt-4o",
                external_id=f"bench-{n}",
            )
            for n in range(30_000)
        ),
        batch_size=5000,
    )
    client = client_for(member(organization, Role.VIEWER))
    assert client.get("/api/v1/costs/", {"search": "invoice gpt-4o"}).json()["count"] == 30_000  # the rows are seen

    with connection.cursor() as cursor:
        # Statistics as autovacuum keeps them in production: without them the planner expects one row.
        cursor.execute("ANALYZE ops_costentry")
        cursor.execute(
            "SELECT set_config('statement_timeout', %s, true)", [str(settings.DATABASE_WEB_STATEMENT_TIMEOUT_MS)]
        )
    response = client.get("/api/v1/costs/", {"search": WORST_SEARCH})
    assert response.status_code == 200 and response.json()["count"] == 30_000


def test_the_project_list_search_refuses_a_phrase_longer_than_a_search_term(client):
    organization = OrganizationFactory()
    ProjectFactory(organization=organization, name="Support bot")
    client.force_login(member(organization, Role.VIEWER))
    page = client.get("/projects/", {"q": "x" * (settings.SEARCH_MAX_TERM_LENGTH + 1)})
    assert page.status_code == 200
    assert f"at most {settings.SEARCH_MAX_TERM_LENGTH} characters" in page.content.decode()
    assert f'maxlength="{settings.SEARCH_MAX_TERM_LENGTH}"' in page.content.decode()


# --- Point 1: the database ceiling of web requests ----------------------------------------------


def _statement_timeout(code: str, **env: str) -> str:
    """Run `code` (which sets up Django its own way) in a fresh process; return its SHOW statement_timeout."""
    show = "from django.db import connection\nwith connection.cursor() as c:\n    c.execute('SHOW statement_timeout')\n"
    show += "    print(c.fetchone()[0])\n"
    variables = {"DATABASE_URL": db_url(), "DATABASE_WEB_STATEMENT_TIMEOUT_MS": "1234"} | env
    result = subprocess.run(
        [sys.executable, "-c", code + "\n" + show],
        cwd=ROOT,
        env=child_env(**variables),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.strip().splitlines()[-1]


def test_only_web_processes_get_the_statement_timeout():
    # The web entry point (gunicorn and runserver load tracker.wsgi).
    assert _statement_timeout("import tracker.wsgi") == "1234ms"
    # A management command (migrations too) and the Celery worker (it loads tracker.celery) get none.
    assert _statement_timeout("import django\ndjango.setup()") == "0"
    assert _statement_timeout("from tracker.celery import app\nimport django\ndjango.setup()") == "0"
    command = "from django.db import connection; c = connection.cursor(); c.execute('SHOW statement_timeout'); "
    command += "print(c.fetchone()[0])"
    shell = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", command],
        cwd=ROOT,
        env=child_env(DATABASE_URL=db_url(), DATABASE_WEB_STATEMENT_TIMEOUT_MS="1234"),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert shell.stdout.strip().splitlines()[-1] == "0"
    # Set to 0, the web has no ceiling either.
    assert _statement_timeout("import tracker.wsgi", DATABASE_WEB_STATEMENT_TIMEOUT_MS="0") == "0"


@pytest.mark.django_db(transaction=True)
@pytest.mark.real_password_hashing
def test_a_request_stuck_in_the_database_is_cancelled_at_the_ceiling_with_a_503(tmp_path):
    """A real gunicorn: requests reading the costs wait behind a lock until the ceiling cancels them."""
    organization = OrganizationFactory()
    project = ProjectFactory(organization=organization, name="Support bot")
    CostEntryFactory(project=project)
    viewer = member(organization, Role.VIEWER)
    viewer.username = "viewer"
    viewer.save()
    _, key = api_token_create(user=viewer, name="bi")
    web = Gunicorn(
        tmp_path / "web.log", workers=1, env={"DATABASE_URL": db_url(), "DATABASE_WEB_STATEMENT_TIMEOUT_MS": "500"}
    )
    try:
        web.wait_serving()
        api = web.client(timeout=20)
        api.headers["Authorization"] = f"Bearer {key}"
        browser = web.client(timeout=20)
        assert browser.sign_in("viewer", "correct-horse-battery").status == 302
        assert api.get("/api/v1/costs/").status == 200

        with psycopg.connect(db_url(), autocommit=False) as holder:
            holder.execute("LOCK TABLE ops_costentry IN ACCESS EXCLUSIVE MODE")  # a statement that never ends
            started = time.monotonic()
            stuck_api = api.get("/api/v1/costs/")
            stuck_page = browser.get("/projects/")
            elapsed = time.monotonic() - started
            holder.rollback()

        assert stuck_api.status == 503, stuck_api.text
        assert stuck_api.json() == {
            "detail": "The request took too long in the database and was cancelled. "
            "Narrow it (filters, fewer or shorter search terms) or retry later.",
            "code": "statement_timeout",
            "errors": {},
        }
        assert stuck_api.headers["RateLimit-Limit"]  # still an API answer like any other
        assert stuck_page.status == 503 and "This took too long" in stuck_page.text
        assert elapsed < 10  # two requests, each cancelled at 0.5 s, not left waiting for the lock
        log = web.log.read_text()
        assert log.count("Statement cancelled after DATABASE_WEB_STATEMENT_TIMEOUT_MS=500") == 2
        # The lock gone, the same worker (and its connection) serves again.
        assert api.get("/api/v1/costs/").status == 200
        assert browser.get("/projects/").status == 200
    finally:
        web.stop()


# --- Point 6: rate limits per user and per organization -----------------------------------------


def test_one_user_shares_one_budget_across_their_session_and_every_token():
    organization = OrganizationFactory()
    user = member(organization, Role.VIEWER)
    first, second = client_for(user), client_for(user)
    session = Client()
    session.force_login(user)
    with _rates(api="4/minute"):
        spent = [c.get("/api/v1/projects/").status_code for c in (first, second, session, first)]
        refused = [c.get("/api/v1/projects/").status_code for c in (first, second, session)]
        other_user = client_for(member(organization, Role.VIEWER)).get("/api/v1/projects/")
    assert spent == [200, 200, 200, 200]
    assert refused == [429, 429, 429]
    assert other_user.status_code == 200


def test_bulk_ingestion_is_limited_per_organization_whichever_member_sends_it():
    organization = OrganizationFactory()
    project = ProjectFactory(organization=organization)
    alice, bob = client_for(member(organization)), client_for(member(organization))
    elsewhere = OrganizationFactory()
    outsider = client_for(member(elsewhere))
    with _rates(api="100/minute", expensive="2/minute"):
        first = alice.post("/api/v1/costs/bulk/", _entries(project, 3, "a"), format="json")
        second = alice.post("/api/v1/usage/", {"entries": []}, format="json")  # usage shares the budget
        refused = bob.post("/api/v1/costs/bulk/", _entries(project, 3, "b"), format="json")
        still_reading = bob.get("/api/v1/costs/")
        other_org = outsider.post(
            "/api/v1/costs/bulk/", _entries(ProjectFactory(organization=elsewhere), 1, "c"), format="json"
        )
    assert first.status_code == 201
    assert second.status_code == 400  # counted, then refused for its body
    assert refused.status_code == 429 and refused.json()["code"] == "throttled"
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.headers["RateLimit-Limit"] == "2" and refused.headers["RateLimit-Remaining"] == "0"
    assert not CostEntry.objects.filter(external_id__startswith="b-").exists()  # nothing of the refused batch
    assert still_reading.status_code == 200  # only the expensive endpoints share the organization's budget
    assert other_org.status_code == 201


def test_report_requests_are_limited_per_organization():
    organization = OrganizationFactory()
    first_manager, second_manager = (
        client_for(member(organization, Role.MANAGER)),
        client_for(member(organization, Role.MANAGER)),
    )
    monday = dt.date(2026, 3, 2)

    def request_report(client, weeks_back: int):
        start = monday - dt.timedelta(weeks=weeks_back)
        body = {"kind": "status", "period_start": str(start), "period_end": str(start + dt.timedelta(days=6))}
        return client.post("/api/v1/reports/", body, format="json")

    with _rates(api="100/minute", expensive="1/minute"):  # the task is enqueued on commit: never, in this test
        accepted = request_report(first_manager, 1)
        refused = request_report(second_manager, 2)
    assert accepted.status_code == 202
    assert refused.status_code == 429
    assert Report.objects.filter(organization=organization).count() == 1


def test_every_counted_answer_carries_the_ratelimit_headers_and_429_retry_after():
    organization = OrganizationFactory()
    client = client_for(member(organization, Role.VIEWER))
    with _rates(api="3/minute"):
        ok = client.get("/api/v1/projects/")
        missing = client.get("/api/v1/projects/999999999/")
        invalid = client.get("/api/v1/costs/", {"search": "a" * 1000})
        throttled = client.get("/api/v1/projects/")
    answers = [ok, missing, invalid, throttled]
    assert [a.status_code for a in answers] == [200, 404, 400, 429]
    assert [a.headers["RateLimit-Limit"] for a in answers] == ["3"] * 4
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert all(0 < int(a.headers["RateLimit-Reset"]) <= 60 for a in answers)
    assert int(throttled.headers["Retry-After"]) == int(throttled.headers["RateLimit-Reset"])


def test_the_throttle_fails_open_without_headers_while_the_cache_is_down():
    client = client_for(member(OrganizationFactory(), Role.VIEWER))
    down = mock.Mock(get_many=mock.Mock(side_effect=RedisConnectionError("down")))
    with _rates(api="1/minute"), mock.patch.object(RateThrottle, "cache", down):
        answers = [client.get("/api/v1/projects/") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert not any("RateLimit-Limit" in a.headers for a in answers)


def test_every_statement_of_a_10000_entry_bulk_ingest_stays_far_under_the_ceiling():
    organization = OrganizationFactory()
    project = ProjectFactory(organization=organization)
    client = client_for(member(organization))
    body = json.dumps(_entries(project, 10_000, "big"))
    fifth = settings.DATABASE_WEB_STATEMENT_TIMEOUT_MS // 5
    with connection.cursor() as cursor:  # the test's transaction: a ceiling of a fifth of the default
        cursor.execute(f"SET LOCAL statement_timeout = {fifth}")
    response = client.post("/api/v1/costs/bulk/", body, content_type="application/json")
    assert response.status_code == 201 and response.json()["created"] == 10_000


# --- Imports: the upload limit, and malformed files refused with a clear message ----------------------


def test_an_import_upload_over_its_limit_is_a_413_before_anything_is_stored(settings, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from ops.imports.models import ImportJob

    settings.MEDIA_ROOT, settings.IMPORT_MAX_UPLOAD_BYTES = tmp_path, 4096
    org = OrganizationFactory()
    manager = member(org, Role.MANAGER)
    web, api = Client(), client_for(manager)
    web.force_login(manager)
    big = b"date,category,amount\n" + b"2026-03-01,storage,1.00\n" * 400  # 10 KB
    for client, url in ((web, "/imports/"), (api, "/api/v1/imports/")):
        response = client.post(url, {"format": "csv", "file": SimpleUploadedFile("big.csv", big, "text/csv")})
        assert response.status_code == 413, url
        assert response.json()["code"] == "request_too_large" and "4096" in response.json()["detail"]
    assert not ImportJob.objects.exists() and not list(tmp_path.rglob("*.*"))
    small = SimpleUploadedFile("small.csv", big[:1000], "text/csv")
    response = api.post("/api/v1/imports/", {"format": "csv", "file": small}, format="multipart")
    assert response.status_code == 202 and ImportJob.objects.count() == 1  # under the limit: stored


FOCUS_HEADER = (
    b"BilledCost,BillingCurrency,BillingPeriodStart,BillingPeriodEnd,ChargeCategory,ChargePeriodStart,ChargePeriodEnd"
)


@pytest.mark.parametrize(
    ("format", "content", "failure"),
    [
        ("focus", b"BilledCost,BillingCurrency\n1,USD\n", "Not a FOCUS file: the header lacks BillingPeriodStart"),
        ("focus", b"", "The file is empty."),
        ("focus", FOCUS_HEADER + "\n1,USD,\u00e9t\u00e9\n".encode("latin-1"), "The file is not UTF-8 CSV"),
        (
            "codecarbon",
            b"timestamp,duration\n2026-03-01T00:00:00,1\n",
            "Not a CodeCarbon emissions.csv: no experiment_id",
        ),
        ("csv", b"\xff\xfe\x00\x01", "The file is not a UTF-8 CSV file."),
        ("csv", b"date,amount\n", "Say which project the costs are for"),
    ],
)
def test_a_malformed_file_fails_its_job_with_a_clear_message_and_writes_nothing(format, content, failure):
    import io

    from ops.imports.jobs import import_file_run
    from ops.imports.models import BilledCost, ImportStatus
    from ops.models import EnergyRun

    org = OrganizationFactory()
    job = import_file_run(
        organization=org,
        format=format,
        binary=io.BytesIO(content),
        filename="bad.csv",
        by=member(org, Role.MANAGER),
    )
    assert job.status == ImportStatus.FAILED and job.failure.startswith(failure), job.failure
    assert not BilledCost.objects.exists() and not EnergyRun.objects.exists() and not CostEntry.objects.exists()
