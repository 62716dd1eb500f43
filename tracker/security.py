"""Security middleware shared by the whole site: response headers and request-size bounds."""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

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


class RequestSizeLimitMiddleware:
    """Refuse bodies larger than MAX_REQUEST_BODY_BYTES before anything reads them.

    Django bounds `request.body`, but DRF's parsers read the stream directly: without this a
    50 MB JSON body would be parsed in full.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.MAX_REQUEST_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"detail": "Invalid Content-Length header.", "code": "bad_request"}, status=400)
        if length > limit:
            return JsonResponse(
                {
                    "detail": f"Request body too large: {length} bytes, the limit is {limit} bytes.",
                    "code": "request_too_large",
                },
                status=413,
            )
        return self.get_response(request)
