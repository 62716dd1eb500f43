"""scripts/services.sh, which `make test` and `make bench` run first: a clear stop when it cannot provision."""

import os
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _make_services(*, database_url: str, redis_url: str) -> subprocess.CompletedProcess:
    """`make services` for these URLs with provisioning off, as a caller without root would see it."""
    return subprocess.run(
        ["make", "--no-print-directory", "services", f"TEST_DATABASE_URL={database_url}", f"REDIS_URL={redis_url}"],
        cwd=ROOT,
        env=os.environ | {"TRACKER_PROVISION": "0"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_make_services_stops_at_once_with_how_to_provide_them_when_provisioning_is_off():
    pg, redis = _closed_port(), _closed_port()
    started = time.monotonic()
    result = _make_services(
        database_url=f"postgres://tester@127.0.0.1:{pg}/tracker", redis_url=f"redis://127.0.0.1:{redis}/0"
    )
    elapsed = time.monotonic() - started

    assert result.returncode != 0
    message = result.stderr
    assert f"PostgreSQL at 127.0.0.1:{pg}" in message
    assert f"Redis at 127.0.0.1:{redis}" in message
    assert "TRACKER_PROVISION=0" in message
    assert "TEST_DATABASE_URL=" in message and "REDIS_URL=" in message
    assert "docker compose --profile bundled up -d db redis" in message
    # Closed local ports refuse at once: the stop must not wait out a connect or start timeout.
    assert elapsed < 10, f"took {elapsed:.1f} s"


def test_make_services_is_quiet_and_installs_nothing_when_both_answer():
    """The suite's own services answer (conftest checked them), so a second provisioning is a no-op."""
    result = _make_services(
        database_url=os.environ["DATABASE_URL"], redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
