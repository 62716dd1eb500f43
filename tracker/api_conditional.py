"""Idempotent POSTs (`Idempotency-Key`) and conditional GETs (`ETag`, `If-None-Match`) for every API viewset.

ScopedViewSet takes both mixins, so every endpoint of /api/v1/ behaves alike; `document_conditional_requests`
says so in the OpenAPI schema.
"""

import copy
import hashlib
import json
import re

from django.core.files.uploadedfile import UploadedFile
from django.http import HttpResponse
from django.utils.cache import get_conditional_response, patch_cache_control, set_response_etag

from tracker.exceptions import ValidationFailed

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# The headers that belong to an answer rather than to the moment it is sent (rate limits, request id).
KEPT_HEADERS = ("Content-Type", "Location")
# Printable ASCII, as Stripe's keys (a UUID fits many times over).
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
_MAX_IDEMPOTENT_PATH = 1024  # the key's row holds the path (projects.models.IdempotencyKey)


class _Replay(Exception):
    def __init__(self, response: HttpResponse):
        self.response = response


def _idempotency_caller(request) -> str:
    """A user (their session and personal tokens alike), or a service token on its own."""
    token = request.auth
    if token is not None and getattr(token, "is_service", False):
        return f"service-token:{token.pk}"
    return f"user:{request.user.pk}"


def _file_digest(upload: UploadedFile) -> str:
    """An uploaded file by its content (read in chunks from disk), so another file of the same name is another body."""
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return f"{upload.name}:{digest.hexdigest()}"


def _body_value(value: object) -> str:
    return _file_digest(value) if isinstance(value, UploadedFile) else str(value)


def _idempotency_fingerprint(request) -> str:
    """Hash the query string and the parsed body, so the same JSON sent with other spacing or key order matches."""
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=_body_value)
    return hashlib.sha256(f"{request.META.get('QUERY_STRING', '')}\n{body}".encode()).hexdigest()


class IdempotentMixin:
    """`Idempotency-Key` on every POST: a retry with the same key and body gets the first answer, unwritten again.

    The key is claimed (projects.idempotency) once the caller is authenticated, allowed and within its
    rate, before the view runs. The answer is kept when the view answered below 500, except a 429: a 5xx
    or a 429 asks for a retry, so the key is released. The same key with another body is a 422, and a
    retry while the first request runs a 409. A replay says `Idempotent-Replayed: true`.
    """

    # Fields an answer shows once and that are never stored (a new token's key): a replay goes without them.
    idempotency_withheld_fields: frozenset[str] = frozenset()
    idempotency_claim = None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if request.method != "POST" or key is None:
            return
        from projects.idempotency import Claim, idempotency_key_claim

        if not _IDEMPOTENCY_KEY.fullmatch(key):
            message = "Up to 255 printable ASCII characters, no spaces."
            raise ValidationFailed(f"{IDEMPOTENCY_HEADER}: {message}", errors={IDEMPOTENCY_HEADER: [message]})
        if len(request.path) > _MAX_IDEMPOTENT_PATH:
            message = f"Idempotency keys are kept for paths of up to {_MAX_IDEMPOTENT_PATH} characters."
            raise ValidationFailed(message, errors={IDEMPOTENCY_HEADER: [message]})
        outcome = idempotency_key_claim(
            caller=_idempotency_caller(request),
            path=request.path,
            key=key,
            fingerprint=_idempotency_fingerprint(request),
        )
        if isinstance(outcome, Claim):
            self.idempotency_claim = outcome
            return
        replay = HttpResponse(outcome.body, status=outcome.status, headers=outcome.headers)
        replay[REPLAYED_HEADER] = "true"
        raise _Replay(replay)

    def handle_exception(self, exc):
        if isinstance(exc, _Replay):
            return exc.response
        return super().handle_exception(exc)

    def raise_uncaught_exception(self, exc):
        self._idempotency_finish(None)  # a bug (500): the retry runs again
        super().raise_uncaught_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if self.idempotency_claim is not None:
            self._idempotency_finish(response)
        return response

    def _idempotency_finish(self, response: HttpResponse | None) -> None:
        from projects.idempotency import StoredAnswer, idempotency_key_release, idempotency_key_store

        claim, self.idempotency_claim = self.idempotency_claim, None
        if claim is None:
            return
        status = response.status_code if response is not None else 500
        if status >= 500 or status == 429 or response.streaming:
            idempotency_key_release(claim=claim)
            return
        response.render()
        body = response.content
        data = getattr(response, "data", None)
        if self.idempotency_withheld_fields and isinstance(data, dict):
            kept = {name: value for name, value in data.items() if name not in self.idempotency_withheld_fields}
            body = response.accepted_renderer.render(kept, response.accepted_media_type, response.renderer_context)
        headers = {name: response[name] for name in KEPT_HEADERS if response.has_header(name)}
        idempotency_key_store(claim=claim, answer=StoredAnswer(status=status, headers=headers, body=body))


