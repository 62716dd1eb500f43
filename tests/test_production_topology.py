"""The docker-compose topology, proven without Docker: its structure, then its commands run as local processes.

Each service's `command:` from docker-compose.yml runs here with the production settings, against the
machine's PostgreSQL (a database of its own, created and dropped by the test) and Redis: migrate, gunicorn,
a Celery worker and beat. A manager requests a report through the API and the worker builds it.
"""

import datetime as dt
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import pytest
import redis
import yaml

from conftest import redis_url

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
APP_SERVICES = ("migrate", "web", "worker", "beat")
HOST = "tracker.example.com"
METRICS_TOKEN = secrets.token_urlsafe(32)


def test_compose_declares_every_service_with_health_checks_and_restart_policies():
    assert set(SERVICES) == {"db", "redis", "migrate", "web", "worker", "beat"}
    assert SERVICES["db"]["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(SERVICES["db"]["healthcheck"]["test"])
    assert SERVICES["redis"]["image"].startswith("redis:")
    assert "redis-cli ping" in " ".join(SERVICES["redis"]["healthcheck"]["test"])
    assert "/healthz" in " ".join(SERVICES["web"]["healthcheck"]["test"])
    assert {name: service["restart"] for name, service in SERVICES.items()} == {
        "db": "unless-stopped",
        "redis": "unless-stopped",
        "migrate": "no",
        "web": "unless-stopped",
        "worker": "unless-stopped",
        "beat": "unless-stopped",
    }


def test_compose_keeps_data_in_named_volumes():
    volumes = set(COMPOSE["volumes"])
    for service, mount in (("db", "/var/lib/postgresql/data"), ("redis", "/data"), ("beat", "/app/var")):
        named = [entry.split(":")[0] for entry in SERVICES[service]["volumes"] if entry.endswith(":" + mount)]
        assert named and named[0] in volumes, f"{service} keeps {mount} in a named volume"


def test_compose_starts_the_app_after_healthy_services_and_a_successful_migration():
    assert SERVICES["migrate"]["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert SERVICES["migrate"]["depends_on"] == {"db": {"condition": "service_healthy", "required": False}}
    for name in ("web", "worker", "beat"):
        depends_on = SERVICES[name]["depends_on"]
        assert depends_on["migrate"] == {"condition": "service_completed_successfully"}
        assert depends_on["db"]["condition"] == depends_on["redis"]["condition"] == "service_healthy"


def test_compose_configures_the_app_services_from_the_env_file_in_production_mode():
    for name in APP_SERVICES:
        service = SERVICES[name]
        assert service["env_file"] == ".env"
        assert service["environment"]["DJANGO_DEBUG"] == "false"
        assert service["build"] == "."
    # The bundled database's password never reaches the app through env_file alone: only the URL does.
    assert "env_file" not in SERVICES["db"]


def test_compose_runs_exactly_one_beat_while_web_and_worker_scale():
    beat = SERVICES["beat"]
    assert "container_name" in beat, "a fixed container name makes `--scale beat=2` fail"
    assert beat.get("deploy", {}).get("replicas", 1) == 1
    for name in ("web", "worker"):
        assert "container_name" not in SERVICES[name]
    # One container per host port would stop `--scale web=N`: the web service publishes a range.
    published = _interpolate(SERVICES["web"]["ports"][0], {})
    assert re.fullmatch(r"127\.0\.0\.1:\d+-\d+:8000", published), published


def test_env_example_documents_every_variable_the_compose_file_and_gunicorn_read():
    documented = set(re.findall(r"^#?([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), flags=re.MULTILINE))
    compose = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / "docker-compose.yml").read_text()))
    gunicorn = set(re.findall(r"os\.environ\.get\(\"([A-Z0-9_]+)\"", (ROOT / "gunicorn.conf.py").read_text()))
    compose -= {"COMPOSE_PROJECT_NAME"}  # docker compose's own

    assert compose - documented == set()
    assert gunicorn - documented == set()


def test_dockerfile_builds_a_slim_non_root_image_with_static_files_collected():
    dockerfile = (ROOT / "Dockerfile").read_text()

    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, flags=re.MULTILINE)
    assert "pip install -r requirements.txt" in dockerfile
    assert "manage.py collectstatic --noinput" in dockerfile
    users = re.findall(r"^USER (\S+)$", dockerfile, flags=re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    cmd = re.search(r"^CMD (.+)$", dockerfile, flags=re.MULTILINE).group(1)
    assert json.loads(cmd) == SERVICES["web"]["command"]
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert {".env", ".git", ".venv", "db.sqlite3"} <= set(ignored)


def _resolve(value: str, env: dict[str, str]) -> str:
    """Resolve ${NAME}, ${NAME:?message} (refused when unset) and then ${NAME:-default}, as compose does."""

    def required(match: re.Match) -> str:
        if not env.get(match.group(1)) and match.group(2) is not None:
            raise KeyError(f"{match.group(1)}: {match.group(2)}")
        return env.get(match.group(1), "")

    return _interpolate(re.sub(r"\$\{(\w+)(?::\?([^}]*))?\}", required, str(value)), env)


def test_compose_redis_requires_the_password_from_the_environment_and_every_url_carries_it(tmp_path):
    service = SERVICES["redis"]
    command = service["command"]
    assert command[command.index("--requirepass") + 1].startswith("${REDIS_PASSWORD:?")
    assert service["environment"]["REDISCLI_AUTH"].startswith("${REDIS_PASSWORD:?")
    with pytest.raises(KeyError, match="REDIS_PASSWORD"):
        _resolve(command[-1], {})
    app_env = SERVICES["web"]["environment"]
    for name in ("CELERY_BROKER_URL", "CACHE_URL"):
        assert ":${REDIS_PASSWORD}@redis:6379/" in app_env[name], name

    # The bundled Redis's command, run here: without the password nothing answers, with it the
    # health check passes and the app's default broker URL connects.
    password, port = secrets.token_hex(16), _free_port()
    env = {**os.environ, "REDIS_PASSWORD": password}
    server = subprocess.Popen(
        [_resolve(part, env) for part in command] + ["--port", str(port), "--dir", str(tmp_path), "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    try:
        cli = ["redis-cli", "-p", str(port), "ping"]
        _wait_for(lambda: b"NOAUTH" in subprocess.run(cli, capture_output=True).stdout, timeout=10, what="redis")
        check = service["healthcheck"]["test"][1].replace("redis-cli", f"redis-cli -p {port}")
        auth = {"REDISCLI_AUTH": _resolve(service["environment"]["REDISCLI_AUTH"], env)}
        assert subprocess.run(["sh", "-c", check], env={"PATH": os.environ["PATH"]}).returncode != 0
        assert subprocess.run(["sh", "-c", check], env={"PATH": os.environ["PATH"], **auth}).returncode == 0
        broker = _resolve(app_env["CELERY_BROKER_URL"], env).replace("@redis:6379", f"@127.0.0.1:{port}")
        assert broker == f"redis://:{password}@127.0.0.1:{port}/0"
        assert redis.Redis.from_url(broker).ping() is True
        with pytest.raises(redis.AuthenticationError):
            redis.Redis.from_url(f"redis://127.0.0.1:{port}/0").ping()
    finally:
        server.terminate()
        server.wait(timeout=10)


# --- The topology as local processes ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(predicate, *, timeout: float, what: str, processes=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            assert process.poll() is None, (
                f"{process.args[0]} exited with {process.returncode} while waiting for {what}"
            )
        result = predicate()
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _http(url: str, *, method: str = "GET", body: dict | None = None, headers: dict | None = None):
    """Return (status, headers, body bytes) of a request, redirects not followed; (None, None, b"") if unreachable."""
    request = urllib.request.Request(
        url,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with _OPENER.open(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()
    except OSError:
        return None, None, b""


def _json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Resolve compose's ${NAME:-default} the way `docker compose` does."""
    return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m.group(1)) or m.group(2), str(value))


@pytest.fixture
def topology_database():
    """A fresh database of the test's own, dropped afterwards."""
    url = urlparse(os.environ["DATABASE_URL"])
    name = f"{url.path.lstrip('/')}_topology"
    admin = url._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    yield url._replace(path=f"/{name}").geturl()
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Topology:
    """The compose services as local processes, each with the environment its container would get."""

    def __init__(self, tmp_path: Path, database_url: str):
        self.tmp = tmp_path
        self.web_port = _free_port()
        self.worker_metrics_port = _free_port()
        self.processes: dict[str, subprocess.Popen] = {}
        app_vars = ("DJANGO_", "DATABASE_URL", "CELERY_", "CACHE_URL", "LOG_", "METRICS_", "PROMETHEUS_", "WORKER_")
        local = {key: value for key, value in os.environ.items() if not key.startswith(app_vars)}
        # What .env would hold for this host: its database, its Redis, its secrets.
        self.env_file = {
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": HOST,
            "DJANGO_CSRF_TRUSTED_ORIGINS": f"https://{HOST}",
            "DJANGO_STATIC_ROOT": str(tmp_path / "staticfiles"),
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": redis_url(),
            "CACHE_URL": redis_url(),
            "METRICS_TOKEN": METRICS_TOKEN,
            "PORT": str(self.web_port),
            "WEB_CONCURRENCY": "2",
            "CELERY_WORKER_CONCURRENCY": "2",
            "WORKER_METRICS_PORT": str(self.worker_metrics_port),
        }
        self.base = {**local, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{local.get('PATH', '')}"}

    def env(self, service: str) -> dict[str, str]:
        """Return the service's environment: the env file, then the compose file's `environment:` over it."""
        env = {**self.base, **self.env_file}
        for key, value in SERVICES[service].get("environment", {}).items():
            env[key] = _interpolate(value, self.env_file) if key not in self.env_file else self.env_file[key]
        # Container paths, mapped to this host (a tmpfs and a volume in compose).
        env["PROMETHEUS_MULTIPROC_DIR"] = str(self.tmp / f"prometheus-{service}")
        if "CELERY_BEAT_SCHEDULE_FILENAME" in env:
            env["CELERY_BEAT_SCHEDULE_FILENAME"] = str(self.tmp / "celerybeat-schedule")
        return env

    def run(self, service: str, command: list[str]) -> subprocess.CompletedProcess:
        done = subprocess.run(command, cwd=ROOT, env=self.env(service), capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
        return done

    def start(self, service: str) -> subprocess.Popen:
        log = (self.tmp / f"{service}.log").open("w")
        self.processes[service] = subprocess.Popen(
            SERVICES[service]["command"], cwd=ROOT, env=self.env(service), stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        return self.processes[service]

    def log(self, service: str) -> Path:
        return self.tmp / f"{service}.log"

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.web_port}{path}"

    def api(self, path: str, token: str, **options):
        """Call the API as the TLS proxy forwards it: the public host name, the original scheme."""
        headers = {"Host": HOST, "X-Forwarded-Proto": "https", "Authorization": f"Bearer {token}"}
        status, _, body = _http(self.url(path), headers={**headers, **options.pop("headers", {})}, **options)
        return status, json.loads(body) if body else None


@pytest.mark.worker
def test_compose_commands_serve_the_app_and_the_worker_builds_a_requested_report(tmp_path, topology_database):
    topology = Topology(tmp_path, topology_database)
    try:
        # The image's build step: hashed static files (the Dockerfile's collectstatic).
        topology.run("web", ["python", "manage.py", "collectstatic", "--noinput"])
        web = topology.start("web")

        # Before the migrate service ran, the web container is alive but not ready.
        _wait_for(lambda: _http(topology.url("/healthz"))[0] == 200, timeout=60, what="/healthz", processes=[web])
        status, _, body = _http(topology.url("/readyz"))
        assert status == 503
        assert json.loads(body)["down"] == ["migrations"]

        topology.run("migrate", SERVICES["migrate"]["command"])
        _wait_for(lambda: _http(topology.url("/readyz"))[0] == 200, timeout=60, what="/readyz", processes=[web])
        worker = topology.start("worker")
        beat = topology.start("beat")
        _wait_for(
            lambda: " ready." in topology.log("worker").read_text(), timeout=60, what="the worker", processes=[worker]
        )

        # A manager and an API token, as an operator would create them.
        topology.run(
            "web",
            [
                "python",
                "manage.py",
                "shell",
                "-c",
                "from django.contrib.auth import get_user_model; from projects.services import organization_create; "
                "user = get_user_model().objects.create_user('ops-manager', 'ops@example.com', 'a-long-passphrase'); "
                "organization_create(name='Topology Corp', owner=user)",
            ],
        )
        token = topology.run("web", ["python", "manage.py", "create_api_token", "ops-manager", "--name", "ci"])
        raw_token = token.stdout.strip().splitlines()[-1]

        # Plain HTTP from outside is sent to HTTPS; through the proxy (X-Forwarded-Proto) it is served.
        status, headers, _ = _http(topology.url("/api/v1/reports/"), headers={"Host": HOST})
        assert (status, headers["Location"]) == (301, f"https://{HOST}/api/v1/reports/")

        period_start = dt.date(2026, 3, 2)
        status, report = topology.api(
            "/api/v1/reports/",
            raw_token,
            method="POST",
            body={
                "kind": "status",
                "period_start": str(period_start),
                "period_end": str(period_start + dt.timedelta(6)),
            },
            headers={"X-Request-ID": "topology-report-1"},
        )
        assert status == 202, report

        def built():
            status, body = topology.api(f"/api/v1/reports/{report['id']}/", raw_token)
            assert status == 200, body
            assert body["state"] != "failed", body
            return body if body["state"] == "ready" else None

        ready = _wait_for(built, timeout=120, what="the report to be built", processes=[web, worker, beat])
        assert ready["generated_at"]
        assert ready["data"]

        # One JSON line per request on the web side, per task on the worker side, joined by the request id.
        requests = [line for line in _json_lines(topology.log("web")) if line.get("logger") == "tracker.request"]
        posted = [line for line in requests if line["request_id"] == "topology-report-1"]
        assert [(line["method"], line["path"], line["status"]) for line in posted] == [
            ("POST", "/api/v1/reports/", 202)
        ]
        assert posted[0]["user_id"] is not None
        tasks = [line for line in _json_lines(topology.log("worker")) if line.get("logger") == "tracker.task"]
        built_line = [line for line in tasks if line["task_name"] == "ops.report_build"]
        assert [(line["outcome"], line["request_id"]) for line in built_line] == [("success", "topology-report-1")]

        # Metrics: the web container's (both gunicorn workers summed) and the worker's own port.
        status, _, body = _http(topology.url("/metrics"), headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert status == 200
        assert 'tracker_reports{kind="status",state="ready"} 1.0' in body.decode()
        posts = [
            line for line in body.decode().splitlines() if line.startswith('tracker_http_requests_total{method="POST')
        ]
        assert posts == ['tracker_http_requests_total{method="POST",route="api/v1/reports/$",status="202"} 1.0']
        assert _http(topology.url("/metrics"))[0] == 401
        worker_metrics = f"http://127.0.0.1:{topology.worker_metrics_port}/metrics"
        status, _, body = _http(worker_metrics, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert status == 200
        assert 'tracker_celery_tasks_total{outcome="success",task="ops.report_build"} 1.0' in body.decode()

        # Static files: hashed names from the manifest, served by whitenoise with a far-future cache.
        manifest = json.loads((tmp_path / "staticfiles" / "staticfiles.json").read_text())["paths"]
        proxied = {"Host": HOST, "X-Forwarded-Proto": "https"}
        status, headers, _ = _http(topology.url(f"/static/{manifest['admin/css/base.css']}"), headers=proxied)
        assert status == 200
        assert "max-age=315360000" in headers["Cache-Control"]

        # Beat runs (one scheduler) and stays up with the rest.
        assert all(process.poll() is None for process in topology.processes.values())
        assert any(line.get("logger", "").startswith("celery.beat") for line in _json_lines(topology.log("beat")))
    finally:
        topology.stop()
