"""Probes: /healthz (the process answers) and /readyz (database, migrations and broker are usable)."""

import logging
from pathlib import Path

import redis
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from kombu import Connection

logger = logging.getLogger(__name__)

# Seconds a readiness check may wait on a dependency: probes run every few seconds.
TIMEOUT = 2.0

# Code never gains migrations while the process runs, so once applied they stay applied.
_migrations_applied = False


def _database() -> None:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")


def _migrations() -> None:
    global _migrations_applied
    if _migrations_applied:
        return
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        raise RuntimeError(f"{len(pending)} migrations not applied, first {pending[0][0]}")
    _migrations_applied = True


def _broker() -> None:
    url: str = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        # The embedded transport is a folder: reachable when it exists and can be written.
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        if not folder.is_dir() or not (folder.stat().st_mode & 0o200):
            raise RuntimeError(f"queue folder {folder} missing or read-only")
    elif url.startswith(("redis://", "rediss://", "unix://")):
        client = redis.Redis.from_url(url, socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT)
        try:
            client.ping()
        finally:
            client.close()
    else:
        with Connection(url, connect_timeout=TIMEOUT) as connection:
            connection.ensure_connection(max_retries=1)


CHECKS = {"database": _database, "migrations": _migrations, "broker": _broker}


def healthz(request: HttpRequest) -> JsonResponse:
    """Answer 200 while the process serves requests: a liveness probe touches no dependency."""
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    """Answer 200 when every dependency works, else 503 naming what is down (details go to the log)."""
    checks: dict[str, str] = {}
    for name, check in CHECKS.items():
        if name == "migrations" and checks["database"] != "ok":
            checks[name] = "unknown"
            continue
        try:
            check()
        except Exception as error:  # any failure means "not ready"
            logger.warning("readiness check %s failed: %s", name, error)
            checks[name] = "down"
        else:
            checks[name] = "ok"
    down = [name for name, state in checks.items() if state != "ok"]
    body = {"status": "unavailable" if down else "ok", "checks": checks, "down": down}
    return JsonResponse(body, status=503 if down else 200)
