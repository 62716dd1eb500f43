"""The organization's settings area (/settings/): who may read and change what, and what each change does.

Admins change everything; managers read the organization, its members and its teams; contributors
and viewers are refused (403). Every change goes through a service and leaves its history.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from ops.tests.factories import CostEntryFactory
from projects import services
from projects.forms import ProjectForm
from projects.models import ApiToken, AuditEvent, Invitation, Membership, Organization, Project, Role, Team
from projects.tests.factories import OrganizationFactory, ProjectFactory, member
from tracker.exceptions import Conflict, ValidationFailed

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"  # every factory user's


@pytest.fixture
def org() -> Organization:
    return OrganizationFactory(name="Acme", timezone="UTC", currency="USD")


@pytest.fixture
def admin(org):
    return member(org, Role.ADMIN)


@pytest.fixture
def team(org, admin) -> Team:
    return services.team_create(organization=org, name="Platform", by=admin)


def web(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def history(obj) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk)).order_by("at", "id")
    )


# --- Who sees what -----------------------------------------------------------------------------------

PAGES = ["settings:organization", "settings:members", "settings:teams", "settings:team-edit", "settings:service-tokens"]
# What each role gets on each page: managers read what is not the admins' alone.
READS = {
    Role.ADMIN: {page: 200 for page in PAGES},
    Role.MANAGER: {**{page: 200 for page in PAGES}, "settings:team-edit": 403, "settings:service-tokens": 403},
    Role.CONTRIBUTOR: {page: 403 for page in PAGES},
    Role.VIEWER: {page: 403 for page in PAGES},
}


@pytest.mark.parametrize("role", list(READS), ids=str)
def test_each_page_answers_each_role_as_planned(org, team, role):
    client = web(member(org, role))
    got = {}
    for page in PAGES:
        kwargs = {"pk": team.pk} if page == "settings:team-edit" else {}
        got[page] = client.get(reverse(page, kwargs=kwargs)).status_code
    assert got == READS[role]
    # Every member chooses their own e-mails.
    assert client.get(reverse("projects:notifications")).status_code == 200


def test_the_old_addresses_of_members_and_service_tokens_redirect_to_the_settings_area(org, admin):
    client = web(admin)
    for old, new in (
        ("/members/?q=ann", "/settings/members/?q=ann"),
        ("/account/service-tokens/", "/settings/service-tokens/"),
    ):
        response = client.get(old)
        assert (response.status_code, response["Location"]) == (301, new)
        assert client.get(new).status_code == 200
        assert client.post(old).status_code == 405  # forms post to the new addresses


@pytest.mark.parametrize("role", [Role.MANAGER, Role.CONTRIBUTOR, Role.VIEWER], ids=str)
def test_no_one_but_an_admin_changes_anything(org, team, admin, role):
    client = web(member(org, role))
    target = Membership.objects.get(user=admin)
    before = AuditEvent.objects.count()
    posts = {
        reverse("settings:organization"): {"name": "Taken", "timezone": "UTC", "locale": "en", "currency": "USD"},
        reverse("settings:members"): {"email": "new@example.com", "role": "admin"},
        reverse("settings:member-role", args=[target.pk]): {"role": "viewer"},
        reverse("settings:member-remove", args=[target.pk]): {},
        reverse("settings:teams"): {"name": "Mine"},
        reverse("settings:team-edit", args=[team.pk]): {"name": "Mine"},
        reverse("settings:team-delete", args=[team.pk]): {},
        reverse("settings:service-tokens"): {"name": "x", "scope": "read", "password": PASSWORD},
    }
    assert {url: client.post(url, data).status_code for url, data in posts.items()} == {url: 403 for url in posts}
    assert AuditEvent.objects.count() == before
    assert Organization.objects.get(pk=org.pk).name == "Acme" and Team.objects.get(pk=team.pk).name == "Platform"


def test_a_manager_reads_members_but_no_invitation_nor_any_control(org, admin):
    services.invitation_create(organization=org, email="invitee@example.com", by=admin)
    page = web(member(org, Role.MANAGER)).get(reverse("settings:members")).content.decode()
    assert admin.username in page
    assert "invitee@example.com" not in page and "<select" not in page and "Remove" not in page


# --- The organization --------------------------------------------------------------------------------


def _settings(**changes) -> dict:
    return {"name": "Acme", "timezone": "UTC", "locale": "en", "currency": "USD"} | changes


def test_an_admin_renames_and_moves_the_organization_with_history(org, admin):
    response = web(admin).post(
        reverse("settings:organization"), _settings(name="Acme Europe", timezone="Europe/Berlin", locale="de")
    )
    assert response.status_code == 302
    org.refresh_from_db()
    assert (org.name, org.timezone, org.locale) == ("Acme Europe", "Europe/Berlin", "de")
    (event,) = [e for e in history(org) if e.action == "update"]
    assert event.actor_id == admin.pk
    assert event.changes == {
        "name": ["Acme", "Acme Europe"],
        "timezone": ["UTC", "Europe/Berlin"],
        "locale": ["en", "de"],
    }


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "utc+2", "Europe/Berlin\x00"])
def test_an_unknown_time_zone_is_refused_and_nothing_written(org, admin, zone):
    response = web(admin).post(reverse("settings:organization"), _settings(timezone=zone))
    assert response.status_code == 200 and response.context["form"].errors["timezone"]
    assert Organization.objects.get(pk=org.pk).timezone == "UTC" and not history(org)
    with pytest.raises(ValidationFailed):
        services.organization_update(organization=org, by=admin, timezone=zone)


def test_the_currency_changes_while_nothing_is_recorded_in_it(org, admin):
    assert web(admin).post(reverse("settings:organization"), _settings(currency="eur")).status_code == 302
    assert Organization.objects.get(pk=org.pk).currency == "EUR"


def test_a_new_currency_converts_the_costs_again_from_their_originals(org, admin):
    project = ProjectFactory(organization=org)
    day = dt.date(2024, 3, 1)  # a day the bundled ECB history covers
    cost = CostEntryFactory(
        project=project,
        date=day,
        amount=Decimal("12.50"),
        original_amount=Decimal("12.50"),
        original_currency="USD",
        exchange_rate_date=day,
    )
    client = web(admin)
    assert "converts every cost" in client.get(reverse("settings:organization")).content.decode()

    assert client.post(reverse("settings:organization"), _settings(currency="EUR")).status_code == 302
    org.refresh_from_db()
    cost.refresh_from_db()
    assert org.currency == "EUR"
    assert (cost.original_amount, cost.original_currency) == (Decimal("12.50"), "USD")  # never changed
    assert cost.exchange_rate < 1 and cost.amount == (Decimal("12.50") * cost.exchange_rate).quantize(Decimal("0.01"))
    assert [e.changes["currency"] for e in history(org)] == [["USD", "EUR"]]


# --- Members ------------------------------------------------------------------------------------------


def test_an_admin_invites_changes_a_role_and_removes_a_member_with_history(
    org, admin, django_capture_on_commit_callbacks
):
    client = web(admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("settings:members"), {"email": "new@example.com", "role": "contributor"})
    assert response.status_code == 302 and mail.outbox[-1].to == ["new@example.com"]
    invitation = Invitation.objects.get()
    assert [e.action for e in history(invitation)] == ["create"]

    viewer = member(org, Role.VIEWER)
    membership = Membership.objects.get(user=viewer)
    assert client.post(reverse("settings:member-role", args=[membership.pk]), {"role": "manager"}).status_code == 302
    membership.refresh_from_db()
    assert membership.role == Role.MANAGER
    assert history(membership)[-1].changes == {"role": ["viewer", "manager"]}

    assert client.post(reverse("settings:member-remove", args=[membership.pk])).status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert history(membership)[-1].action == "delete" and history(membership)[-1].actor_id == admin.pk


def test_the_last_admin_can_be_neither_demoted_nor_removed(org, admin):
    own = Membership.objects.get(user=admin)
    client = web(admin)
    for url, data in [
        (reverse("settings:member-role", args=[own.pk]), {"role": "manager"}),
        (reverse("settings:member-remove", args=[own.pk]), {}),
    ]:
        response = client.post(url, data)
        assert response.status_code == 200 and "keeps at least one admin" in response.content.decode()
    own.refresh_from_db()
    assert own.role == Role.ADMIN and [e.action for e in history(own)] == []
    # With a second admin, the first may go.
    second = Membership.objects.get(user=member(org, Role.ADMIN))
    assert client.post(reverse("settings:member-remove", args=[second.pk])).status_code == 302
    with pytest.raises(Conflict):
        services.membership_delete(membership=own, by=admin)


def test_another_organizations_member_answers_404(org, admin):
    stranger = Membership.objects.get(user=member(OrganizationFactory(), Role.VIEWER))
    client = web(admin)
    assert client.post(reverse("settings:member-role", args=[stranger.pk]), {"role": "admin"}).status_code == 404
    assert client.post(reverse("settings:member-remove", args=[stranger.pk])).status_code == 404
    assert Membership.objects.filter(pk=stranger.pk, role=Role.VIEWER).exists()


# --- Teams --------------------------------------------------------------------------------------------


def test_an_admin_creates_a_team_with_a_lead_renames_it_with_history(org, admin):
    lead = member(org, Role.CONTRIBUTOR)
    client = web(admin)
    response = client.post(reverse("settings:teams"), {"name": "Data science", "lead": lead.pk})
    assert response.status_code == 302
    team = Team.objects.get(name="Data science")
    assert team.lead == lead and team.slug == "data-science"
    response = client.post(reverse("settings:team-edit", args=[team.pk]), {"name": "Applied AI", "lead": admin.pk})
    assert response.status_code == 302
    team.refresh_from_db()
    assert (team.name, team.slug, team.lead) == ("Applied AI", "data-science", admin)
    assert history(team)[-1].changes == {"name": ["Data science", "Applied AI"], "lead_id": [lead.pk, admin.pk]}


def test_a_team_lead_must_be_a_member(org, admin, team):
    outsider = member(OrganizationFactory(), Role.ADMIN)
    response = web(admin).post(reverse("settings:team-edit", args=[team.pk]), {"name": "Platform", "lead": outsider.pk})
    assert response.status_code == 200 and response.context["form"].errors["lead"]
    with pytest.raises(ValidationFailed):
        services.team_update(team=team, by=admin, lead=outsider)
    assert Team.objects.get(pk=team.pk).lead is None


def test_an_archived_team_keeps_its_projects_and_takes_no_new_one(org, admin, team):
    project = services.project_create(organization=org, by=admin, name="Chatbot", team=team)
    response = web(admin).post(reverse("settings:team-edit", args=[team.pk]), {"name": "Platform", "archived": "on"})
    assert response.status_code == 302
    team.refresh_from_db()
    assert team.archived and history(team)[-1].changes == {"archived": [False, True]}
    project.refresh_from_db()
    assert project.team == team
    # Its own project still shows it and saves with it; no other project is offered it or can take it.
    assert team in ProjectForm(initial=ProjectForm.initial_for(project), organization=org).fields["team"].queryset
    services.project_update(project=project, by=admin, summary="Still in it")
    assert team not in ProjectForm(organization=org).fields["team"].queryset
    with pytest.raises(ValidationFailed):
        services.project_create(organization=org, by=admin, name="Newcomer", team=team)
    other = services.project_create(organization=org, by=admin, name="Other")
    with pytest.raises(ValidationFailed):
        services.project_update(project=other, by=admin, team=team)
    assert Project.objects.filter(team=team).count() == 1


def test_deleting_a_team_leaves_its_projects_without_a_team_and_says_so(org, admin, team):
    projects = [services.project_create(organization=org, by=admin, name=f"P{n}", team=team) for n in range(2)]
    response = web(admin).post(reverse("settings:team-delete", args=[team.pk]), follow=True)
    assert "2 projects now have no team" in response.content.decode()
    assert not Team.objects.filter(pk=team.pk).exists()
    assert Project.objects.filter(pk__in=[p.pk for p in projects], team=None).count() == 2
    assert history(team)[-1].action == "delete"
    assert all(history(p)[-1].changes == {"team_id": [team.pk, None]} for p in projects)


def test_the_teams_page_costs_the_same_queries_for_more_teams(org, admin, team):
    client = web(admin)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("settings:teams")).status_code == 200
        return len(captured)

    few = queries()
    for n in range(4):
        more = services.team_create(organization=org, name=f"Team {n}", by=admin, lead=member(org, Role.VIEWER))
        ProjectFactory(organization=org, team=more)
    assert queries() == few


# --- Service tokens ----------------------------------------------------------------------------------


def test_an_admin_creates_and_revokes_a_service_token_in_the_settings(org, admin):
    client = web(admin)
    response = client.post(
        reverse("settings:service-tokens"), {"name": "collector", "scope": "ingest", "password": PASSWORD}
    )
    assert response.status_code == 200 and response.context["created_key"]
    assert "no-store" in response["Cache-Control"]
    token = ApiToken.objects.get(name="collector")
    assert token.organization == org and token.scope == "ingest" and history(token)[0].actor_id == admin.pk
    assert client.post(reverse("settings:service-token-revoke", args=[token.pk])).status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None and history(token)[-1].changes["revoked_at"][0] is None
    # Without the password, nothing is made.
    response = client.post(reverse("settings:service-tokens"), {"name": "again", "scope": "read", "password": "wrong"})
    assert response.status_code == 200 and not ApiToken.objects.filter(name="again").exists()


def test_the_admin_site_keeps_the_operators_models():
    from django.contrib import admin as django_admin

    registered = {model._meta.label for model in django_admin.site._registry}
    assert {"projects.Organization", "projects.Membership", "projects.Team", "projects.ApiToken"} <= registered
