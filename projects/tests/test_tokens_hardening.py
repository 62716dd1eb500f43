"""Tokens no longer outlive the password: each test performs the attack and checks it fails.

Expiry, re-authentication to mint, the cap, revocation on every password change and on
sign-out-everywhere, and service tokens held to their organization and scope.
"""

import datetime as dt
import importlib
from io import StringIO

import pytest
from django.contrib.auth.forms import SetPasswordForm
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from rest_framework.test import APIClient

from ops.models import CostEntry, Risk
from projects import services
from projects.models import ApiToken, AuditEvent, Membership, Role, ServiceAccount, TokenScope
from projects.tests.api_support import _fresh_throttle  # noqa: F401
from projects.tests.factories import MembershipFactory, OrganizationFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"  # the factories' password
NEW_PASSWORD = "a-new-long-passphrase-42"


def bearer(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def works(key: str) -> bool:
    status = bearer(key).get("/api/v1/projects/").status_code
    assert status in (200, 401), status
    return status == 200


@pytest.fixture
def alice():
    return MembershipFactory(user=UserFactory(username="alice"), role=Role.ADMIN).user


# --- A password change revokes personal tokens, on every path -----------------------------------


def test_password_change_view_revokes_personal_tokens_and_records_it(client, alice):
    token, key = services.api_token_create(user=alice, name="gateway")
    client.force_login(alice)
    page = client.get(reverse("password_change")).content.decode()
    assert "revokes your personal API tokens" in page
    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        follow=True,
    )
    assert response.status_code == 200 and "personal API tokens are revoked" in response.content.decode()
    assert not works(key)
    event = AuditEvent.objects.get(object_type="projects.apitoken", object_id=str(token.pk), action="update")
    assert set(event.changes) == {"revoked_at"} and event.actor_id == alice.pk


