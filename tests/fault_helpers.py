"""Real processes for the fault tests: a Redis of the test's own, Celery workers, gunicorn, and an HTTP client.

Each process runs in its own process group (session), so a kill or a stop reaches everything it
started, and only that. The machine's shared PostgreSQL and Redis are never stopped or reconfigured.
"""

import contextlib
import email
import email.policy
import http.cookiejar
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import kombu
import psycopg
import redis
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
# Variables the app reads: the parent's values (pytest's own) must never leak into a child process.
APP_VARIABLES = ("DJANGO_", "DATABASE_", "CELERY_", "CACHE_URL", "EMAIL_", "REPORT_", "LOG_", "METRICS_", "WORKER_")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(
    condition: Callable[[], Any], what: str, *, timeout: float = 60, processes: Iterable["Process"] = ()
) -> Any:
    """Poll until `condition()` is truthy and return it; fail if a watched process exits meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        for process in processes:
            assert process.alive(), f"{process.name} exited while waiting for {what}; log:\n{process.log_tail()}"
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out waiting for {what}")
        time.sleep(0.2)


def db_url(application_name: str = "") -> str:
    """Return the URL of the database the test runs on, optionally tagging its sessions with a name."""
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return f"{url}?application_name={application_name}" if application_name else url


def child_env(**variables: str) -> dict[str, str]:
    """Return an environment for an app process: this one's, minus the app's variables, plus `variables`."""
    base = {key: value for key, value in os.environ.items() if not key.startswith(APP_VARIABLES)}
    return base | {"DJANGO_SETTINGS_MODULE": "tracker.settings", "PYTHONUNBUFFERED": "1"} | variables


class Process:
    """A subprocess in its own process group, its output in a log file."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path):
        self.name, self.log = name, log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown, no acknowledgement, no cleanup."""
        if self.alive():
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 15) -> None:
        """Stop the process (SIGTERM: it stops its own children), then SIGKILL its group if anything lingers."""
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout)
        with_leftovers = self.alive() or _group_alive(self.pid)
        if with_leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


class RedisServer:
    """A redis-server of the test's own on a free port; stop and start again on the same port."""

    def __init__(self, directory: Path, *, appendonly: bool = False):
        self.directory, self.port, self.appendonly = directory, free_port(), appendonly
        self.process: Process | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> "RedisServer":
        # Debian's redis-server, the one `make test` installs (scripts/services.sh) and checks for.
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed: make test installs Debian's redis-server package"
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "yes" if self.appendonly else "no", "--dir", str(self.directory)]
        self.process = Process("redis-server", command, dict(os.environ), self.directory / "redis.log")
        try:
            wait_for(self.ping, "redis-server to answer", timeout=15, processes=[self.process])
        except AssertionError:
            self.stop()
            raise
        return self

    def ping(self) -> bool:
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


class Worker(Process):
    """A real `celery -A tracker worker` on the test database, with the given broker and settings."""

    def __init__(
        self,
        log: Path,
        *,
        broker: str,
        queue: str,
        pool: str = "prefork",
        concurrency: int = 1,
        env: dict[str, str] | None = None,
    ):
        variables = {"DATABASE_URL": db_url(), "CELERY_BROKER_URL": broker} | (env or {})
        command = [sys.executable, "-m", "celery", "-A", "tracker", "worker", "-P", pool, "-c", str(concurrency)]
        command += ["-Q", queue, "--without-mingle", "--without-gossip", "--without-heartbeat", "-l", "INFO"]
        self.ready_mark = log.read_text(errors="replace").count(" ready.") + 1 if log.exists() else 1
        super().__init__("celery worker", command, child_env(**variables), log)

    def wait_ready(self, timeout: float = 180) -> "Worker":
        wait_for(
            lambda: self.log.read_text(errors="replace").count(" ready.") >= self.ready_mark,
            "the worker to be ready",
            timeout=timeout,
            processes=[self],
        )
        return self

    def pool_children(self) -> list[int]:
        """Return the pids of the prefork pool's processes."""
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        return [int(pid) for pid in children]


