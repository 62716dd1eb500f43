"""The API token page: create (key shown once), list with last use, revoke."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from projects.models import ApiToken, Role
from projects.services import api_token_create
from projects.tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def in_30_days() -> str:
    return (timezone.localdate() + dt.timedelta(days=30)).isoformat()


@pytest.fixture
def user(client):
    user = UserFactory()
    MembershipFactory(user=user, role=Role.VIEWER)
    client.force_login(user)
    return user


def test_anonymous_users_are_sent_to_sign_in(client):
    assert client.get(reverse("projects:tokens")).status_code == 302


def test_empty_state_invites_to_create_one(client, user):
    assert "No token yet" in client.get(reverse("projects:tokens")).content.decode()


def test_created_key_is_shown_once_and_only_its_hash_is_kept(client, user):
    response = client.post(
        reverse("projects:tokens"),
        {"name": "Gateway push", "expires_at": in_30_days(), "password": "correct-horse-battery"},
    )
    key = response.context["created_key"]
    assert key and key in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    token = ApiToken.objects.get(user=user)
    assert token.name == "Gateway push" and key.startswith(token.prefix) and key not in token.key_hash
    assert key not in client.get(reverse("projects:tokens")).content.decode()


def test_blank_name_shows_an_error_and_creates_nothing(client, user):
    response = client.post(reverse("projects:tokens"), {"name": "  "})
    assert response.context["form"].errors["name"]
    assert not ApiToken.objects.exists()


def test_list_shows_last_use_and_only_own_tokens(client, user):
    token, _ = api_token_create(user=user, name="BI pull")
    token.last_used_at = timezone.now()
    token.save()
    api_token_create(user=UserFactory(), name="Someone else's")
    page = client.get(reverse("projects:tokens")).content.decode()
    assert "BI pull" in page and "Never" not in page and "Someone else" not in page


def test_revoke_own_token(client, user):
    token, _ = api_token_create(user=user, name="Old")
    response = client.post(reverse("projects:token-revoke", args=[token.pk]))
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert "Revoked" in client.get(reverse("projects:tokens")).content.decode()


def test_revoking_another_users_token_is_404_and_leaves_it_active(client, user):
    token, _ = api_token_create(user=UserFactory(), name="Theirs")
    assert client.post(reverse("projects:token-revoke", args=[token.pk])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
