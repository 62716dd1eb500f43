"""Members and invitations, attacked as a tenant would: the last admin, cross-tenant enrolment, the gating fields.

Each test performs the attack and asserts what was, and what was not, written.
"""

import datetime as dt
import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from ops.demo import demo_users_ensure
from projects import services
from projects.models import AIActTier, AuditEvent, DataClassification, Invitation, Membership, Role
from projects.tests.api_support import _fresh_throttle, client_for  # noqa: F401
from projects.tests.factories import MembershipFactory, OrganizationFactory, ProjectFactory, member
from tests.concurrency import at_once
from tracker.exceptions import Conflict

User = get_user_model()
pytestmark = pytest.mark.django_db
LINK = re.compile(r"https?://\S+/invitations/accept/([\w-]+)/")


def _history(obj) -> int:
    return AuditEvent.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk)).count()


def _web(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _invite(client, org, email: str, role: str = Role.CONTRIBUTOR, *, capture) -> tuple[object, str]:
    """Invite through the API; return the response and the key of the link e-mailed (or "")."""
    sent = len(mail.outbox)
    with capture(execute=True):
        response = client.post(
            "/api/v1/invitations/", {"organization": org.pk, "email": email, "role": role}, format="json"
        )
    found = [LINK.search(m.body) for m in mail.outbox[sent:]]
    return response, found[-1].group(1) if found and found[-1] else ""


@pytest.fixture
def admin(org):
    return member(org, Role.ADMIN)


# --- 3. The last admin ----------------------------------------------------------------------------


def test_the_only_admin_demoting_themselves_answers_409_and_writes_nothing(org, admin):
    own = Membership.objects.get(user=admin, organization=org)
    before = _history(own)
    response = client_for(admin).patch(f"/api/v1/memberships/{own.pk}/", {"role": "viewer"}, format="json")
    assert response.status_code == 409, response.json()
    assert response.json()["errors"] == {"role": ["The last admin."]}
    own.refresh_from_db()
    assert own.role == Role.ADMIN and _history(own) == before


def test_an_admin_may_step_down_when_another_admin_remains(org, admin):
    member(org, Role.ADMIN)
    own = Membership.objects.get(user=admin, organization=org)
    response = client_for(admin).patch(f"/api/v1/memberships/{own.pk}/", {"role": "manager"}, format="json")
    assert response.status_code == 200 and response.json()["role"] == "manager"


@pytest.mark.django_db(transaction=True)
def test_two_admins_demoting_each_other_at_once_leave_one_admin():
    org = OrganizationFactory()
    first, second = (MembershipFactory(organization=org, role=Role.ADMIN) for _ in range(2))

    def demote(membership, by):
        return lambda: services.membership_role_set(membership=membership, role=Role.VIEWER, by=by)

    results = at_once(demote(first, second.user), demote(second, first.user))
    # The loser is refused either as the last admin or, when the winner committed before its permission
    # check, as no longer an admin: both leave the organization its one admin.
    winners = [r for r in results if isinstance(r, Membership)]
    losers = [type(r).__name__ for r in results if not isinstance(r, Membership)]
    assert len(winners) == 1 and losers in (["Conflict"], ["NotPermitted"]), results
    assert Membership.objects.filter(organization=org, role=Role.ADMIN).count() == 1


def test_the_admin_site_refuses_to_demote_or_remove_the_last_admin(admin_client, org, admin):
    own = Membership.objects.get(user=admin, organization=org)
    url = reverse("admin:projects_membership_change", args=[own.pk])
    response = admin_client.post(url, {"role": "viewer"}, follow=True)
    assert "An organization keeps at least one admin" in response.content.decode()
    assert "was changed successfully" not in response.content.decode()
    response = admin_client.post(reverse("admin:projects_membership_delete", args=[own.pk]), {"post": "yes"})
    assert response.status_code == 302
    own.refresh_from_db()
    assert own.role == Role.ADMIN


def test_the_admin_site_changes_a_role_through_the_service(admin_client, org, admin, viewer):
    membership = Membership.objects.get(user=viewer, organization=org)
    response = admin_client.post(reverse("admin:projects_membership_change", args=[membership.pk]), {"role": "manager"})
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.role == Role.MANAGER
    assert AuditEvent.objects.filter(object_type="projects.membership", object_id=str(membership.pk)).exists()


def test_the_members_page_shows_the_refusal_on_the_last_admins_row(org, admin):
    own = Membership.objects.get(user=admin, organization=org)
    response = _web(admin).post(reverse("settings:member-role", args=[own.pk]), {"role": "viewer"})
    assert response.status_code == 200
    assert "An organization keeps at least one admin" in response.content.decode()
    own.refresh_from_db()
    assert own.role == Role.ADMIN


# --- 7. Cross-tenant enrolment -------------------------------------------------------------------


def test_adding_a_user_of_another_organization_by_username_is_gone_and_tells_nothing(org, admin):
    stranger = member(OrganizationFactory(), Role.VIEWER)
    client = client_for(admin)
    answers = [
        client.post("/api/v1/memberships/", {"organization": org.pk, "user": name, "role": "viewer"}, format="json")
        for name in (stranger.username, "nobody-has-this-name")
    ]
    assert [a.status_code for a in answers] == [405, 405]
    assert answers[0].json() == answers[1].json()
    assert not Membership.objects.filter(user=stranger, organization=org).exists()


def test_inviting_answers_the_same_whether_the_address_has_an_account_elsewhere(
    org, admin, django_capture_on_commit_callbacks
):
    stranger = member(OrganizationFactory(name="Other Corp"), Role.VIEWER)
    client = client_for(admin)
    known, _ = _invite(client, org, stranger.email, capture=django_capture_on_commit_callbacks)
    unknown, _ = _invite(client, org, "nobody@example.com", capture=django_capture_on_commit_callbacks)
    assert known.status_code == unknown.status_code == 201
    varying = {"id", "email", "created_at", "expires_at", "last_sent_at"}
    strip = lambda body: {k: v for k, v in body.items() if k not in varying}  # noqa: E731
    assert strip(known.json()) == strip(unknown.json())
    assert "Other Corp" not in known.content.decode()
    # Nobody joined: the stranger still belongs only to their own organization.
    assert not Membership.objects.filter(user=stranger, organization=org).exists()


def test_invitation_e_mail_has_a_constant_subject_and_the_names_in_the_body(
    org, admin, django_capture_on_commit_callbacks
):
    org.name = "Evil\r\nBcc: victim@example.com"
    org.save()
    _, key = _invite(client_for(admin), org, "new@example.com", capture=django_capture_on_commit_callbacks)
    message = mail.outbox[-1]
    assert message.subject == services.INVITATION_SUBJECT and message.to == ["new@example.com"]
    assert key and "Evil" in message.body and "as contributor" in message.body


def test_a_new_person_accepts_by_choosing_a_username_and_a_password(org, admin, django_capture_on_commit_callbacks):
    _, key = _invite(client_for(admin), org, "Newcomer@Example.com", capture=django_capture_on_commit_callbacks)
    invitation = Invitation.objects.get()
    url = reverse("projects:invitation-accept", args=[key])
    anonymous = Client()
    page = anonymous.get(url)
    assert page.status_code == 200 and org.name in page.content.decode() and "contributor" in page.content.decode()
    assert "no-store" in page["Cache-Control"]
    weak = anonymous.post(url, {"username": "newcomer", "password": "123", "password_again": "123"})
    assert weak.status_code == 200 and not User.objects.filter(username="newcomer").exists()
    strong = "a-long-unusual-passphrase"
    response = anonymous.post(url, {"username": "newcomer", "password": strong, "password_again": strong})
    assert response.status_code == 302 and response["Location"] == reverse("projects:dashboard")
    user = User.objects.get(username="newcomer")
    assert user.check_password(strong) and user.email == "Newcomer@example.com"  # the domain part lowercased
    assert (
        Membership.objects.get(user=user).organization == org
        and Membership.objects.get(user=user).role == "contributor"
    )
    invitation.refresh_from_db()
    assert invitation.accepted_by == user and invitation.accepted_at is not None
    assert anonymous.get("/").status_code == 200  # signed in
    # The link works once.
    again = Client().post(url, {"username": "second", "password": strong, "password_again": strong})
    assert not User.objects.filter(username="second").exists() and "already accepted" in again.content.decode()
    accepted = AuditEvent.objects.filter(
        object_type="projects.invitation", object_id=str(invitation.pk), action="update"
    )
    assert [sorted(e.changes) for e in accepted] == [["accepted_at", "accepted_by_id"]]


def test_an_existing_user_accepts_after_signing_in_and_keeps_their_organization(
    org, admin, django_capture_on_commit_callbacks
):
    home = OrganizationFactory()
    user = member(home, Role.MANAGER)
    _, key = _invite(
        client_for(admin), org, "someone-else@example.com", Role.VIEWER, capture=django_capture_on_commit_callbacks
    )
    url = reverse("projects:invitation-accept", args=[key])
    assert Client().post(url).status_code == 200 and not Membership.objects.filter(user=user, organization=org)
    page = _web(user).get(url)
    assert f"signed in as <strong>{user.username}</strong>" in page.content.decode()
    response = _web(user).post(url)
    assert response.status_code == 302
    assert {(m.organization_id, m.role) for m in user.memberships.all()} == {(home.pk, "manager"), (org.pk, "viewer")}


def test_an_expired_link_is_refused(org, admin, django_capture_on_commit_callbacks):
    _, key = _invite(client_for(admin), org, "late@example.com", capture=django_capture_on_commit_callbacks)
    Invitation.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    user = member(OrganizationFactory())
    response = _web(user).post(reverse("projects:invitation-accept", args=[key]))
    assert response.status_code == 200 and "expired" in response.content.decode()
    assert not Membership.objects.filter(user=user, organization=org).exists()
    with pytest.raises(Conflict):
        services.invitation_accept(key=key, user=user)


def test_a_revoked_invitation_stops_working_and_leaves_the_list(org, admin, django_capture_on_commit_callbacks):
    client = client_for(admin)
    response, key = _invite(client, org, "gone@example.com", capture=django_capture_on_commit_callbacks)
    assert client.delete(f"/api/v1/invitations/{response.json()['id']}/").status_code == 204
    assert client.get("/api/v1/invitations/").json()["count"] == 0
    user = member(OrganizationFactory())
    assert "revoked" in _web(user).post(reverse("projects:invitation-accept", args=[key])).content.decode()
    assert not Membership.objects.filter(user=user, organization=org).exists()
    assert Client().get(reverse("projects:invitation-accept", args=["not-a-key"])).status_code == 404


def test_resend_waits_between_sends_and_replaces_the_link(org, admin, django_capture_on_commit_callbacks, settings):
    client = client_for(admin)
    response, old_key = _invite(client, org, "again@example.com", capture=django_capture_on_commit_callbacks)
    url = f"/api/v1/invitations/{response.json()['id']}/resend/"
    sent = len(mail.outbox)
    with django_capture_on_commit_callbacks(execute=True):
        too_soon = client.post(url)
    assert too_soon.status_code == 429 and int(too_soon["Retry-After"]) > 0 and len(mail.outbox) == sent
    Invitation.objects.update(last_sent_at=timezone.now() - dt.timedelta(minutes=settings.INVITATION_RESEND_MINUTES))
    with django_capture_on_commit_callbacks(execute=True):
        resent = client.post(url)
    assert resent.status_code == 200 and resent.json()["send_count"] == 2 and len(mail.outbox) == sent + 1
    new_key = LINK.search(mail.outbox[-1].body).group(1)
    user = member(OrganizationFactory())
    assert _web(user).post(reverse("projects:invitation-accept", args=[old_key])).status_code == 404
    assert not Membership.objects.filter(user=user, organization=org).exists()
    assert _web(user).post(reverse("projects:invitation-accept", args=[new_key])).status_code == 302
    assert Membership.objects.filter(user=user, organization=org).exists()


def test_an_admin_sends_at_most_the_hourly_limit(org, admin, django_capture_on_commit_callbacks, settings):
    settings.INVITATIONS_PER_HOUR = 2
    client = client_for(admin)
    codes = [
        _invite(client, org, f"p{n}@example.com", capture=django_capture_on_commit_callbacks)[0].status_code
        for n in range(3)
    ]
    assert codes == [201, 201, 429]
    assert Invitation.objects.count() == 2 and len(mail.outbox) == 2
    assert not Invitation.objects.filter(email="p2@example.com").exists()


def test_another_organizations_admin_cannot_see_resend_or_revoke_an_invitation(
    org, admin, django_capture_on_commit_callbacks
):
    response, _ = _invite(client_for(admin), org, "private@example.com", capture=django_capture_on_commit_callbacks)
    pk = response.json()["id"]
    outsider = client_for(member(OrganizationFactory(), Role.ADMIN))
    assert outsider.get("/api/v1/invitations/").json()["count"] == 0
    assert outsider.get(f"/api/v1/invitations/{pk}/").status_code == 404
    assert outsider.post(f"/api/v1/invitations/{pk}/resend/").status_code == 404
    assert outsider.delete(f"/api/v1/invitations/{pk}/").status_code == 404
    web = _web(member(OrganizationFactory(), Role.ADMIN))
    assert web.post(reverse("settings:invitation-revoke", args=[pk])).status_code == 404
    assert Invitation.objects.get(pk=pk).is_pending and Invitation.objects.get(pk=pk).send_count == 1
    # A viewer of the organization itself sees no invitation either, and cannot invite.
    viewer = client_for(member(org, Role.VIEWER))
    assert viewer.get("/api/v1/invitations/").json()["count"] == 0
    assert viewer.post("/api/v1/invitations/", {"organization": org.pk, "email": "x@example.com"}).status_code == 403


def test_the_members_page_invites_revokes_and_costs_the_same_queries_for_more_rows(
    org, admin, django_capture_on_commit_callbacks
):
    web = _web(admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = web.post(reverse("settings:members"), {"email": "ui@example.com", "role": "manager"})
    assert response.status_code == 302 and mail.outbox[-1].to == ["ui@example.com"]
    invitation = Invitation.objects.get()

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert web.get(reverse("settings:members")).status_code == 200
        return len(captured)

    few = queries()
    print(f"\nmembers page: {few} queries, whatever the number of members and invitations")
    for n in range(4):
        member(org, Role.VIEWER)
        services.invitation_create(organization=org, email=f"more{n}@example.com", role=Role.VIEWER, by=admin)
    assert queries() == few
    page = web.get(reverse("settings:members")).content.decode()
    assert "ui@example.com" in page and "more3@example.com" in page
    assert web.post(reverse("settings:invitation-revoke", args=[invitation.pk])).status_code == 302
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    # Managers read the members (not the invitations: invitees' addresses are the admins'); viewers nothing.
    manager_page = _web(member(org, Role.MANAGER)).get(reverse("settings:members"))
    assert manager_page.status_code == 200 and "more3@example.com" not in manager_page.content.decode()
    assert _web(member(org, Role.VIEWER)).get(reverse("settings:members")).status_code == 403
    assert 'href="/settings/"' in web.get("/").content.decode()


# --- Extras: the gating fields, seed_demo --------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "high", "low"),
    [("ai_act_tier", AIActTier.UNACCEPTABLE, AIActTier.MINIMAL), ("data_classification", "personal", "public")],
)
def test_a_contributor_cannot_lower_a_gating_field_but_a_manager_can(org, contributor, manager, field, high, low):
    project = ProjectFactory(organization=org, **{field: high})
    response = client_for(contributor).patch(f"/api/v1/projects/{project.pk}/", {field: low}, format="json")
    assert response.status_code == 403 and field in response.json()["errors"]
    project.refresh_from_db()
    assert getattr(project, field) == high
    response = client_for(manager).patch(f"/api/v1/projects/{project.pk}/", {field: low}, format="json")
    assert response.status_code == 200
    project.refresh_from_db()
    assert getattr(project, field) == low


def test_a_contributor_may_set_or_raise_the_gating_fields(org, contributor):
    project = ProjectFactory(organization=org)
    body = {"ai_act_tier": AIActTier.HIGH, "data_classification": DataClassification.CONFIDENTIAL}
    assert client_for(contributor).patch(f"/api/v1/projects/{project.pk}/", body, format="json").status_code == 200
    # Clearing a set classification is lowering it too.
    response = client_for(contributor).patch(
        f"/api/v1/projects/{project.pk}/", {"data_classification": ""}, format="json"
    )
    assert response.status_code == 403


def test_the_project_form_shows_the_refusal_on_the_field(org, contributor):
    project = ProjectFactory(organization=org, ai_act_tier=AIActTier.UNACCEPTABLE)
    form = {"name": project.name, "industry": "other", "use_case": "other", "ai_act_tier": "minimal"}
    response = _web(contributor).post(reverse("projects:edit", args=[project.pk]), form)
    assert response.status_code == 200
    assert response.context["form"].errors["ai_act_tier"] == ["Only a manager can lower it."]
    project.refresh_from_db()
    assert project.ai_act_tier == AIActTier.UNACCEPTABLE


def test_demo_logins_are_no_superusers_unless_asked(org):
    demo_users_ensure(organization=org)
    assert not User.objects.filter(is_superuser=True).exists() and not User.objects.filter(is_staff=True).exists()
    demo_users_ensure(organization=org, superuser=True)
    assert list(User.objects.filter(is_superuser=True, is_staff=True).values_list("username", flat=True)) == [
        "demo-admin"
    ]
