"""What every benchmark shares: its own database next to the configured one, and a child process on it."""

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse, urlunparse

BASE_DIR = Path(__file__).resolve().parent.parent


def bench_db_url(suffix: str) -> str:
    """DATABASE_URL (or the local default) with `suffix` added to the database name."""
    url = urlparse(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tracker"))
    return urlunparse(url._replace(path=url.path.rstrip("/") + suffix))


def run_child(module: str, suffix: str, *args: str) -> None:
    """Re-run `module` with `--child` on its bench database, so no figure touches the working one."""
    env = os.environ | {"DATABASE_URL": bench_db_url(suffix), "DJANGO_SETTINGS_MODULE": "tracker.settings"}
    subprocess.run([sys.executable, "-m", module, "--child", *args], cwd=BASE_DIR, env=env, check=True)


@contextmanager
def server(url: str):
    """Yield an autocommit connection to the server of `url` (its `postgres` database) and the name in `url`."""
    import psycopg

    parsed = urlparse(url)
    admin = urlunparse(parsed._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        yield conn, parsed.path.lstrip("/")


def create_database(url: str, *, fresh: bool) -> None:
    """Create the database of `url` if it is missing; with `fresh`, drop it first."""
    with server(url) as (conn, name):
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
