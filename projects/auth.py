"""Sign-in and password-reset hardening, keyed on the client address behind the trusted proxies.

- A lockout per (account, client address): django-axes' cache handler. A stranger failing against an
  account locks it for *their* address only; its owner still signs in from hers. The cache handler,
  not the database one: an attack writes a counter per attempt, which Redis expires by itself and
  PostgreSQL would keep as rows, and the back-off keeps failing open while Redis is down.
- A slow-down per address (many failures across accounts): axes can only lock, so this is the small
  throttle below; it refuses the address for a short pause that grows, never for long.
- Password reset requests: limited per address and per e-mail address, with the same answer either way.

Both are enforced in the authentication backends, so the web sign-in, the admin and any other
`authenticate()` call share them.
"""

import contextlib
import hashlib
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

from axes.handlers.cache import AxesCacheHandler
from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

from tracker.security import client_address

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lockout:
    seconds: int
    from_address: bool = False  # the address is slowed down, rather than this account locked for it

    @property
    def message(self) -> str:
        if self.seconds < 60:
            wait = f"{self.seconds} second{'s' if self.seconds > 1 else ''}"
        else:
            minutes = math.ceil(self.seconds / 60)
            wait = f"{minutes} minute{'s' if minutes > 1 else ''}"
        whose = "from your address" if self.from_address else "for this account from your address"
        return f"Too many failed sign-ins {whose}. Try again in {wait}."


def account_key(username: str) -> str:
    """Return the one key of an account whatever the case and surrounding spaces typed."""
    return username.strip().casefold()


def signin_username(request: HttpRequest, credentials: dict | None) -> str:
    """Return the account part of axes' lockout key (AXES_USERNAME_CALLABLE)."""
    username = (credentials or {}).get("username")
    if username is None:
        username = request.POST.get("username", "")
    return account_key(username)


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


class FailOpenCacheHandler(AxesCacheHandler):
    """Axes' cache handler, failing open while Redis is down and not counting slowed-down attempts.

    An attempt refused by the address slow-down never reached the password check: counting it against
    the account would let the slow-down of a shared address lock its users out.
    """

    def get_failures(self, request, credentials=None) -> int:
        with _fail_open("lockout check"):
            return super().get_failures(request, credentials)
        return 0

    def user_login_failed(self, sender, credentials, request=None, **kwargs):
        if request is not None and getattr(request, "signin_slowdown", None):
            return
        with _fail_open("failure count"):
            super().user_login_failed(sender, credentials, request, **kwargs)

    def user_logged_in(self, sender, request, user, **kwargs):
        with _fail_open("reset"):
            super().user_logged_in(sender, request, user, **kwargs)


def _count(key: str, *, window: int) -> int:
    """Add one to a counter that lives `window` seconds after its latest hit; return its value."""
    if cache.add(key, 1, timeout=window):
        return 1
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window)
        return 1
    cache.touch(key, window)
    return count


def _address_key(request: HttpRequest) -> str:
    return f"signin:address:{client_address(request)}"


def signin_slowdown(*, request: HttpRequest) -> Lockout | None:
    """Return the pause in force for this client address, if any (none known while the cache is down)."""
    with _fail_open("slow-down check"):
        until = cache.get(f"{_address_key(request)}:until")
        if until and (remaining := until - time.time()) > 0:
            return Lockout(seconds=math.ceil(remaining), from_address=True)
    return None


def signin_address_failure_record(*, request: HttpRequest) -> None:
    """Count a failure from this address; from the limit on, pause it 1 s, 2 s, 4 s … up to the maximum."""
    with _fail_open("failure count"):
        key = _address_key(request)
        failures = _count(key, window=settings.SIGNIN_FAILURE_WINDOW_SECONDS)
        beyond = failures - settings.SIGNIN_MAX_FAILURES_PER_ADDRESS
        if beyond >= 0:
            pause = min(2 ** min(beyond, 16), settings.SIGNIN_ADDRESS_MAX_PAUSE_SECONDS)
            cache.set(f"{key}:until", time.time() + pause, timeout=pause)


def signin_refusal(request: HttpRequest | None) -> Lockout | None:
    """Return why the last `authenticate()` of this request was refused without a password check, if it was."""
    if request is None:
        return None
    if slowdown := getattr(request, "signin_slowdown", None):
        return slowdown
    if getattr(request, "axes_locked_out", False):
        # Every refused attempt restarts the cool-off (axes), so it ends one cool-off from now.
        return Lockout(seconds=int(get_cool_off(request).total_seconds()))
    return None


def signin_lockout_response(request: HttpRequest, original_response: HttpResponse, credentials: dict | None):
    """Answer a locked-out sign-in with the page the view rendered, as 429 with Retry-After (AXES_LOCKOUT_CALLABLE)."""
    original_response.status_code = 429
    original_response["Retry-After"] = str(int(get_cool_off(request).total_seconds()))
    return original_response


class SignInBackend(ModelBackend):
    """Django's model backend, refusing a slowed-down address and counting the address's failures.

    The lockout per (account, address) comes first, from axes' backend (AUTHENTICATION_BACKENDS).
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is not None and (slowdown := signin_slowdown(request=request)):
            request.signin_slowdown = slowdown
            raise PermissionDenied("Too many failed sign-ins from this address.")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None and request is not None:
            signin_address_failure_record(request=request)
        return user


class SignInForm(AuthenticationForm):
    """The sign-in form, saying so (and until when) when a back-off is in force instead of 'wrong password'."""

    def clean(self):
        try:
            return super().clean()
        except ValidationError:
            if refusal := signin_refusal(self.request):
                raise ValidationError(refusal.message, code="locked_out") from None
            raise


def password_reset_allowed(*, request: HttpRequest, email: str) -> bool:
    """Count a reset request; refuse it beyond the limits per client address and per e-mail address.

    Counted whether or not an account has that address, so the limit tells nothing about accounts.
    """
    window = settings.PASSWORD_RESET_WINDOW_SECONDS
    with _fail_open("password reset count"):
        digest = hashlib.sha256(account_key(email).encode()).hexdigest()
        per_address = _count(f"reset:address:{client_address(request)}", window=window)
        per_account = _count(f"reset:account:{digest}", window=window)
        over_address = per_address > settings.PASSWORD_RESET_MAX_PER_ADDRESS
        if over_address or per_account > settings.PASSWORD_RESET_MAX_PER_ACCOUNT:
            logger.warning("Password reset refused for %s: too many requests", client_address(request))
            return False
    return True


def password_reset_mail_send(*, email: str, domain: str, use_https: bool) -> None:
    """Send Django's reset e-mail to the active accounts with this address (none: nothing happens)."""
    form = PasswordResetForm(data={"email": email})
    if form.is_valid():
        form.save(domain_override=domain, use_https=use_https)


class PasswordResetRequestForm(PasswordResetForm):
    """Django's reset form, answering the same whether the account exists and whether a limit is reached.

    The request only counts and enqueues; the worker looks the account up and sends. Sending in the
    request would make it slower exactly when the account exists, which tells whom it belongs to.
    """

    def save(self, **kwargs):
        from projects.tasks import password_reset_mail_send_task

        request, email = kwargs["request"], self.cleaned_data["email"]
        if not password_reset_allowed(request=request, email=email):
            return
        try:
            password_reset_mail_send_task.delay(email, request.get_host(), request.is_secure())
        except KombuOperationalError as exc:
            logger.warning("Password reset e-mail not queued, the task queue is unavailable: %s", exc)


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
