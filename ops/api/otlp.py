"""POST /otlp/v1/traces: the OTLP/HTTP receiver, answering as the OTLP spec says (docs/otlp.md)."""

import math

from django.conf import settings
from django.db import OperationalError
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.permissions import BasePermission
from rest_framework.views import APIView

from ops import otlp
from ops.services.otlp import otlp_traces_ingest
from projects.models import TokenScope
from projects.tokens import TokenAuthentication
from tracker.api import OtlpRateThrottle, rate_limit_headers


class IngestServiceToken(BasePermission):
    """Exports come from an organization's service token with the ingest scope: its organization owns the spans."""

    message = "Send an organization's service token with the ingest scope."

    def has_permission(self, request, view) -> bool:
        token = request.auth
        return token is not None and token.is_service and token.scope == TokenScope.INGEST


def _media_type(request) -> str:
    return request.content_type.split(";")[0].strip().lower()


@extend_schema(exclude=True)  # OTLP's own protocol, documented in docs/otlp.md
class OtlpTracesView(APIView):
    authentication_classes = [TokenAuthentication]
    permission_classes = [IngestServiceToken]
    throttle_classes = [OtlpRateThrottle]
    parser_classes: list = []  # the body is read, decompressed and parsed here, within the limits

    def post(self, request) -> HttpResponse:
        content_type = _media_type(request)
        if content_type not in (otlp.PROTOBUF, otlp.JSON):
            raise otlp.RequestRefused("Send application/x-protobuf or application/json.", status=415)
        limit = settings.OTLP_MAX_BODY_BYTES
        if int(request.META.get("CONTENT_LENGTH") or 0) > limit:
            raise otlp.RequestRefused(f"The export is over the {limit}-byte limit.", status=413)
        body = request._request.read(limit + 1)  # the Django request: DRF's would parse it
        if len(body) > limit:
            raise otlp.RequestRefused(f"The export is over the {limit}-byte limit.", status=413)
        data = otlp.body_decode(
            body,
            content_encoding=request.headers.get("Content-Encoding", ""),
            limit=settings.OTLP_MAX_DECOMPRESSED_BYTES,
        )
        usage = otlp.usage_spans(otlp.export_parse(data, content_type=content_type))
        result = otlp_traces_ingest(organization=request.auth.organization, by=request.user, usage=usage)
        return HttpResponse(
            otlp.response_body(rejected_spans=result.rejected_spans, message=result.message, content_type=content_type),
            content_type=content_type,
        )

    def handle_exception(self, exc: Exception) -> HttpResponse:
        """Answer every refusal with a google.rpc.Status in the request's encoding, as OTLP/HTTP wants."""
        headers = {}
        if isinstance(exc, otlp.RequestRefused):
            status = exc.status
        elif isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            status, headers["WWW-Authenticate"] = 401, TokenAuthentication().authenticate_header(self.request)
        elif isinstance(exc, exceptions.PermissionDenied):
            status = 403
        elif isinstance(exc, exceptions.Throttled):
            # Exporters retry a 429 after Retry-After.
            status, headers["Retry-After"] = 429, str(max(1, math.ceil(exc.wait or 1)))
        elif isinstance(exc, OperationalError):
            # Overloaded or unavailable (lock or statement timeout, deadlock, lost connection): retryable.
            status, headers["Retry-After"] = 503, str(settings.OTLP_RETRY_AFTER_SECONDS)
        else:
            raise exc
        content_type = otlp.JSON if _media_type(self.request) == otlp.JSON else otlp.PROTOBUF
        return HttpResponse(
            otlp.status_body(status=status, message=str(getattr(exc, "detail", exc)), content_type=content_type),
            status=status,
            content_type=content_type,
            headers=headers,
        )

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        for name, value in rate_limit_headers(request).items():
            response[name] = value
        return response
