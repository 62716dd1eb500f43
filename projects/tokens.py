"""API tokens: how a key is stored (hashed) and how a request authenticates with one (DRF)."""

import datetime as dt
import hashlib

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import SAFE_METHODS, BasePermission

from projects.models import ApiToken

# Writing last_used_at on every request would cost a write per call; once a minute is precise enough.
LAST_USED_GRANULARITY = dt.timedelta(minutes=1)


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


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
        token = (
            ApiToken.objects.select_related("user", "organization")
            .filter(key_hash=hash_key(raw), revoked_at=None)
            .first()
        )
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
