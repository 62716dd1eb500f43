"""Sign-in hardening: back-off after repeated failures, per account and per client address.

Enforced in the authentication backend, so the web sign-in, the admin and any other
`authenticate()` call share it. Counters live in the cache (Redis in production).
"""

import contextlib
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lockout:
    seconds: int

    @property
    def message(self) -> str:
        minutes = max(1, math.ceil(self.seconds / 60))
        return f"Too many failed sign-ins. Try again in {minutes} minute{'s' if minutes > 1 else ''}."


def _client_address(request: HttpRequest | None) -> str:
    return (request.META.get("REMOTE_ADDR") or "unknown") if request is not None else "unknown"


def _keys(username: str, request: HttpRequest | None) -> dict[str, str]:
    return {
        "account": f"signin:account:{username.strip().lower()}",
        "address": f"signin:address:{_client_address(request)}",
    }


def _limits() -> dict[str, int]:
    return {"account": settings.SIGNIN_MAX_FAILURES_PER_ACCOUNT, "address": settings.SIGNIN_MAX_FAILURES_PER_ADDRESS}


@contextlib.contextmanager
def _fail_open(action: str) -> Iterator[None]:
    """Skip the counters, with a warning, while the cache (Redis) is down.

    Failing open is deliberate: failing closed would lock every user out for as long as Redis is
    down, while failing open only drops the back-off for that time; passwords are still checked,
    and the warning in the logs makes the outage visible.
    """
    try:
        yield
    except RedisError as exc:
        logger.warning("Sign-in back-off skipped (%s): the cache is unavailable: %s", action, exc)


def signin_lockout(*, username: str, request: HttpRequest | None) -> Lockout | None:
    """Return the lockout in force for this account or address, if any (none known while the cache is down)."""
    with _fail_open("lockout check"):
        return _signin_lockout(username=username, request=request)
    return None


def _signin_lockout(*, username: str, request: HttpRequest | None) -> Lockout | None:
    for key in _keys(username, request).values():
        locked_until = cache.get(f"{key}:locked")
        if locked_until:
            remaining = locked_until - _now()
            if remaining > 0:
                return Lockout(seconds=int(remaining))
    return None


def signin_failure_record(*, username: str, request: HttpRequest | None) -> None:
    """Count a failure; past the limit, lock for a period that doubles with each further failure."""
    with _fail_open("failure count"):
        _signin_failure_count(username=username, request=request)


def _signin_failure_count(*, username: str, request: HttpRequest | None) -> None:
    window = settings.SIGNIN_FAILURE_WINDOW_SECONDS
    limits = _limits()
    for scope, key in _keys(username, request).items():
        cache.add(key, 0, timeout=window)
        try:
            failures = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=window)
            failures = 1
        if failures >= limits[scope]:
            backoff = min(
                settings.SIGNIN_LOCKOUT_SECONDS * 2 ** (failures - limits[scope]), settings.SIGNIN_MAX_LOCKOUT_SECONDS
            )
            cache.set(f"{key}:locked", _now() + backoff, timeout=backoff)
            cache.touch(key, max(window, backoff))


def signin_success_record(*, username: str) -> None:
    """Forget the account's failures (the address keeps its count: it may be guessing many accounts)."""
    key = _keys(username, None)["account"]
    with _fail_open("reset"):
        cache.delete_many([key, f"{key}:locked"])


def _now() -> float:
    return time.time()


class LockoutModelBackend(ModelBackend):
    """Django's model backend, refusing locked-out accounts and addresses."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        username = username or kwargs.get("email") or ""
        if signin_lockout(username=username, request=request):
            # Attempts during a lockout count too: hammering on only lengthens the back-off.
            signin_failure_record(username=username, request=request)
            raise PermissionDenied("Too many failed sign-ins.")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            signin_failure_record(username=username, request=request)
        else:
            signin_success_record(username=username)
        return user


class SignInForm(AuthenticationForm):
    """The sign-in form, saying so when a lockout is in force instead of 'wrong password'."""

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        if lockout := signin_lockout(username=username, request=self.request):
            raise ValidationError(lockout.message, code="locked_out")
        try:
            return super().clean()
        except ValidationError:
            if lockout := signin_lockout(username=username, request=self.request):
                raise ValidationError(lockout.message, code="locked_out") from None
            raise


class RevokeTokensOnPasswordChange:
    """Revoke the user's personal API tokens whenever their password changes.

    Listed in AUTH_PASSWORD_VALIDATORS for its `password_changed` hook, not as a check: Django calls
    it from `AbstractBaseUser.save()` after every `set_password()`, so the password-change view,
    password reset, the admin and `manage.py changepassword` all pass here with no custom user model.
    """

    def validate(self, password: str, user=None) -> None:
        return None

    def password_changed(self, password: str, user=None) -> None:
        from projects.services import api_tokens_revoke_personal

        if user is not None and user.pk is not None:
            api_tokens_revoke_personal(user=user)

    def get_help_text(self) -> str:
        return "Changing your password revokes your personal API tokens (service tokens stay)."
