"""Probes: /healthz and /readyz answer JSON, reach the orchestrator whatever its Host header, name what is down."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import redis_url

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db
def test_healthz_answers_ok_without_touching_dependencies(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_reports_database_migrations_and_broker_ok(client, settings):
    settings.CELERY_BROKER_URL = redis_url()

    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "migrations": "ok", "broker": "ok"},
        "down": [],
    }


@pytest.mark.django_db
def test_probes_answer_a_host_outside_allowed_hosts(client, settings):
    """Orchestrators probe the container by its IP or service name, which ALLOWED_HOSTS does not list."""
    settings.ALLOWED_HOSTS = ["tracker.example.com"]

    assert client.get("/healthz", HTTP_HOST="10.1.2.3:8000").status_code == 200
    assert client.get("/readyz", HTTP_HOST="web:8000").status_code == 200
    assert client.get("/admin/login/", HTTP_HOST="10.1.2.3:8000").status_code == 400


@pytest.mark.django_db
def test_probes_are_not_redirected_to_https(client, settings):
    settings.SECURE_SSL_REDIRECT = True

    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    redirected = client.get("/admin/login/")
    assert redirected.status_code == 301
    assert redirected["Location"].startswith("https://")


def test_readyz_refuses_writes(client):
    assert client.post("/readyz").status_code != 200


def test_readyz_names_the_database_when_it_is_unreachable(tmp_path):
    """A closed port stands in for a database that went away: 503, database down, migrations unknown."""
    script = (
        "import django, json; django.setup(); from django.test import Client; "
        "r = Client().get('/readyz'); print(r.status_code); print(r.content.decode())"
    )
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://postgres@127.0.0.1:1/tracker_unreachable",
        "CELERY_BROKER_URL": redis_url(),
        "DJANGO_SETTINGS_MODULE": "tracker.settings",
    }
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    status, body = done.stdout.strip().splitlines()[-2:]

    assert status == "503"
    assert json.loads(body) == {
        "status": "unavailable",
        "checks": {"database": "down", "migrations": "unknown", "broker": "ok"},
        "down": ["database", "migrations"],
    }
    assert "readiness check database failed" in done.stderr
