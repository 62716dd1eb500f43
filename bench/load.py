"""Load test: 32 concurrent clients for 60 s against gunicorn, mixed reads and writes, with no errors allowed.

`run()` builds a production-like server on its own database (DATABASE_URL + "_load", dropped and
recreated): migrations, the demo portfolio plus 200 synthetic projects (`seed_demo`, then
`bench._synthetic.synthetic_seed`),
static files collected into a temporary STATIC_ROOT, one API token per client for demo-contributor,
then gunicorn from gunicorn.conf.py (DJANGO_DEBUG=false, workers as configured, persistent database
connections, throttling counters in Redis) on a free port of 127.0.0.1. Locust (bench/_locustfile.py)
then runs headless: each client signs in through the web form once; when all have, the statistics are
reset and a window of 60 s starts, in which each client loops with no think time over

- the dashboard, the project list and a project page (web UI, signed-in session; weights 3, 3, 3);
- a status update (`POST /api/v1/status-updates/`, token; weight 2);
- a bulk cost ingest of 50–100 new entries (`POST /api/v1/costs/bulk/`, token; weight 1).

It prints requests, failures, requests/s and p50/p95/p99 latency per endpoint and in total (and the
sign-in phase apart), writes bench-results/load.json, and exits non-zero (FAIL) on any failed request,
client exception or server error logged (ERROR or 5xx). gunicorn is always stopped. See docs/bench.md.

Run: `python -m bench load` (or `python -m bench.load --seconds 10 --users 8` for a quick try;
LOAD_SECONDS and LOAD_USERS do the same; LOAD_REUSE_DB=1 keeps the existing load database instead
of recreating it, as seeding takes minutes — the seed is idempotent and every run's external ids new).
"""

import argparse
import io
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from bench._db import BASE_DIR, bench_db_url, create_database

SYNTHETIC_PROJECTS = 200
TOKEN_USER = "demo-contributor"
STARTUP_TIMEOUT = 300  # workers import Django in parallel; minutes on a saturated 2-core machine
STOP_TIMEOUT = 30
SIGNIN_ALLOWANCE = 600  # seconds for every client to sign in before the window


def _server_env(static_root: Path) -> dict[str, str]:
    """Production settings (README, Deploy), on the load database, for plain HTTP on 127.0.0.1."""
    redis = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    return os.environ | {
        "DATABASE_URL": bench_db_url("_load"),
        "DJANGO_SETTINGS_MODULE": "tracker.settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DATABASE_CONN_MAX_AGE": "60",
        "DJANGO_STATIC_ROOT": str(static_root),
        "CACHE_URL": redis,
        "CELERY_BROKER_URL": redis,
        "LOG_FORMAT": "json",
    }


