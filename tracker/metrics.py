"""Prometheus metrics: requests and tasks observed in-process, reports and open risks counted at scrape time.

gunicorn and the Celery worker run several processes: with PROMETHEUS_MULTIPROC_DIR set (a directory of
its own per container) every process writes its samples there and a scrape sums them. The endpoint is
never public: it answers 404 until METRICS_TOKEN or METRICS_ALLOWED_IPS is set, and then only to a
caller passing every configured check.
"""

import hmac
import ipaddress
import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

logger = logging.getLogger(__name__)

REQUEST_LATENCY = Histogram(
    "tracker_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and URL route.",
    ["method", "route"],
)
REQUESTS = Counter(
    "tracker_http_requests", "HTTP requests answered, by method, URL route and status.", ["method", "route", "status"]
)
TASKS = Counter("tracker_celery_tasks", "Celery tasks run, by task name and outcome.", ["task", "outcome"])
MAILS = Counter("tracker_mail_messages", "E-mails the app tried to send, by kind and outcome.", ["kind", "outcome"])
TASK_DURATION = Histogram(
    "tracker_celery_task_duration_seconds",
    "Time a Celery task ran, by task name and outcome.",
    ["task", "outcome"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, float("inf")),
)


def request_observe(*, method: str, route: str, status: int, duration: float) -> None:
    REQUEST_LATENCY.labels(method, route).observe(duration)
    REQUESTS.labels(method, route, str(status)).inc()


def task_observe(*, task: str, outcome: str, duration: float) -> None:
    TASKS.labels(task, outcome).inc()
    TASK_DURATION.labels(task, outcome).observe(duration)


# The scrape-time collectors that read the database, registered by the apps that own the data
# (ops registers its report and risk gauges in `OpsConfig.ready()`); tracker knows no app's models.
DATABASE_COLLECTORS: list[Callable[[], Any]] = []


def database_collector_register(collector: Callable[[], Any]) -> Callable[[], Any]:
    DATABASE_COLLECTORS.append(collector)
    return collector


def _multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def _process_metrics() -> bytes:
    """Return the in-process metrics: summed over every process sharing the multiprocess directory."""
    if not _multiprocess_dir():
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return generate_latest(registry)


def access_status(*, remote_addr: str, authorization: str) -> int | None:
    """Return the HTTP status refusing a scrape, or None to serve it.

    404 while neither METRICS_TOKEN nor METRICS_ALLOWED_IPS is set; 401 without the right bearer token;
    403 from an address outside the allowed networks. X-Forwarded-For is ignored on purpose: scrapers reach
    the process directly, and the header is the client's to forge.
    """
    token: str = settings.METRICS_TOKEN
    networks: list[str] = settings.METRICS_ALLOWED_IPS
    if not token and not networks:
        return 404
    if token:
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            return 401
    if networks:
        try:
            address = ipaddress.ip_address(remote_addr)
        except ValueError:
            return 403
        if not any(address in ipaddress.ip_network(network, strict=False) for network in networks):
            return 403
    return None


_REASONS = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}


def _refusal_headers(status: int) -> dict[str, str]:
    headers = {"Content-Type": "text/plain; charset=utf-8"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return headers


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Serve the Prometheus exposition of this web container, plus the database gauges."""
    refused = access_status(
        remote_addr=request.META.get("REMOTE_ADDR", ""), authorization=request.headers.get("Authorization", "")
    )
    if refused is not None:
        return HttpResponse(_REASONS[refused], status=refused, headers=_refusal_headers(refused))
    database = CollectorRegistry()
    for collector in DATABASE_COLLECTORS:
        database.register(collector())
    return HttpResponse(_process_metrics() + generate_latest(database), content_type=CONTENT_TYPE_LATEST)


def _worker_app(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
    refused = access_status(
        remote_addr=environ.get("REMOTE_ADDR", ""), authorization=environ.get("HTTP_AUTHORIZATION", "")
    )
    if refused is not None:
        start_response(f"{refused} {_REASONS[refused]}", list(_refusal_headers(refused).items()))
        return [_REASONS[refused].encode()]
    start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
    return [_process_metrics()]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Leave scrapes out of the worker's log."""


def worker_metrics_serve() -> None:
    """Serve the task metrics of this worker's processes on WORKER_METRICS_PORT (same access rules as /metrics).

    The pool's child processes run the tasks, so their samples only reach this (parent) process through
    PROMETHEUS_MULTIPROC_DIR; without it the port is not opened.
    """
    port = settings.WORKER_METRICS_PORT
    if not port:
        return
    directory = _multiprocess_dir()
    if not directory:
        logger.error("WORKER_METRICS_PORT is set but PROMETHEUS_MULTIPROC_DIR is not: worker metrics not served.")
        return
    # The directory is this worker's own: samples of a previous run would be summed in.
    Path(directory).mkdir(parents=True, exist_ok=True)
    for stale in Path(directory).glob("*.db"):
        stale.unlink()
    # Every interface on purpose: Prometheus scrapes the worker container over the network. The port
    # is opt-in (WORKER_METRICS_PORT) and _worker_app answers only with METRICS_TOKEN/METRICS_ALLOWED_IPS.
    server = make_server("0.0.0.0", port, _worker_app, handler_class=_QuietHandler)  # nosec B104
    threading.Thread(target=server.serve_forever, name="worker-metrics", daemon=True).start()
    logger.info("Worker metrics served on port %s", port)
