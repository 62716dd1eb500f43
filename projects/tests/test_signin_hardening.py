"""Sign-in and password reset attacked as a stranger would: shared proxy addresses, spoofed headers, floods."""

import secrets

import pytest
import time_machine
from axes.handlers.proxy import AxesProxyHandler
from django.contrib.auth import authenticate
from django.core import mail
from django.core.cache import cache
from django.test import RequestFactory

from projects.tasks import password_reset_mail_send_task
from projects.tests.factories import UserFactory
from tracker.api import UserRateThrottle
from tracker.celery import app
from tracker.security import client_address

PASSWORD = "correct-horse-battery"
PROXY = "172.18.0.2"  # the TLS proxy every request comes through
MALLORY = "203.0.113.66"
ALICE_HOME = "198.51.100.7"


@pytest.fixture(autouse=True)
def _behind_one_proxy(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    cache.clear()
    yield
    cache.clear()


def _via_proxy(address: str) -> dict[str, str]:
    return {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": address}


def _sign_in(client, username: str, password: str, address: str, path: str = "/accounts/login/"):
    return client.post(path, {"username": username, "password": password}, **_via_proxy(address))


def _request(address: str):
    return RequestFactory().post("/accounts/login/", **_via_proxy(address))


# --- The client address --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("proxies", "remote", "forwarded", "expected"),
    [
        (0, "10.0.0.5", "6.6.6.6", "10.0.0.5"),  # no proxy trusted: the header is the client's word, ignored
        (1, PROXY, "198.51.100.7", "198.51.100.7"),
        (1, PROXY, "6.6.6.6, 7.7.7.7, 198.51.100.7", "198.51.100.7"),  # spoofed hops on the left are ignored
        (2, "10.0.0.2", "6.6.6.6, 198.51.100.7, 10.0.0.1", "198.51.100.7"),
        (2, "10.0.0.2", "198.51.100.7", "198.51.100.7"),  # fewer hops than proxies: the one our proxy wrote
        (1, PROXY, "", PROXY),  # straight to the app, no header: its peer
        (1, PROXY, "not-an-address", PROXY),  # garbage is never a key
        (1, PROXY, "2001:db8::1", "2001:db8::1"),
    ],
)
def test_client_address_is_the_nth_entry_from_the_right(settings, proxies, remote, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == expected
    assert UserRateThrottle().get_ident(request) == expected  # the API's anonymous throttle agrees


# --- Point 2: one stranger must not lock everyone out ----------------------------------------------


@pytest.mark.django_db
def test_31_random_usernames_through_the_shared_proxy_do_not_lock_out_a_real_user(client):
    UserFactory(username="alice")
    UserFactory(username="root", is_staff=True, is_superuser=True)
    for _ in range(31):
        assert _sign_in(client, secrets.token_hex(6), "guess", MALLORY).status_code == 200

    # Alice, from her own address behind the same proxy, signs in; so does an admin, on the admin site.
    assert _sign_in(client, "alice", PASSWORD, ALICE_HOME).status_code == 302
    client.logout()
    admin = _sign_in(client, "root", PASSWORD, "192.0.2.10", path="/admin/login/?next=/admin/")
    assert admin.status_code == 302 and admin.url == "/admin/"
    client.logout()

    # The stranger's own address is slowed down: even a right password waits, and is told how long.
    refused = _sign_in(client, "alice", PASSWORD, MALLORY)
    assert refused.status_code == 200
    assert "Too many failed sign-ins from your address. Try again in" in refused.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_failures_lock_the_account_for_the_failing_address_only(client):
    UserFactory(username="alice")
    # (c) Case and surrounding spaces do not make new accounts to fail against.
    for variant in ("alice", "Alice", " alice", "ALICE ", "aLiCe"):
        _sign_in(client, variant, "wrong-guess", MALLORY)

    # (a) + (d): locked for the stranger's address, with when to retry; the owner elsewhere gets in.
    locked = _sign_in(client, "alice", PASSWORD, MALLORY)
    assert locked.status_code == 429 and locked["Retry-After"] == "900"
    assert "Too many failed sign-ins for this account from your address. Try again in 15 minutes." in (
        locked.content.decode()
    )
    assert "_auth_user_id" not in client.session
    assert _sign_in(client, "alice", PASSWORD, ALICE_HOME).status_code == 302


@pytest.mark.django_db
def test_the_admin_site_locks_the_failing_address_only(client):
    UserFactory(username="root", is_staff=True, is_superuser=True)
    admin_login = "/admin/login/?next=/admin/"
    for _ in range(5):
        _sign_in(client, "root", "wrong-guess", MALLORY, path=admin_login)
    assert _sign_in(client, "root", PASSWORD, MALLORY, path=admin_login).status_code == 429
    assert "_auth_user_id" not in client.session
    signed_in = _sign_in(client, "root", PASSWORD, ALICE_HOME, path=admin_login)
    assert signed_in.status_code == 302 and signed_in.url == "/admin/"


@pytest.mark.django_db
def test_lockout_ends_one_cool_off_after_the_last_attempt(settings):
    settings.AXES_COOLOFF_TIME = settings.AXES_COOLOFF_TIME.__class__(seconds=60)
    user = UserFactory(username="bob")
    with time_machine.travel(1_900_000_000, tick=False) as clock:
        for _ in range(5):
            assert authenticate(_request(MALLORY), username="bob", password="wrong") is None
        clock.shift(59)
        assert authenticate(_request(MALLORY), username="bob", password=PASSWORD) is None  # restarts it
        clock.shift(59)
        assert authenticate(_request(MALLORY), username="bob", password=PASSWORD) is None
        clock.shift(61)
        assert authenticate(_request(MALLORY), username="bob", password=PASSWORD) == user


@pytest.mark.django_db
def test_an_address_failing_across_accounts_is_paused_briefly_and_longer_each_time(settings):
    settings.SIGNIN_MAX_FAILURES_PER_ADDRESS = 3
    settings.SIGNIN_ADDRESS_MAX_PAUSE_SECONDS = 4
    user = UserFactory(username="carol")
    with time_machine.travel(1_900_000_000, tick=False) as clock:
        for name in ("a", "b"):
            assert authenticate(_request(MALLORY), username=name, password="x") is None
        assert authenticate(_request(MALLORY), username="carol", password=PASSWORD) == user  # not yet
        assert authenticate(_request(MALLORY), username="c", password="x") is None  # third failure: 1 s
        request = _request(MALLORY)
        assert authenticate(request, username="carol", password=PASSWORD) is None
        assert request.signin_slowdown.seconds == 1
        assert authenticate(_request(ALICE_HOME), username="carol", password=PASSWORD) == user  # others unaffected
        pauses = []
        for _ in range(4):
            clock.shift(5)
            assert authenticate(_request(MALLORY), username=secrets.token_hex(4), password="x") is None
            request = _request(MALLORY)
            authenticate(request, username="carol", password=PASSWORD)
            pauses.append(request.signin_slowdown.seconds)
        assert pauses == [2, 4, 4, 4]  # grows, up to the maximum
        # Refused attempts never reached a password check, so they did not count against carol:
        # once the pause is over she signs in from that address too.
        clock.shift(5)
        assert authenticate(_request(MALLORY), username="carol", password=PASSWORD) == user


@pytest.mark.django_db
def test_the_back_off_fails_open_while_the_cache_is_down(settings):
    user = UserFactory(username="dave")
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    AxesProxyHandler.get_implementation(force=True)
    try:
        for _ in range(40):
            assert authenticate(_request(MALLORY), username="dave", password="wrong") is None
        assert authenticate(_request(MALLORY), username="dave", password=PASSWORD) == user
    finally:
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
        AxesProxyHandler.get_implementation(force=True)


# --- Point 13: password reset is throttled, and says nothing about accounts -------------------------


@pytest.fixture
def eager():
    """Run the enqueued e-mail task in-process, as a worker would."""
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def _reset(client, email: str, address: str):
    return client.post("/accounts/password_reset/", {"email": email}, **_via_proxy(address))


@pytest.mark.django_db
def test_ten_reset_requests_for_one_account_send_at_most_the_limit(client, eager, settings):
    settings.PASSWORD_RESET_MAX_PER_ACCOUNT = 3
    UserFactory(username="erin", email="erin@example.com")
    answers = {
        (r.status_code, r.url)
        for r in (_reset(client, "erin@example.com", f"192.0.2.{n}") for n in range(10))  # one address each
    }
    assert answers == {(302, "/accounts/password_reset/done/")}
    assert [m.to for m in mail.outbox] == [["erin@example.com"]] * 3


@pytest.mark.django_db
def test_reset_requests_from_one_address_send_at_most_the_limit(client, eager, settings):
    settings.PASSWORD_RESET_MAX_PER_ADDRESS = 5
    for n in range(10):
        UserFactory(username=f"user-{n}", email=f"user-{n}@example.com")
    for n in range(10):
        assert _reset(client, f"user-{n}@example.com", MALLORY).status_code == 302
    assert len(mail.outbox) == 5
    # Another address is not affected.
    assert _reset(client, "user-9@example.com", ALICE_HOME).status_code == 302
    assert mail.outbox[-1].to == ["user-9@example.com"] and len(mail.outbox) == 6


@pytest.mark.django_db
def test_reset_answers_the_same_whether_or_not_the_account_exists(client, eager, settings):
    settings.PASSWORD_RESET_MAX_PER_ACCOUNT = 1
    UserFactory(username="frank", email="frank@example.com")

    def answer(email: str) -> tuple:
        response = _reset(client, email, "192.0.2.1")
        return response.status_code, response.url, response.content

    known, unknown = answer("frank@example.com"), answer("nobody@example.com")
    assert known == unknown == (302, "/accounts/password_reset/done/", b"")
    # Beyond the limit the answer is still the same, for both; only the known one got (one) e-mail.
    assert answer("Frank@Example.com ") == answer("nobody@example.com") == known
    assert [m.to for m in mail.outbox] == [["frank@example.com"]]


@pytest.mark.django_db
def test_a_reset_request_does_the_same_work_whether_or_not_the_account_exists(
    client, monkeypatch, django_assert_num_queries
):
    UserFactory(username="grace", email="grace@example.com")
    queued = []
    monkeypatch.setattr(password_reset_mail_send_task, "delay", lambda *args: queued.append(args))
    # No account lookup and no e-mail inside the request: its time cannot tell a known address from another.
    for email in ("grace@example.com", "nobody@example.com"):
        with django_assert_num_queries(0):
            assert _reset(client, email, ALICE_HOME).status_code == 302
    assert queued == [("grace@example.com", "testserver", False), ("nobody@example.com", "testserver", False)]
    assert mail.outbox == []