class ConditionalMixin:
    """A strong `ETag` (MD5 of the rendered body, Django's) on every GET answer; `If-None-Match` → 304.

    The tag changes whenever the body does, whatever changed it. Streamed answers (exports) get none:
    their body is not known before it is sent. `Cache-Control: private, no-cache` lets the caller keep
    the answer and revalidate it each time; no shared cache keeps an answer meant for one caller.
    """

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if request.method not in ("GET", "HEAD") or response.status_code != 200 or response.streaming:
            return response
        response.render()
        set_response_etag(response)
        patch_cache_control(response, private=True, no_cache=True)
        return get_conditional_response(request, etag=response.get("ETag"), response=response)


# --- Schema -------------------------------------------------------------------------------------

_IDEMPOTENCY_PARAMETER = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": False,
    "description": (
        "Makes a retry safe: the same key and body within 24 h get the first answer (2xx or 4xx) again, "
        "without writing again; another body is a 422, a retry while the first request runs a 409. "
        "Scoped to the caller (user or service token) and the path."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[\x21-\x7e]+$"},
    "example": "9f1c2e7a-3b4d-4c5e-8f60-7a8b9c0d1e2f",
}
_REPLAYED_HEADER = {
    "description": "`true` when this is the stored answer of an earlier request with the same Idempotency-Key.",
    "schema": {"type": "string", "enum": ["true"]},
}
_IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "The ETag of an answer you hold: while the body is unchanged the answer is a 304 without one.",
    "schema": {"type": "string"},
}
_ETAG = {
    "description": "A strong tag of this body (it changes whenever the body does); send it back in If-None-Match.",
    "schema": {"type": "string"},
    "example": '"3e25960a79dbc69b674cd4ec67a72c62"',
}
_NOT_MODIFIED = {
    "description": "Not modified: the If-None-Match tag still matches.",
    # Counted against the rate limit like the 200 it stands for (tracker/api_views.py HEADERS).
    "headers": {"ETag": _ETAG}
    | {
        name: {"$ref": f"#/components/headers/{name}"}
        for name in ("X-Request-ID", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
    },
}
_CONFLICT = "#/components/schemas/Conflict"


def document_conditional_requests(result, generator, request, public):
    """drf-spectacular postprocessing hook: Idempotency-Key on every POST, ETag/If-None-Match on JSON GETs."""
    from projects.idempotency import IN_USE

    in_use = {
        "summary": "Idempotency key in use",
        "value": {"detail": IN_USE, "code": "idempotency_key_in_use", "errors": {}},
    }
    for item in result.get("paths", {}).values():
        for method, operation in item.items():
            responses = operation.get("responses", {})
            if method == "post":
                operation.setdefault("parameters", []).append(copy.deepcopy(_IDEMPOTENCY_PARAMETER))
                for code, response in responses.items():
                    if code[0] in "24":
                        response.setdefault("headers", {})[REPLAYED_HEADER] = copy.deepcopy(_REPLAYED_HEADER)
                conflict = responses.get("409", {}).get("content", {}).get("application/json")
                if conflict is not None:
                    ref = conflict.get("schema", {}).get("$ref")
                    if ref and ref != _CONFLICT:  # e.g. a refused stage move: its 409, or the key's
                        conflict["schema"] = {"oneOf": [{"$ref": ref}, {"$ref": _CONFLICT}]}
                    conflict.setdefault("examples", {})["IdempotencyKeyInUse"] = copy.deepcopy(in_use)
            elif method == "get" and "application/json" in responses.get("200", {}).get("content", {}):
                operation.setdefault("parameters", []).append(copy.deepcopy(_IF_NONE_MATCH))
                responses["200"].setdefault("headers", {})["ETag"] = copy.deepcopy(_ETAG)
                responses.setdefault("304", copy.deepcopy(_NOT_MODIFIED))
            operation["responses"] = dict(sorted(responses.items()))
    return result
