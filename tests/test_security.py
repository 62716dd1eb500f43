"""Sign-in back-off, security headers and request-size bounds."""

import json

import pytest
import time_machine
from django.contrib.auth import authenticate
from django.core.cache import cache
from django.test import RequestFactory

from projects.auth import SignInForm, signin_lockout
from projects.tests.factories import UserFactory

PASSWORD = "correct-horse-battery"


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


def _request(address: str = "10.0.0.1"):
    return RequestFactory().post("/accounts/login/", REMOTE_ADDR=address)


def _fail(username: str, times: int, address: str = "10.0.0.1") -> None:
    for _ in range(times):
        assert authenticate(_request(address), username=username, password="wrong") is None


@pytest.mark.django_db
def test_account_locked_after_repeated_failures_even_with_right_password(settings):
    settings.SIGNIN_MAX_FAILURES_PER_ACCOUNT = 5
    user = UserFactory(username="alice")
    _fail("alice", 4)
    assert authenticate(_request(), username="alice", password=PASSWORD) == user  # success resets the count
    _fail("alice", 5)
    assert authenticate(_request(), username="alice", password=PASSWORD) is None


@pytest.mark.django_db
def test_lockout_expires_and_backs_off(settings):
    settings.SIGNIN_MAX_FAILURES_PER_ACCOUNT = 3
    settings.SIGNIN_LOCKOUT_SECONDS = 60
    UserFactory(username="bob")
    with time_machine.travel(1_900_000_000, tick=False) as clock:
        _fail("bob", 3)
        assert signin_lockout(username="bob", request=_request()).seconds == 60
        clock.shift(61)
        assert authenticate(_request(), username="bob", password=PASSWORD) is not None
        _fail("bob", 3)
        assert authenticate(_request(), username="bob", password=PASSWORD) is None  # refused, and counted:
        assert signin_lockout(username="bob", request=_request()).seconds == 120
        clock.shift(121)
        assert signin_lockout(username="bob", request=_request()) is None
        assert authenticate(_request(), username="bob", password=PASSWORD) is not None


@pytest.mark.django_db
def test_address_locked_after_failures_across_accounts(settings):
    settings.SIGNIN_MAX_FAILURES_PER_ADDRESS = 6
    UserFactory(username="carol")
    for name in ("a", "b", "c", "d", "e", "f"):
        _fail(name, 1, address="10.9.9.9")
    assert authenticate(_request("10.9.9.9"), username="carol", password=PASSWORD) is None
    assert authenticate(_request("10.1.1.1"), username="carol", password=PASSWORD) is not None


@pytest.mark.django_db
def test_sign_in_form_says_the_account_is_locked(settings):
    settings.SIGNIN_MAX_FAILURES_PER_ACCOUNT = 2
    UserFactory(username="dave")
    _fail("dave", 2)
    form = SignInForm(request=_request(), data={"username": "dave", "password": PASSWORD})
    assert not form.is_valid()
    assert "Too many failed sign-ins" in form.non_field_errors()[0]


@pytest.mark.django_db
def test_security_headers_on_every_page(client):
    response = client.get("/admin/login/")
    csp = response.headers["Content-Security-Policy"]
    script_src = next(part for part in csp.split(";") if part.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.django_db
def test_a_50_mb_json_body_is_refused_unread(client):
    body = json.dumps({"entries": ["x" * 1024] * (50 * 1024)})
    response = client.post("/api/v1/costs/bulk/", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"


@pytest.mark.django_db
def test_malformed_content_length_is_a_400(client):
    response = client.post("/admin/login/", data="x", content_type="text/plain", CONTENT_LENGTH="abc")
    assert response.status_code == 400


@pytest.mark.django_db
def test_sign_out_everywhere_revokes_every_session_of_the_user_only():
    from django.test import Client

    from projects.services import user_sessions_revoke

    alice, bob = UserFactory(username="alice2"), UserFactory(username="bob2")
    laptop, phone, other = Client(), Client(), Client()
    laptop.force_login(alice)
    phone.force_login(alice)
    other.force_login(bob)
    assert user_sessions_revoke(user=alice) == 2
    assert laptop.get("/admin/").status_code == 302  # back to sign-in
    assert phone.get("/admin/").status_code == 302
    assert "_auth_user_id" in other.session


@pytest.mark.django_db
def test_sign_out_everywhere_button_ends_this_and_other_sessions(client):
    from django.test import Client

    from projects.tests.factories import MembershipFactory

    user = MembershipFactory().user
    other_device = Client()
    other_device.force_login(user)
    client.force_login(user)
    response = client.post("/account/sign-out-everywhere/")
    assert response.status_code == 302 and response.url == "/accounts/login/"
    assert other_device.get("/").status_code == 302
    assert client.get("/").status_code == 302


@pytest.mark.django_db
def test_sign_in_page_reports_a_lockout(client, settings):
    settings.SIGNIN_MAX_FAILURES_PER_ACCOUNT = 2
    UserFactory(username="erin")
    for _ in range(2):
        client.post("/accounts/login/", {"username": "erin", "password": "wrong"})
    response = client.post("/accounts/login/", {"username": "erin", "password": PASSWORD})
    assert response.status_code == 200
    assert "Too many failed sign-ins" in response.content.decode()