def test_password_reset_revokes_personal_tokens(alice):
    _, key = services.api_token_create(user=alice, name="gateway")
    form = SetPasswordForm(alice, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert form.is_valid()
    form.save()
    assert not works(key)


def test_password_reset_link_revokes_personal_tokens(client, alice):
    _, key = services.api_token_create(user=alice, name="gateway")
    uid = urlsafe_base64_encode(force_bytes(alice.pk))
    url = reverse("password_reset_confirm", args=[uid, default_token_generator.make_token(alice)])
    form_url = client.get(url, follow=True).redirect_chain[-1][0]
    client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    assert not works(key)


def test_admin_password_change_revokes_personal_tokens(admin_client, alice):
    _, key = services.api_token_create(user=alice, name="gateway")
    url = reverse("admin:auth_user_password_change", args=[alice.pk])
    admin_client.post(url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"})
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    assert not works(key)


def test_changepassword_command_revokes_personal_tokens(alice, monkeypatch):
    _, key = services.api_token_create(user=alice, name="gateway")
    monkeypatch.setattr("getpass.getpass", lambda prompt="": NEW_PASSWORD)
    call_command("changepassword", "alice", stdout=StringIO())
    assert not works(key)


def test_sign_out_everywhere_revokes_personal_tokens_but_not_service_tokens(client, alice):
    _, key = services.api_token_create(user=alice, name="gateway")
    organization = alice.memberships.get().organization
    _, service_key = services.service_token_create(organization=organization, scope="read", name="bi", by=alice)
    client.force_login(alice)
    response = client.post(reverse("projects:sign-out-everywhere"), follow=True)
    assert "personal API tokens are revoked" in response.content.decode()
    assert not works(key)
    assert works(service_key)


# --- Minting needs the password; a token never mints ------------------------------------------


def test_stolen_session_cannot_mint_a_token_through_the_api_without_the_password(alice):
    client = APIClient()
    client.force_login(alice)
    assert client.post("/api/v1/auth/tokens/", {"name": "thief"}, format="json").status_code == 400
    response = client.post("/api/v1/auth/tokens/", {"name": "thief", "password": "guess"}, format="json")
    assert response.status_code == 400 and "password" in response.json()["errors"]
    assert not ApiToken.objects.exists()
    response = client.post("/api/v1/auth/tokens/", {"name": "mine", "password": PASSWORD}, format="json")
    assert response.status_code == 201 and works(response.json()["key"])


def test_wrong_passwords_on_the_token_form_count_towards_the_sign_in_back_off(client, alice):
    client.force_login(alice)
    for _ in range(5):
        client.post(reverse("projects:tokens"), {"name": "thief", "expires_at": "2099-01-01", "password": "guess"})
    day = (timezone.localdate() + dt.timedelta(days=30)).isoformat()
    response = client.post(reverse("projects:tokens"), {"name": "thief", "expires_at": day, "password": PASSWORD})
    assert "Too many failed sign-ins" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_stolen_session_cannot_mint_a_token_on_the_page_without_the_password(client, alice):
    client.force_login(alice)
    day = (timezone.localdate() + dt.timedelta(days=30)).isoformat()
    response = client.post(reverse("projects:tokens"), {"name": "thief", "expires_at": day, "password": "guess"})
    assert response.context["form"].errors["password"]
    assert not ApiToken.objects.exists()
    response = client.post(reverse("projects:tokens"), {"name": "mine", "expires_at": day, "password": PASSWORD})
    assert response.context["created_key"]
    assert ApiToken.objects.get().expires_at.date().isoformat() == day


def test_a_service_token_cannot_mint_or_list_tokens(alice):
    organization = alice.memberships.get().organization
    _, key = services.service_token_create(organization=organization, scope="ingest", name="otlp", by=alice)
    client = bearer(key)
    assert client.get("/api/v1/auth/tokens/").status_code == 403
    assert client.get("/api/v1/service-tokens/").status_code == 403
    assert client.post("/api/v1/service-tokens/", {"name": "x"}, format="json").status_code == 403
    assert ApiToken.objects.count() == 1


# --- Expiry -------------------------------------------------------------------------------------


def test_expired_token_is_refused_with_401(alice):
    token, key = services.api_token_create(user=alice, name="gateway")
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = bearer(key).get("/api/v1/projects/")
    assert response.status_code == 401 and response.json()["detail"] == "Token expired."


def test_expiry_defaults_to_90_days_and_is_shown_in_the_list(client, alice):
    before = timezone.now()
    token, _ = services.api_token_create(user=alice, name="gateway")
    assert dt.timedelta(days=90) <= token.expires_at - before < dt.timedelta(days=90, minutes=1)
    client.force_login(alice)
    assert token.expires_at.strftime("%-d %b %Y") in client.get(reverse("projects:tokens")).content.decode()
    listed = APIClient()
    listed.force_login(alice)
    assert listed.get("/api/v1/auth/tokens/").json()["results"][0]["expires_at"]


def test_expiry_in_the_past_or_beyond_the_longest_lifetime_is_refused(alice):
    for days in (-1, 366):
        with pytest.raises(services.ValidationFailed):
            services.api_token_create(user=alice, name="x", expires_at=timezone.now() + dt.timedelta(days=days))
    assert not ApiToken.objects.exists()


def test_migration_gives_existing_tokens_an_expiry_never_sooner_than_the_grace():
    migration = importlib.import_module("projects.migrations.0005_api_token_expiry_and_service_tokens")
    now = timezone.now()
    recent, old = now - dt.timedelta(days=10), now - dt.timedelta(days=200)
    assert migration.expiry_for(recent, now) == recent + dt.timedelta(days=90)
    assert migration.expiry_for(old, now) == now + dt.timedelta(days=14)


def test_expiry_warning_is_mailed_once_with_a_constant_subject(alice):
    soon, _ = services.api_token_create(user=alice, name="gateway\r\nBcc: x@evil", expires_at=_in(days=5))
    services.api_token_create(user=alice, name="later", expires_at=_in(days=30))
    assert services.api_token_expiry_warnings_send() == 1
    assert services.api_token_expiry_warnings_send() == 0
    (message,) = mail.outbox
    assert message.subject == services.TOKEN_EXPIRY_SUBJECT and message.to == [alice.email]
    assert "gateway" in message.body and "later" not in message.body
    soon.refresh_from_db()
    assert soon.expiry_warned_at is not None


def _in(*, days: int) -> dt.datetime:
    return timezone.now() + dt.timedelta(days=days)


# --- The cap ------------------------------------------------------------------------------------


@override_settings(API_TOKENS_PER_USER=2)
def test_one_token_past_the_cap_is_refused_in_the_api_and_the_page(client, alice):
    first, _ = services.api_token_create(user=alice, name="one")
    services.api_token_create(user=alice, name="two")
    api = APIClient()
    api.force_login(alice)
    response = api.post("/api/v1/auth/tokens/", {"name": "three", "password": PASSWORD}, format="json")
    assert response.status_code == 409 and "revoke one" in response.json()["detail"]
    client.force_login(alice)
    day = _in(days=10).date().isoformat()
    page = client.post(reverse("projects:tokens"), {"name": "three", "expires_at": day, "password": PASSWORD})
    assert "the most allowed" in page.content.decode()
    assert ApiToken.objects.count() == 2
    services.api_token_revoke(token=first, by=alice)  # a revoked (or expired) token frees its place
    assert api.post("/api/v1/auth/tokens/", {"name": "three", "password": PASSWORD}, format="json").status_code == 201


@override_settings(API_SERVICE_TOKENS_PER_ORGANIZATION=1)
def test_service_tokens_are_capped_per_organization(alice):
    organization = alice.memberships.get().organization
    services.service_token_create(organization=organization, scope="read", name="one", by=alice)
    with pytest.raises(services.Conflict):
        services.service_token_create(organization=organization, scope="ingest", name="two", by=alice)
    assert ApiToken.objects.count() == 1


# --- Service tokens -----------------------------------------------------------------------------


@pytest.fixture
def acme(alice):
    organization = alice.memberships.get().organization
    project = ProjectFactory(organization=organization, name="Acme bot")
    _, ingest_key = services.service_token_create(organization=organization, scope="ingest", name="gateway", by=alice)
    return organization, project, ingest_key


def test_service_token_survives_its_creators_password_change_and_removal(alice, acme):
    organization, _, key = acme
    other_admin = MembershipFactory(organization=organization, role=Role.ADMIN).user
    alice.set_password(NEW_PASSWORD)
    alice.save()
    services.membership_delete(membership=alice.memberships.get(), by=other_admin)
    assert works(key)


def test_ingest_token_pushes_costs_and_its_history_names_the_service(acme):
    organization, project, key = acme
    entry = {"project": project.pk, "date": "2026-03-05", "category": "inference", "amount": "2.00"}
    response = bearer(key).post("/api/v1/costs/bulk/", {"entries": [{**entry, "external_id": "a"}]}, format="json")
    assert response.status_code == 201, response.json()
    event = AuditEvent.objects.get(object_type="ops.costentry")
    assert event.actor_id is None and event.token_id is not None
    assert event.actor_repr.startswith("service token “gateway”") and organization.name in event.actor_repr


def test_ingest_token_cannot_write_outside_the_ingest_endpoints(acme):
    _, project, key = acme
    client = bearer(key)
    risk = {"project": project.pk, "title": "t", "category": "cost", "likelihood": 1, "impact": 1}
    response = client.post("/api/v1/risks/", risk, format="json")
    assert response.status_code == 403 and "ingest" in response.json()["detail"]
    assert client.patch(f"/api/v1/projects/{project.pk}/", {"name": "x"}, format="json").status_code == 403
    entry = {"project": project.pk, "date": "2026-03-05", "category": "inference", "amount": "2.00"}
    assert client.post("/api/v1/costs/", entry, format="json").status_code == 403
    assert not Risk.objects.exists() and not CostEntry.objects.exists()


def test_read_token_reads_but_cannot_ingest(alice, acme):
    organization, project, _ = acme
    _, key = services.service_token_create(organization=organization, scope="read", name="bi", by=alice)
    client = bearer(key)
    assert [p["name"] for p in client.get("/api/v1/projects/").json()["results"]] == ["Acme bot"]
    entry = {"project": project.pk, "date": "2026-03-05", "category": "inference", "amount": "2.00"}
    assert client.post("/api/v1/costs/bulk/", {"entries": [entry]}, format="json").status_code == 403
    assert not CostEntry.objects.exists()


def test_service_token_sees_nothing_of_another_organization(acme):
    _, _, key = acme
    elsewhere = ProjectFactory(name="Elsewhere")
    client = bearer(key)
    assert client.get(f"/api/v1/projects/{elsewhere.pk}/").status_code == 404
    entry = {"project": elsewhere.pk, "date": "2026-03-05", "category": "inference", "amount": "2.00"}
    assert client.post("/api/v1/costs/bulk/", {"entries": [entry]}, format="json").status_code == 400
    assert not CostEntry.objects.exists()


def test_service_account_cannot_be_given_another_membership(alice, acme):
    account = ServiceAccount.objects.get()
    other = MembershipFactory(user=alice, organization=OrganizationFactory(), role=Role.ADMIN).organization
    operator = UserFactory(is_staff=True, is_superuser=True)
    with pytest.raises(services.ValidationFailed):  # not even a platform operator adds it elsewhere
        services.membership_create(organization=other, user=account.user, role=Role.ADMIN, by=operator)
    own = Membership.objects.get(user=account.user)
    with pytest.raises(services.ValidationFailed):  # nor widens its role at home
        services.membership_role_set(membership=own, role=Role.ADMIN, by=alice)
    assert list(Membership.objects.filter(user=account.user).values_list("role", flat=True)) == [Role.CONTRIBUTOR]
    api = APIClient()
    api.force_login(alice)
    names = [m["username"] for m in api.get("/api/v1/memberships/").json()["results"]]
    assert account.user.username not in names


def test_service_account_cannot_sign_in(acme):
    account = ServiceAccount.objects.get()
    assert not account.user.has_usable_password()


def test_only_admins_create_service_tokens_and_they_need_the_password(acme):
    organization, _, _ = acme
    manager = MembershipFactory(organization=organization, role=Role.MANAGER).user
    with pytest.raises(services.NotPermitted):
        services.service_token_create(organization=organization, scope="read", name="x", by=manager)
    api = APIClient()
    api.force_login(manager)
    body = {"organization": organization.pk, "name": "x", "scope": "read", "password": PASSWORD}
    assert api.post("/api/v1/service-tokens/", body, format="json").status_code == 403
    assert ApiToken.objects.filter(organization=organization).count() == 1


def test_admin_creates_lists_and_revokes_a_service_token_through_the_api(alice, acme):
    organization, _, _ = acme
    api = APIClient()
    api.force_login(alice)
    body = {"organization": organization.pk, "name": "otlp", "scope": TokenScope.READ}
    assert api.post("/api/v1/service-tokens/", body, format="json").status_code == 400  # no password
    response = api.post("/api/v1/service-tokens/", {**body, "password": PASSWORD}, format="json")
    assert response.status_code == 201 and response.json()["scope"] == "read"
    key, pk = response.json()["key"], response.json()["id"]
    assert works(key)
    listed = api.get("/api/v1/service-tokens/").json()["results"]
    assert {t["name"] for t in listed} == {"otlp", "gateway"} and all("key" not in t for t in listed)
    assert api.delete(f"/api/v1/service-tokens/{pk}/").status_code == 204
    assert not works(key)


def test_admin_creates_and_revokes_a_service_token_on_the_page(client, alice, acme):
    client.force_login(alice)
    page = client.get(reverse("settings:service-tokens")).content.decode()
    assert "<td>gateway" in page
    # The personal tokens' page lists personal tokens only, and points to the organization's.
    personal = client.get(reverse("projects:tokens")).content.decode()
    assert "<td>gateway" not in personal and reverse("settings:service-tokens") in personal
    response = client.post(
        reverse("settings:service-tokens"), {"name": "collector", "scope": "read", "password": PASSWORD}
    )
    assert response.context["created_key"] and works(response.context["created_key"])
    token = ApiToken.objects.get(name="collector")
    assert token.organization_id == acme[0].pk and token.expires_at is None and token.created_by == alice
    client.post(reverse("settings:service-token-revoke", args=[token.pk]))
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_members_who_are_not_admins_see_no_service_tokens(client, acme):
    viewer = MembershipFactory(organization=acme[0], role=Role.VIEWER).user
    client.force_login(viewer)
    page = client.get(reverse("projects:tokens")).content.decode()
    assert "service tokens" not in page and "<td>gateway" not in page
    token = ApiToken.objects.get(name="gateway")
    assert client.get(reverse("settings:service-tokens")).status_code == 403
    assert client.post(reverse("settings:service-tokens"), {"name": "x", "scope": "read"}).status_code == 403
    assert client.post(reverse("settings:service-token-revoke", args=[token.pk])).status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None and ApiToken.objects.count() == 1
