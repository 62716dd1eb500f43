"""Security headers, request-size bounds, signing out everywhere.

The sign-in back-off is tested in projects/tests/test_signin_hardening.py.
"""

import json

import pytest

from projects.tests.factories import UserFactory


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