def _prepare(*, clients: int, config_path: Path, credentials: Path) -> None:
    """In the child: migrate, collect static files, seed, create the tokens; write the locust config."""
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from bench._synthetic import synthetic_seed
    from projects.models import Membership, Project

    call_command("migrate", verbosity=0)
    # The production storage needs the manifest of hashed names to render pages; compressing every
    # file (gzip and brotli, minutes on a busy machine) only matters for serving them, which the load
    # never asks: collect with the plain manifest storage, whose manifest the production one reads.
    settings.STORAGES = settings.STORAGES | {
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"}
    }
    call_command("collectstatic", interactive=False, verbosity=0)
    # New demo passwords every time: a reused database (LOAD_REUSE_DB) has none to show otherwise.
    call_command(
        "seed_demo",
        reset_passwords=True,
        credentials_file=credentials,
        stdout=io.StringIO(),
    )
    synthetic_seed(count=SYNTHETIC_PROJECTS, progress=False)
    tokens = []
    for n in range(clients):
        out = io.StringIO()
        call_command("create_api_token", TOKEN_USER, name=f"load {n + 1:02d}", stdout=out)
        tokens.append(out.getvalue().strip().splitlines()[-1])
    organization = Membership.objects.get(user__username=TOKEN_USER).organization
    projects = list(
        Project.objects.filter(organization=organization, archived=False).order_by("pk").values_list("pk", flat=True)
    )
    logins = [
        line.split()[:2] for line in credentials.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    config_path.write_text(json.dumps({"logins": logins, "tokens": tokens, "projects": projects}))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_serving(server: subprocess.Popen, host: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"gunicorn exited ({server.returncode}) at start:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(f"{host}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    sys.exit(f"gunicorn did not answer /healthz within {STARTUP_TIMEOUT}s:\n{_tail(log)}")


def _stop(server: subprocess.Popen) -> None:
    """Stop gunicorn gracefully (TERM to the master stops its workers), or kill it."""
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def _server_errors(log: Path) -> list[str]:
    """Error lines of the server log: the app's JSON records at ERROR or with a 5xx, gunicorn's [ERROR] lines."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            failed = record.get("level") in ("ERROR", "CRITICAL") or record.get("status", 0) >= 500
        else:
            failed = "[ERROR]" in line or "Traceback" in line
        if failed:
            found.append(line)
    return found


def _report(summary: dict, *, clients: int, workers: str) -> None:
    seconds = summary["seconds"]
    print(
        f"\nLoad: {clients} clients for {seconds} s, gunicorn {workers} workers on {os.cpu_count()} CPUs, no think time"
    )
    print(f"{'endpoint':<22} {'requests':>9} {'failures':>9} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}")
    # Sign-in happened before the window: its rows are empty after the reset.
    rows = [(name, r) for name, r in summary["endpoints"].items() if r["requests"]] + [("total", summary["total"])]
    for name, r in rows:
        if name == "total":
            print("-" * 74)
        cells = [r[k] if r[k] is not None else "-" for k in ("p50_ms", "p95_ms", "p99_ms")]
        print(
            f"{name:<22} {r['requests']:>9} {r['failures']:>9} {r['requests'] / seconds:>7.1f} "
            f"{cells[0]:>7} {cells[1]:>7} {cells[2]:>7}"
        )
    signin = summary["signin"]
    post = signin["endpoints"].get("sign-in", {})
    print(
        f"Before the window: {clients} sign-ins in {signin['seconds']} s "
        f"(POST p50 {post.get('p50_ms')} ms, p95 {post.get('p95_ms')} ms: password hashing)."
    )


def _errors(summary: dict | None, server_errors: list[str]) -> list[str]:
    """Every reason to FAIL: failed requests, locust exceptions, server errors, no measured window."""
    if summary is None or not summary["measured"]:
        return ["the measured window never started (not every client finished signing in)"]
    errors = []
    for phase in (summary["signin"], summary):
        errors += [f"{f['endpoint']}: {f['error']} ×{f['occurrences']}" for f in phase["failures"]]
    errors += [f"locust exception: {e['error']} ×{e['occurrences']}\n{e['traceback']}" for e in summary["exceptions"]]
    errors += [f"server: {line[:300]}" for line in server_errors[:10]]
    if not summary["total"]["requests"]:
        errors.append("no request was made")
    return errors


def run(seconds: int | None = None, clients: int | None = None) -> None:
    """Seed the load database, start gunicorn, run locust against it, print the figures; FAIL on any error."""
    seconds = seconds or int(os.environ.get("LOAD_SECONDS", "60"))
    clients = clients or int(os.environ.get("LOAD_USERS", "32"))
    with tempfile.TemporaryDirectory(prefix="tracker-load-") as tmp:
        work = Path(tmp)
        env = _server_env(work / "static")
        print(f"Preparing {urlparse(env['DATABASE_URL']).path.lstrip('/')}: migrate, static, seed, tokens…", flush=True)
        started = time.monotonic()
        if os.environ.get("LOAD_REUSE_DB") != "1":
            create_database(env["DATABASE_URL"], fresh=True)
        config = work / "config.json"
        subprocess.run(
            [sys.executable, "-m", "bench.load", "--prepare", str(config), "--users", str(clients)],
            cwd=BASE_DIR,
            env=env | {"LOAD_CREDENTIALS": str(work / "credentials")},
            check=True,
        )
        summary_path = work / "summary.json"
        workload = json.loads(config.read_text()) | {"clients": clients, "seconds": seconds}
        config.write_text(json.dumps(workload | {"summary": str(summary_path)}))
        print(f"Prepared in {time.monotonic() - started:.0f}s.", flush=True)
        bind = f"127.0.0.1:{_free_port()}"
        host = f"http://{bind}"
        server_log = work / "gunicorn.log"
        # No control socket: its default path is shared by every gunicorn of the machine.
        gunicorn = f"-m gunicorn -c gunicorn.conf.py --bind {bind} --no-control-socket tracker.wsgi".split()
        with open(server_log, "w") as log:
            server = subprocess.Popen(
                [sys.executable, *gunicorn],
                cwd=BASE_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_until_serving(server, host, server_log)
            locust_log = work / "locust.log"
            # The locustfile ends the run `seconds` after the last sign-in; -t only bounds a run that hangs.
            options = f"--headless -u {clients} -r {clients} -t {seconds + SIGNIN_ALLOWANCE}s --only-summary"
            command = [sys.executable, "-m", "locust", "-f", str(BASE_DIR / "bench" / "_locustfile.py")]
            with open(locust_log, "w") as log:
                locust = subprocess.run(
                    [*command, *options.split(), "--stop-timeout", "10", "--host", host],
                    cwd=BASE_DIR,
                    env=os.environ | {"LOAD_CONFIG": str(config)},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        finally:
            _stop(server)
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
        errors = _errors(summary, _server_errors(server_log))
        # Exit code 1 only says some request failed; anything else is locust's own trouble.
        if locust.returncode not in (0, 1) or summary is None:
            print(f"locust exited {locust.returncode}:\n{_tail(locust_log)}")
    workers = os.environ.get("WEB_CONCURRENCY") or str(min(2 * (os.cpu_count() or 1) + 1, 8))
    if summary and summary["measured"]:
        _report(summary, clients=clients, workers=workers)
    for error in errors:
        print(f"  error: {error}")
    print(f"  {'FAIL' if errors else 'PASS'}  0 errors ({len(errors)} kinds of error)")
    out = BASE_DIR / "bench-results"
    out.mkdir(exist_ok=True)
    result = {"clients": clients, "gunicorn_workers": int(workers), "cpus": os.cpu_count(), "errors": errors}
    (out / "load.json").write_text(json.dumps(result | (summary or {}), indent=2))
    if errors:
        sys.exit("bench.load: FAIL")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, help="How long to load (default LOAD_SECONDS or 60).")
    parser.add_argument("--users", type=int, help="Concurrent clients (default LOAD_USERS or 32).")
    parser.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)  # the child that seeds; see run()
    args = parser.parse_args()
    if args.prepare:
        _prepare(clients=args.users, config_path=args.prepare, credentials=Path(os.environ["LOAD_CREDENTIALS"]))
    else:
        run(seconds=args.seconds, clients=args.users)
