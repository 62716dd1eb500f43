"""Authentication, tokens, throttling and the error shape of the API."""

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone
from rest_framework.settings import api_settings
from rest_framework.test import APIClient

from projects.models import ApiToken, Project, Role
from projects.services import api_token_create
from projects.tests.api_support import _fresh_throttle, client_for, member  # noqa: F401
from projects.tests.factories import OrganizationFactory, UserFactory
from projects.tokens import hash_key

pytestmark = pytest.mark.django_db


def test_anonymous_request_is_refused_with_401_in_the_error_shape():
    response = APIClient().get("/api/v1/projects/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_token_is_stored_hashed_and_authenticates():
    user = UserFactory()
    token, key = api_token_create(user=user, name="gateway")
    assert token.key_hash == hash_key(key) and key not in token.key_hash
    assert not ApiToken.objects.filter(key_hash=key).exists()
    assert token.prefix == key[:8]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get("/api/v1/organizations/").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_revoked_or_unknown_token_is_refused():
    user = UserFactory()
    token, key = api_token_create(user=user, name="old")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    client.delete(f"/api/v1/auth/tokens/{token.pk}/")
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert client.get("/api/v1/projects/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION="Bearer llmt_not-a-real-token")
    assert client.get("/api/v1/projects/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION="Bearer two parts")
    assert client.get("/api/v1/projects/").status_code == 401


def test_signed_in_session_creates_a_token_shown_once():
    user = UserFactory()
    client = APIClient()
    client.force_login(user)
    response = client.post(
        "/api/v1/auth/tokens/", {"name": "BI export", "password": "correct-horse-battery"}, format="json"
    )
    assert response.status_code == 201
    key = response.json()["key"]
    assert ApiToken.objects.get(user=user).key_hash == hash_key(key)
    listed = client.get("/api/v1/auth/tokens/").json()["results"]
    assert [t["name"] for t in listed] == ["BI export"] and "key" not in listed[0]


def test_a_token_cannot_mint_another_token():
    client = client_for(UserFactory())
    response = client.post("/api/v1/auth/tokens/", {"name": "sneaky"}, format="json")
    assert response.status_code == 403
    assert ApiToken.objects.count() == 1


def test_token_without_a_name_is_refused():
    client = APIClient()
    client.force_login(UserFactory())
    response = client.post("/api/v1/auth/tokens/", {"name": "  "}, format="json")
    assert response.status_code == 400
    assert not ApiToken.objects.exists()


def test_another_users_token_is_invisible_and_cannot_be_revoked():
    owner, other = UserFactory(), UserFactory()
    token, _ = api_token_create(user=owner, name="mine")
    client = client_for(other)
    assert client.delete(f"/api/v1/auth/tokens/{token.pk}/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_create_api_token_command_prints_the_token_last():
    user = UserFactory(username="gateway-bot")
    out = StringIO()
    call_command("create_api_token", "gateway-bot", "--name", "nightly usage", stdout=out)
    key = out.getvalue().strip().splitlines()[-1]
    token = ApiToken.objects.get(user=user)
    assert token.name == "nightly usage" and token.key_hash == hash_key(key)


def test_last_used_is_written_at_most_once_a_minute():
    user = UserFactory()
    token, key = api_token_create(user=user, name="t")
    recent = timezone.now() - dt.timedelta(seconds=10)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=recent)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    client.get("/api/v1/organizations/")
    token.refresh_from_db()
    assert token.last_used_at == recent


def test_throttle_answers_429_with_retry_after_per_user():
    organization = OrganizationFactory()
    user = member(organization)
    first, second = client_for(user), client_for(user)
    someone_else = client_for(member(organization))
    rates = {**api_settings.DEFAULT_THROTTLE_RATES, "api": "3/minute"}
    with override_settings(REST_FRAMEWORK={**_rest_framework(), "DEFAULT_THROTTLE_RATES": rates}):
        codes = [first.get("/api/v1/organizations/").status_code for _ in range(4)]
        refused = first.get("/api/v1/organizations/")
        other_token = second.get("/api/v1/organizations/")
        other_user = someone_else.get("/api/v1/organizations/")
    assert codes == [200, 200, 200, 429]
    assert refused.json()["code"] == "throttled"
    assert int(refused.headers["Retry-After"]) > 0
    assert other_token.status_code == 429  # the user's counter, whichever token they use
    assert other_user.status_code == 200


def _rest_framework() -> dict:
    from django.conf import settings

    return dict(settings.REST_FRAMEWORK)


def test_malformed_json_is_a_400_and_writes_nothing():
    organization = OrganizationFactory()
    client = client_for(member(organization, Role.CONTRIBUTOR))
    response = client.post("/api/v1/projects/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert not Project.objects.exists()


def test_non_json_content_type_is_refused():
    organization = OrganizationFactory()
    client = client_for(member(organization, Role.CONTRIBUTOR))
    response = client.post("/api/v1/projects/", "name=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert set(response.json()) == {"detail", "code", "errors"}
