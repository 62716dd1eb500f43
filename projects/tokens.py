"""API tokens: how a key is stored (hashed) and how a request authenticates with one (DRF)."""

import datetime as dt
import functools
import hashlib

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import SAFE_METHODS, BasePermission

from projects.models import ApiToken
from tracker.db import CompiledValues, instance_from_row, related_values_names

# Writing last_used_at on every request would cost a write per call; once a minute is precise enough.
LAST_USED_GRANULARITY = dt.timedelta(minutes=1)


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


TOKEN_RELATED = ("user", "organization")


# Every API call reads its token with its user and organization: compiled once per process (CompiledValues),
# as building and compiling the ORM's two-join query cost more than running it.
@functools.cache
def _token_statement() -> CompiledValues:
    probe = "probe:no-key-hashes-to-this"  # a SHA-256 hex digest is never like it
    names = related_values_names(ApiToken, TOKEN_RELATED)
    return CompiledValues(ApiToken.objects.filter(key_hash=probe, revoked_at=None).values(*names), {"key_hash": probe})


def _token_read(raw: str) -> ApiToken | None:
    """Return the unrevoked token whose key is `raw`, with its user and organization, as `select_related` reads them."""
    rows = _token_statement()(key_hash=hash_key(raw))
    return instance_from_row(ApiToken, rows[0], TOKEN_RELATED) if rows else None


class TokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <token>` (or `Token <token>`) with a personal or a service API token."""

    keywords = (b"bearer", b"token")

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in self.keywords:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header: give exactly one token.")
        try:
            raw = parts[1].decode()
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid token.") from exc
        token = _token_read(raw)
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        if token.is_expired:
            raise exceptions.AuthenticationFailed("Token expired.", code="token_expired")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_GRANULARITY:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        request._request.audit_token = token  # the audit history names the token, not just its user
        return token.user, token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class ServiceTokenScope(BasePermission):
    """Hold a service token to its scope: it reads; it writes only where a view names its scope.

    A view lists the scopes allowed to write through it in `service_token_write_scopes` (the ingest
    endpoints say `("ingest",)`); `service_tokens_refused = True` shuts service tokens out entirely
    (the token endpoints: a service token never lists, mints or revokes tokens). Personal tokens and
    sessions pass: their user's role decides, as everywhere.
    """

    def has_permission(self, request, view) -> bool:
        token = request.auth
        if token is None or not getattr(token, "is_service", False):
            return True
        if getattr(view, "service_tokens_refused", False):
            self.message = "Service tokens cannot use this endpoint."
        elif request.method in SAFE_METHODS or token.scope in getattr(view, "service_token_write_scopes", ()):
            return True
        else:
            self.message = f"A service token with the “{token.scope}” scope cannot make this request."
        return False
