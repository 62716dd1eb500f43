"""Request id and access log for every request; probes and metrics answered before host checks; the 503 page."""

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.template import loader

from tracker import health, metrics
from tracker.db import statement_timeout_caught
from tracker.logging import request_id_var

access_logger = logging.getLogger("tracker.request")

# A caller's id is kept only when it cannot break a log line or a header.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

# Probes and scrapes come from the orchestrator and Prometheus, addressed to the container itself
# (its IP or service name, plain HTTP): they bypass ALLOWED_HOSTS and the HTTPS redirect.
PROBES: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": health.healthz,
    "/readyz": health.readyz,
    "/metrics": metrics.metrics_view,
}


class RequestLogMiddleware:
    """Give each request an id (X-Request-ID or a new one), echo it, and log one line when it is answered."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        start = time.perf_counter()
        try:
            response = self.get_response(request)
            duration = time.perf_counter() - start
            response["X-Request-ID"] = request_id
            if request.path not in PROBES:
                self._record(request, response, duration)
            return response
        finally:
            request_id_var.reset(token)

    @staticmethod
    def _record(request: HttpRequest, response: HttpResponse, duration: float) -> None:
        match = request.resolver_match
        route = (match.route or match.view_name) if match else "unmatched"
        metrics.request_observe(method=request.method, route=route, status=response.status_code, duration=duration)
        user = getattr(request, "user", None)
        user_id = user.pk if user is not None and user.is_authenticated else None
        access_logger.info(
            "%s %s %s %.1f ms user=%s",
            request.method,
            request.path,
            response.status_code,
            duration * 1000,
            user_id or "-",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round(duration * 1000, 1),
                "user_id": user_id,
            },
        )


class ProbeMiddleware:
    """Answer /healthz, /readyz and /metrics directly, ahead of SecurityMiddleware and host validation."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path)
        if probe is not None and request.method in ("GET", "HEAD"):
            return probe(request)
        return self.get_response(request)


class StatementTimeoutMiddleware:
    """Answer a page whose query ran past the web ceiling with the 503 page instead of a 500.

    The API answers its own JSON 503 (tracker.api.exception_handler); this covers the web UI.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not statement_timeout_caught(exception, path=request.path):
            return None
        # Rendered without the request: its context processors would query the database again.
        return HttpResponse(loader.render_to_string("503.html"), status=503)
