"""gunicorn settings for the web container, from environment variables (see README, Deploy)."""

import gc
import multiprocessing
import os
from pathlib import Path

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", min(2 * multiprocessing.cpu_count() + 1, 8)))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
# The app (settings, every module, the URLconf: tracker.wsgi) loads once in the master and the workers fork
# from it ready to answer: no second of imports in each new worker's first request (after every max_requests).
preload_app = True
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then so a slow leak never takes a container down.
max_requests = 2000
max_requests_jitter = 200
# Heartbeat files on tmpfs: a container's overlay filesystem can stall them.
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None
# Django's middleware logs each request (JSON with LOG_FORMAT=json): no second access log.
accesslog = None
errorlog = "-"

_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")


def on_starting(server) -> None:
    """Start each run with an empty metrics directory: samples of dead processes would be summed in."""
    if _metrics_dir:
        Path(_metrics_dir).mkdir(parents=True, exist_ok=True)
        for stale in Path(_metrics_dir).glob("*.db"):
            stale.unlink()


def child_exit(server, worker) -> None:
    """Drop the live-gauge files of a worker that exited."""
    if _metrics_dir:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def pre_fork(server, worker) -> None:
    """Leave the preloaded app's objects out of the worker's garbage collections (gc.freeze).

    They live as long as the process: without this each full collection walks all ~150,000 of them
    (~95 ms, about once per 50 OTLP exports), and touching their headers un-shares their pages.
    """
    gc.freeze()
