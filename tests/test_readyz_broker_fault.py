"""/readyz follows the broker: 503 naming it while its Redis is down, 200 again once it is back.

The Redis here is the test's own, on a free port; the machine's shared Redis is never touched.
"""

import shutil
import socket
import subprocess
import time

import pytest
import redis


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_redis(port: int, directory) -> subprocess.Popen:
    process = subprocess.Popen(
        [shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_connect_timeout=0.5)
    deadline = time.monotonic() + 15
    while True:
        try:
            client.ping()
            return process
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise
            time.sleep(0.1)
        finally:
            client.close()


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.mark.django_db
def test_readyz_turns_503_naming_the_broker_while_redis_is_down_and_recovers(client, settings, tmp_path):
    port = _free_port()
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/0"
    broker = _start_redis(port, tmp_path)
    try:
        assert client.get("/readyz").status_code == 200

        _stop(broker)
        down = client.get("/readyz")

        assert down.status_code == 503
        assert down["Content-Type"] == "application/json"
        assert down.json() == {
            "status": "unavailable",
            "checks": {"database": "ok", "migrations": "ok", "broker": "down"},
            "down": ["broker"],
        }

        broker = _start_redis(port, tmp_path)
        back = client.get("/readyz")

        assert back.status_code == 200
        assert back.json()["down"] == []
    finally:
        _stop(broker)
