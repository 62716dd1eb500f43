"""`make run`: migrate, seed the demo the first time, then the web server, a Celery worker and beat.

It runs as the product does (DJANGO_DEBUG off, so a missing page shows the product's 404, not Django's
debug page) on plain HTTP at 127.0.0.1, with a secret key made once under var/; `make run DEBUG=true`
(or DJANGO_DEBUG in the environment) asks for Django's debug pages.

Ctrl-C stops the three and exits 0. The terminal sends Ctrl-C to its foreground process group, which
holds make too: make would report the servers' deaths as `Error 130` / `Error 143`. So this script makes
its own group the foreground one (make no longer hears Ctrl-C), starts each server in a session of its
own (a signal meant for the group never reaches the worker's pool processes behind its back), and on
Ctrl-C, TERM or HUP stops them itself, waits for them and gives the terminal back.
"""

import contextlib
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CELERY = str(Path(PYTHON).with_name("celery"))
SERVERS = {
    "web": [PYTHON, "manage.py", "runserver", "127.0.0.1:8000"],
    "worker": [CELERY, "-A", "tracker", "worker", "--loglevel=INFO", "--concurrency=2"],
    "beat": [CELERY, "-A", "tracker", "beat", "--loglevel=INFO"],
}
STOP_SECONDS = 20


def debug(env: dict[str, str]) -> bool:
    """Whether Django's debug pages were asked for (read as the settings read DJANGO_DEBUG)."""
    return env.get("DJANGO_DEBUG", "").strip().lower() in ("true", "on", "ok", "y", "yes", "1")


def run_environment(environ: dict[str, str], *, var_dir: Path) -> dict[str, str]:
    """Return the environment of the run: the given one, plus what DJANGO_DEBUG=false needs on local HTTP."""
    env = dict(environ)
    env.setdefault("DJANGO_DEBUG", "false")
    if debug(env):
        return env
    key_file = var_dir / "secret-key"
    if not key_file.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        key_file.touch(mode=0o600)
        key_file.write_text(secrets.token_urlsafe(50))
    env.setdefault("DJANGO_SECRET_KEY", key_file.read_text().strip())
    env.setdefault("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
    # Plain HTTP on this machine: no redirect to https, no HSTS, cookies sent without TLS.
    env.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
    env.setdefault("DJANGO_SECURE_HSTS_SECONDS", "0")
    env.setdefault("DJANGO_SECURE_COOKIES", "false")
    env.setdefault("DJANGO_STATIC_COLLECTED", "false")  # whitenoise serves static/ as it is
    return env


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True)


def banner(credentials: Path) -> str:
    lines = [
        "",
        "LLMOps Tracker: http://127.0.0.1:8000/  (Ctrl-C stops the web server, the worker and beat)",
    ]
    if credentials.exists():
        lines.append(
            f"Demo logins: in {credentials.name} (new ones: python manage.py seed_demo --reset-passwords)."
            " Sign in as demo-manager and open the dashboard."
        )
    lines.append("Django admin for superusers: http://127.0.0.1:8000/admin/ (see seed_demo --superuser)")
    return "\n".join(lines) + "\n"


class Stop(Exception):
    """A signal asked the run to stop."""


def _stop(number: int, frame: object) -> None:
    raise Stop


def serve(env: dict[str, str]) -> int:
    """Run the servers until a signal or until one of them stops; return the exit status of the run."""
    processes: dict[str, subprocess.Popen] = {}
    failed = None
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop)
    try:
        for name, command in SERVERS.items():
            processes[name] = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
        pid, _ = os.wait()  # until the first server stops, or a signal
        failed = next(name for name, process in processes.items() if process.pid == pid)
    except Stop:
        pass
    # A second Ctrl-C must not cut the stopping short.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    for process in processes.values():
        if process.poll() is None:
            process.terminate()
    for name, process in processes.items():
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop in {STOP_SECONDS} s: killed.", file=sys.stderr)
            process.kill()
            process.wait()
    if failed is not None:
        print(f"{failed} stopped by itself, so the others were stopped too.", file=sys.stderr)
        return 1
    return 0


@contextlib.contextmanager
def foreground() -> Iterator[None]:
    """Make this process's own group the terminal's foreground one (when there is a terminal), then give it back."""
    if not sys.stdin.isatty():
        yield
        return
    terminal = sys.stdin.fileno()
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # tcsetpgrp from a background group
    previous = os.tcgetpgrp(terminal)
    os.setpgid(0, 0)
    os.tcsetpgrp(terminal, os.getpgrp())
    try:
        yield
    finally:
        os.tcsetpgrp(terminal, previous)


def main() -> int:
    env = run_environment(dict(os.environ), var_dir=ROOT / "var")
    if not debug(env):
        (ROOT / "staticfiles").mkdir(exist_ok=True)  # whitenoise warns when STATIC_ROOT is missing
    with foreground():
        try:
            manage(env, "migrate", "--noinput")
            manage(env, "seed_demo")
            print(banner(ROOT / ".demo-credentials"), flush=True)
            return serve(env)
        except subprocess.CalledProcessError as error:
            return error.returncode
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
