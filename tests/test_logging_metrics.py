"""JSON logs per request and per task, request ids carried into tasks, and the guarded Prometheus endpoint."""

import io
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from conftest import redis_url
from ops.models import ReportState, RiskStatus
from ops.tests.factories import ReportFactory, RiskFactory
from projects.tests.factories import UserFactory
from tracker.celery import app, ping
from tracker.logging import JsonFormatter, RequestIdFilter
from tracker.middleware import RequestLogMiddleware

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "scrape-" + "x" * 32


@pytest.fixture
def json_request_log():
    """Capture tracker.request through the JSON formatter that LOG_FORMAT=json installs."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("tracker.request")
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)


@pytest.mark.django_db
def test_a_request_logs_one_json_line_with_method_path_status_duration_user_and_request_id(client, json_request_log):
    user = UserFactory()
    client.force_login(user)

    response = client.get("/admin/", HTTP_X_REQUEST_ID="req-123.abc")

    lines = json_request_log.getvalue().splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert {key: line[key] for key in ("method", "path", "status", "user_id", "request_id", "logger")} == {
        "method": "GET",
        "path": "/admin/",
        "status": response.status_code,
        "user_id": user.pk,
        "request_id": "req-123.abc",
        "logger": "tracker.request",
    }
    assert isinstance(line["duration_ms"], float)
    assert response["X-Request-ID"] == "req-123.abc"


@pytest.mark.django_db
def test_a_request_without_a_usable_request_id_gets_a_new_one(client, json_request_log):
    first = client.get("/admin/login/", HTTP_X_REQUEST_ID="bad id\nwith newline")
    second = client.get("/admin/login/")

    ids = [first["X-Request-ID"], second["X-Request-ID"]]
    assert all(len(request_id) == 32 for request_id in ids)
    assert ids[0] != ids[1]
    assert [json.loads(line)["request_id"] for line in json_request_log.getvalue().splitlines()] == ids
    assert [json.loads(line)["user_id"] for line in json_request_log.getvalue().splitlines()] == [None, None]


def test_log_format_json_writes_request_lines_as_json_on_stderr():
    env = {**os.environ, "LOG_FORMAT": "json", "DJANGO_SETTINGS_MODULE": "tracker.settings"}
    script = "import django; django.setup(); from django.test import Client; Client().get('/no-such-page/')"

    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    requests = [record for record in records if record["logger"] == "tracker.request"]
    assert len(requests) == 1
    assert requests[0]["path"] == "/no-such-page/"
    assert requests[0]["status"] == 404


@pytest.mark.django_db
def test_metrics_are_not_served_until_a_token_or_network_is_configured(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = []

    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404


@pytest.mark.django_db
def test_metrics_refuse_a_missing_or_wrong_token(client, settings):
    settings.METRICS_TOKEN = TOKEN

    missing = client.get("/metrics")
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer " + "y" * 39)

    assert missing.status_code == 401
    assert missing["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert wrong.status_code == 401
    assert b"tracker_" not in missing.content + wrong.content


@pytest.mark.django_db
def test_metrics_allowed_networks_ignore_forwarded_for(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8", "192.168.1.5"]

    assert client.get("/metrics", REMOTE_ADDR="10.20.30.40").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.168.1.5").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="172.16.0.1", HTTP_X_FORWARDED_FOR="10.0.0.1").status_code == 403


@pytest.mark.django_db
def test_metrics_with_token_and_networks_require_both(client, settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8"]

    assert client.get("/metrics", REMOTE_ADDR="10.0.0.9").status_code == 401
    assert client.get("/metrics", REMOTE_ADDR="8.8.8.8", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.9", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


@pytest.mark.django_db
def test_metrics_serve_request_histograms_task_counts_reports_and_open_risks(
    client, settings, django_assert_max_num_queries
):
    settings.METRICS_TOKEN = TOKEN
    RiskFactory(likelihood=5, impact=5)
    RiskFactory(likelihood=5, impact=4, status=RiskStatus.MITIGATING)
    RiskFactory(likelihood=5, impact=5, status=RiskStatus.CLOSED)
    RiskFactory(likelihood=2, impact=3)
    ReportFactory(state=ReportState.READY)
    client.get("/admin/login/")
    ping.apply()

    with django_assert_max_num_queries(2):
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    text = response.content.decode()
    assert 'tracker_http_request_duration_seconds_bucket{le="0.005",method="GET",route="admin/login/"}' in text
    assert 'tracker_http_requests_total{method="GET",route="admin/login/",status="200"}' in text
    assert 'tracker_celery_tasks_total{outcome="success",task="tracker.ping"}' in text
    assert 'tracker_celery_task_duration_seconds_count{outcome="success",task="tracker.ping"}' in text
    assert 'tracker_open_risks{severity="critical"} 2.0' in text
    assert 'tracker_open_risks{severity="medium"} 1.0' in text
    assert 'tracker_open_risks{severity="high"} 0.0' in text
    assert 'tracker_reports{kind="status",state="ready"} 1.0' in text
    assert 'tracker_reports{kind="risk",state="failed"} 0.0' in text
    # Probes and scrapes stay out of the request metrics: they would drown the application's latency.
    assert 'route="/metrics"' not in text
    assert "healthz" not in text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(predicate, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _scrape(port: int, token: str | None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(f"http://127.0.0.1:{port}/", headers=headers), timeout=5
        ) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


@pytest.mark.worker
def test_worker_logs_each_task_as_json_with_the_enqueuing_request_id_and_serves_its_metrics(tmp_path):
    """A real prefork worker: the request id travels in the message; the child processes' metrics are summed."""
    queue = f"test-logging-{secrets.token_hex(4)}"
    metrics_port = _free_port()
    log_path = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tracker.settings",
        "LOG_FORMAT": "json",
        "CELERY_BROKER_URL": redis_url(),
        "WORKER_METRICS_PORT": str(metrics_port),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
        "METRICS_TOKEN": TOKEN,
    }
    command = [sys.executable, "-m", "celery", "--app", "tracker", "worker", "--queues", queue, "--concurrency", "2"]
    with log_path.open("w") as log:
        worker = subprocess.Popen(
            [*command, "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for(lambda: " ready." in log_path.read_text(), timeout=60, what="the worker to start")

        def publish_in_request(request_id: str, **options) -> str:
            sent = {}

            def view(request):
                with app.connection_for_write(redis_url()) as connection:
                    sent["id"] = app.send_task("tracker.ping", queue=queue, connection=connection, **options).id
                return HttpResponse("queued")

            RequestLogMiddleware(view)(RequestFactory().post("/api/v1/reports/", HTTP_X_REQUEST_ID=request_id))
            return sent["id"]

        succeeded = publish_in_request("req-success-1")
        failed = publish_in_request("req-failure-2", args=[1])  # ping takes no argument: a failing task
        with app.connection_for_write(redis_url()) as connection:
            outside = app.send_task("tracker.ping", queue=queue, connection=connection).id

        def task_lines():
            records = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
            lines = {record["task_id"]: record for record in records if record["logger"] == "tracker.task"}
            return lines if {succeeded, failed, outside} <= lines.keys() else None

        lines = _wait_for(task_lines, timeout=60, what="the three task log lines")

        assert {key: lines[succeeded][key] for key in ("task_name", "outcome", "request_id", "level")} == {
            "task_name": "tracker.ping",
            "outcome": "success",
            "request_id": "req-success-1",
            "level": "INFO",
        }
        assert isinstance(lines[succeeded]["duration_ms"], float)
        assert (lines[failed]["outcome"], lines[failed]["request_id"]) == ("failure", "req-failure-2")
        assert lines[outside]["request_id"] is None

        assert _scrape(metrics_port, None)[0] == 401
        status, text = _scrape(metrics_port, TOKEN)
        assert status == 200
        assert 'tracker_celery_tasks_total{outcome="success",task="tracker.ping"} 2.0' in text
        assert 'tracker_celery_tasks_total{outcome="failure",task="tracker.ping"} 1.0' in text
        assert 'tracker_celery_task_duration_seconds_count{outcome="success",task="tracker.ping"} 2.0' in text
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