def blocked_on_costs(lock_conn: psycopg.Connection) -> bool:
    """Whether some other session waits for the lock on the cost table (a worker's build held mid-way)."""
    row = lock_conn.execute(
        "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'ops_costentry'::regclass"
    ).fetchone()
    return row[0] > 0


def restore_unacked(broker: str, *, visibility_timeout: int) -> None:
    """Sweep the broker now as a live worker does now and then (kombu: every 100 s by default).

    Messages unacknowledged for longer than the visibility timeout (their worker died) go back to
    their queue.
    """
    with kombu.Connection(broker, transport_options={"visibility_timeout": visibility_timeout}) as broker_connection:
        broker_connection.default_channel.qos.restore_visible(num=1000)


class Gunicorn(Process):
    """The web container's command (`gunicorn --config gunicorn.conf.py tracker.wsgi`) on a free port."""

    def __init__(self, log: Path, *, workers: int, env: dict[str, str]):
        self.port = free_port()
        variables = {"PORT": str(self.port), "WEB_CONCURRENCY": str(workers), "GUNICORN_TIMEOUT": "30"} | env
        command = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "tracker.wsgi"]
        super().__init__("gunicorn", command, child_env(**variables), log)

    def wait_serving(self) -> "Gunicorn":
        wait_for(self.serving, "gunicorn to serve", timeout=180, processes=[self])
        return self

    def serving(self) -> bool:
        try:
            return self.client(timeout=5).get("/healthz").status == 200
        except OSError:  # not listening yet
            return False

    def client(self, timeout: float = 60) -> "Client":
        return Client(f"http://127.0.0.1:{self.port}", timeout=timeout)


class Response:
    def __init__(self, status: int, headers: Any, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Client:
    """A small HTTP client with a cookie jar: a browser signing in and posting forms, or an API caller."""

    def __init__(self, base: str, *, timeout: float = 60):
        self.base, self.timeout = base, timeout
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirect)
        self.headers: dict[str, str] = {}

    def request(self, method: str, path: str, *, data: bytes | None = None, headers: dict | None = None) -> Response:
        request = urllib.request.Request(
            self.base + path, method=method, data=data, headers=self.headers | (headers or {})
        )
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                return Response(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            return Response(error.code, error.headers, error.read())

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post_json(self, path: str, body: dict) -> Response:
        return self.request("POST", path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})

    def post_form(self, path: str, fields: dict[str, str], *, page: str) -> Response:
        """Submit a form as a browser does: the CSRF token from `page`, the cookie from the jar."""
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', self.get(page).text)
        assert token, f"no CSRF token on {page}"
        body = urllib.parse.urlencode({"csrfmiddlewaretoken": token.group(1), **fields}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Referer": self.base + page}
        return self.request("POST", path, data=body, headers=headers)

    def sign_in(self, username: str, password: str) -> Response:
        return self.post_form("/accounts/login/", {"username": username, "password": password}, page="/accounts/login/")


def sent_mail(mail_dir: Path) -> list[EmailMessage]:
    """Return every message the file-based e-mail backend wrote (it separates messages by a line of dashes)."""
    return [
        email.message_from_string(text.strip("\n"), policy=email.policy.default)
        for path in sorted(mail_dir.glob("*.log"))
        for text in path.read_text().split("-" * 79)
        if text.strip()
    ]


def digest_recipients(mail_dir: Path) -> list[str]:
    """Return the recipient of every message sent, one entry per message."""
    return sorted(str(message["To"]) for message in sent_mail(mail_dir))


def digest_subjects(mail_dir: Path) -> list[str]:
    """Return the subject of every message sent."""
    return sorted(str(message["Subject"]) for message in sent_mail(mail_dir))
