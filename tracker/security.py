"""Security shared by the whole site: the client's address, response headers and request-size bounds."""

import ipaddress
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from tracker.exceptions import ErrorCode, error_body


def client_address(request: HttpRequest) -> str:
    """Return the client's IP address, as the outermost of DJANGO_TRUSTED_PROXY_COUNT proxies saw it.

    Each trusted proxy appends the address it received the request from to X-Forwarded-For, so the
    Nth entry from the right is the one the outermost proxy wrote; entries further left are whatever
    the client sent, never trusted. Fewer entries than proxies: the request skipped the outer ones, and
    the leftmost entry is still written by one of ours (as DRF's NUM_PROXIES reads it). No proxy: REMOTE_ADDR.
    """
    remote = request.META.get("REMOTE_ADDR") or "unknown"
    hops = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if hops <= 0 or not forwarded:
        return remote
    addresses = [part.strip() for part in forwarded.split(",")]
    candidate = addresses[-min(hops, len(addresses))]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:  # not what a proxy writes: keep the peer's address rather than a chosen string
        return remote


# Scripts only from our own static files: no inline script, no eval. Inline styles stay allowed
# (htmx and the chart library set style attributes), which cannot run code.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class SecurityHeadersMiddleware:
    """Add the Content-Security-Policy and the headers Django does not set itself."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        return response


# The OTLP receiver's paths (tracker/urls.py).
OTLP_PATH_PREFIX = "/otlp/"


class RequestSizeLimitMiddleware:
    """Refuse bodies larger than MAX_REQUEST_BODY_BYTES before anything reads them, in the API's error shape.

    Django bounds `request.body`, but DRF's parsers read the stream directly: without this a
    50 MB JSON body would be parsed in full. File imports (docs/imports.md) are the exception, up
    to IMPORT_MAX_UPLOAD_BYTES: their upload is streamed to disk, never read into memory.
    """

    IMPORT_PATHS = ("/imports/", "/api/v1/imports/")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(OTLP_PATH_PREFIX):
            return self.get_response(request)  # the receiver bounds its exports and answers as OTLP says
        limit = settings.MAX_REQUEST_BODY_BYTES
        if request.method == "POST" and request.path in self.IMPORT_PATHS:
            limit = settings.IMPORT_MAX_UPLOAD_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse(error_body("Invalid Content-Length header.", ErrorCode.BAD_REQUEST), status=400)
        if length > limit:
            detail = f"Request body too large: {length} bytes, the limit is {limit} bytes."
            return JsonResponse(error_body(detail, ErrorCode.REQUEST_TOO_LARGE), status=413)
        return self.get_response(request)
