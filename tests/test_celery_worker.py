"""A real `celery worker` process consumes tasks from the real Redis broker."""

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from celery import Celery
from django.conf import settings

from tracker.celery import app, ping

ROOT = Path(__file__).resolve().parent.parent
# A guard against a hung worker, not a measurement: a healthy worker answers in well under a second.
DEADLINE_SECONDS = 60


def redis_url() -> str:
    return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass
class Worker:
    process: subprocess.Popen
    log: Path
    queue: str
    hostname: str

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, pattern: str) -> re.Match:
        """Return the first log match of `pattern`; fail with the log if the worker dies or hangs."""
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline:
            if match := re.search(pattern, self.output()):
                return match
            if self.process.poll() is not None:
                pytest.fail(f"The worker exited with {self.process.returncode}:\n{self.output()}")
            time.sleep(0.1)
        pytest.fail(f"No log line matching {pattern!r} within {DEADLINE_SECONDS}s:\n{self.output()}")


def _stop(process: subprocess.Popen) -> None:
    """Warm-shut the worker down; kill its process group (pool children included) if it hangs."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
            return
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def worker(tmp_path_factory) -> Iterator[Worker]:
    """Start `celery -A tracker worker` on a queue of its own, so no other test run can take its messages."""
    queue = f"test-{uuid.uuid4().hex}"
    hostname = f"{queue}@localhost"
    log = tmp_path_factory.mktemp("celery") / "worker.log"
    env = {
        **os.environ,
        "CELERY_BROKER_URL": redis_url(),
        "DJANGO_SETTINGS_MODULE": "tracker.settings",
        "PYTHONUNBUFFERED": "1",
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tracker",
        "worker",
        "--queues",
        queue,
        "--hostname",
        hostname,
        "--concurrency",
        "1",
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield Worker(process=process, log=log, queue=queue, hostname=hostname)
    finally:
        _stop(process)
        client = redis.Redis.from_url(redis_url())
        client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
        client.close()


@pytest.fixture
def broker():
    with app.connection_for_write(redis_url()) as connection:
        yield connection


@pytest.mark.worker
def test_worker_consumes_the_ping_task_from_redis_and_answers_pong(worker, broker):
    sent = ping.apply_async(queue=worker.queue, connection=broker)

    line = worker.wait_for(rf"Task tracker\.ping\[{sent.id}\] succeeded in [0-9.]+s: (.*)")

    assert line.group(1).strip() == "'pong'"
    assert "transport:   redis://" in worker.output()


@pytest.mark.worker
def test_worker_refuses_a_pickled_message_and_keeps_consuming(worker, broker):
    pickled = ping.apply_async(queue=worker.queue, connection=broker, serializer="pickle")
    worker.wait_for(r"ContentDisallowed")
    after = ping.apply_async(queue=worker.queue, connection=broker)

    worker.wait_for(rf"Task tracker\.ping\[{after.id}\] succeeded in [0-9.]+s: 'pong'")

    assert f"tracker.ping[{pickled.id}] succeeded" not in worker.output()


@pytest.mark.worker
def test_running_worker_uses_the_apps_delivery_settings(worker):
    worker.wait_for(r"ready\.")
    # Remote control publishes through the app's default producer pool, so ask through an app on Redis.
    probe = Celery("probe", broker=redis_url(), set_as_current=False)
    try:
        replies = probe.control.inspect(destination=[worker.hostname], timeout=5).conf(with_defaults=True)
    finally:
        probe.close()

    conf = (replies or {}).get(worker.hostname)
    assert conf, f"The worker did not answer the inspection:\n{worker.output()}"
    assert conf["task_serializer"] == conf["result_serializer"] == "json"
    assert conf["accept_content"] == ["json"]
    assert conf["task_acks_late"] is True
    assert conf["task_reject_on_worker_lost"] is True
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["task_time_limit"] == settings.CELERY_TASK_TIME_LIMIT
    assert conf["task_soft_time_limit"] == settings.CELERY_TASK_SOFT_TIME_LIMIT
    assert conf["broker_url"].startswith("redis://")


def test_celery_app_is_json_only_acks_late_prefetch_one_and_time_limited():
    conf = app.conf

    assert (conf.task_serializer, conf.result_serializer, list(conf.accept_content)) == ("json", "json", ["json"])
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_time_limit == settings.CELERY_TASK_TIME_LIMIT
    assert conf.task_soft_time_limit == settings.CELERY_TASK_SOFT_TIME_LIMIT
    # The soft limit fires first, so a task can clean up before the hard kill.
    assert 0 < conf.task_soft_time_limit < conf.task_time_limit
