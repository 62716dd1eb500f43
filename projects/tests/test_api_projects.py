"""Projects, transitions, status updates, organizations, teams and memberships through the API."""

import datetime as dt
from decimal import Decimal

import pytest

from ops.tests.factories import BudgetFactory, CostEntryFactory, RiskFactory
from projects.models import Membership, Organization, Project, Role, Stage, StageTransition, StatusUpdate, Team
from projects.tests.api_support import _fresh_throttle, as_role, client_for, error_fields, member  # noqa: F401
from projects.tests.factories import MembershipFactory, OrganizationFactory, ProjectFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    return OrganizationFactory(name="Acme")


def test_project_list_carries_health_spend_budget_and_risk_counts(org):
    today = dt.date.today()
    project = ProjectFactory(organization=org, health="amber")
    CostEntryFactory(project=project, amount=Decimal("100.50"), date=today)
    CostEntryFactory(project=project, amount=Decimal("20"), date=today)
    start, end = today - dt.timedelta(days=9), today + dt.timedelta(days=20)
    BudgetFactory(project=project, amount=Decimal("5000"), period_start=start, period_end=end)
    RiskFactory(project=project, likelihood=5, impact=5)
    RiskFactory(project=project, likelihood=1, impact=2)
    row = as_role(org, Role.VIEWER).get("/api/v1/projects/").json()["results"][0]
    assert row["health"] == "amber"
    assert Decimal(row["spend_to_date"]) == Decimal("120.50")
    # The overall budget covering today, not a sum of every budget ever set.
    assert row["budget_amount"] == "5000.00" and row["budget_spend"] == "120.50"
    assert (row["budget_period_start"], row["budget_period_end"]) == (str(start), str(end))
    # The line through 9 days of 0 then 120.50 (−17.53 + 6.57 x), followed 14 days (1,272.90) and held at
    # its last value (133.65) for the other 6 of the 20 days left, adds 2,074.79 (docs/money.md).
    assert (row["budget_used_pct"], row["budget_forecast"]) == ("2.4", "2195.29")
    assert row["over_budget"] is False and row["over_tolerance"] is False
    assert (row["open_risks"], row["critical_risks"]) == (2, 1)


def test_project_list_filters_search_and_orders(org):
    ProjectFactory(organization=org, name="Fraud radar", stage=Stage.PILOT, industry="finance")
    ProjectFactory(organization=org, name="Support bot", stage=Stage.IDEATION, industry="retail")
    client = as_role(org, Role.VIEWER)
    names = lambda query: [p["name"] for p in client.get(f"/api/v1/projects/?{query}").json()["results"]]  # noqa: E731
    assert names("stage=pilot") == ["Fraud radar"]
    assert names("industry=retail") == ["Support bot"]
    assert names("search=radar") == ["Fraud radar"]
    assert names("ordering=-name") == ["Support bot", "Fraud radar"]
    assert client.get("/api/v1/projects/?stage=launched").status_code == 400


def test_page_size_above_the_maximum_is_refused(org):
    ProjectFactory.create_batch(3, organization=org)
    answer = as_role(org, Role.VIEWER).get("/api/v1/projects/?page_size=100000")
    assert answer.status_code == 400 and set(answer.json()["errors"]) == {"page_size"}
    body = as_role(org, Role.VIEWER).get("/api/v1/projects/?page_size=200").json()
    assert body["count"] == 3 and len(body["results"]) == 3
    assert as_role(org, Role.VIEWER).get("/api/v1/projects/?page=9").status_code == 404


def test_contributor_creates_a_project_in_their_only_organization(org):
    client = as_role(org, Role.CONTRIBUTOR)
    response = client.post("/api/v1/projects/", {"name": "Claims triage", "industry": "finance"}, format="json")
    assert response.status_code == 201, response.json()
    project = Project.objects.get(pk=response.json()["id"])
    assert (project.organization, project.stage, project.slug) == (org, Stage.IDEATION, "claims-triage")


def test_member_of_two_organizations_must_say_which(org):
    user = member(org, Role.CONTRIBUTOR)
    MembershipFactory(user=user, role=Role.CONTRIBUTOR)
    client = client_for(user)
    response = client.post("/api/v1/projects/", {"name": "Where?"}, format="json")
    assert response.status_code == 400 and "organization" in error_fields(response)
    response = client.post("/api/v1/projects/", {"name": "Here", "organization": org.pk}, format="json")
    assert response.status_code == 201 and response.json()["organization"] == org.pk


def test_viewer_cannot_create_a_project(org):
    response = as_role(org, Role.VIEWER).post("/api/v1/projects/", {"name": "Nope"}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    assert not Project.objects.exists()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "X", "colour": "red"}, "colour"),
        ({"name": "X", "industry": "mining"}, "industry"),
        ({"name": "X", "start_date": "03/01/2026"}, "start_date"),
        ({"name": "X", "stage": "production"}, "stage"),
        ({"name": ""}, "name"),
        ({"name": "X", "team": 99999}, "team"),
        ({"name": "X", "start_date": "2026-05-01", "target_date": "2026-01-01"}, "__all__"),
    ],
)
def test_bad_project_input_is_a_400_naming_the_field_and_writes_nothing(org, body, field):
    response = as_role(org, Role.CONTRIBUTOR).post("/api/v1/projects/", body, format="json")
    assert response.status_code == 400, response.json()
    assert field in error_fields(response) or field == "__all__"
    assert not Project.objects.exists()


def test_a_team_of_another_organization_is_unknown(org):
    foreign_team = TeamFactory()
    response = as_role(org, Role.CONTRIBUTOR).post(
        "/api/v1/projects/", {"name": "X", "team": foreign_team.pk}, format="json"
    )
    assert response.status_code == 400 and "team" in error_fields(response)


def test_update_project_fields_but_not_its_stage(org):
    project = ProjectFactory(organization=org)
    client = as_role(org, Role.CONTRIBUTOR)
    response = client.patch(f"/api/v1/projects/{project.pk}/", {"summary": "Answers refunds"}, format="json")
    assert response.status_code == 200 and response.json()["summary"] == "Answers refunds"
    response = client.patch(f"/api/v1/projects/{project.pk}/", {"stage": "production"}, format="json")
    assert response.status_code == 400
    project.refresh_from_db()
    assert project.stage == Stage.IDEATION


def test_transition_one_step_forward_is_recorded(org):
    project = ProjectFactory(organization=org)
    response = as_role(org, Role.CONTRIBUTOR).post(
        f"/api/v1/projects/{project.pk}/transition/", {"to_stage": "data_preparation", "note": "Go"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["to_stage"] == "data_preparation"
    project.refresh_from_db()
    assert project.stage == Stage.DATA_PREPARATION


def test_transition_into_pilot_with_unmet_gates_is_a_409_listing_them(org):
    project = ProjectFactory(organization=org, stage=Stage.EVALUATION)
    response = as_role(org, Role.CONTRIBUTOR).post(
        f"/api/v1/projects/{project.pk}/transition/", {"to_stage": "pilot"}, format="json"
    )
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "transition_refused"
    assert {"budget", "infrastructure", "quality_metrics"} <= {gate["key"] for gate in body["missing"]}
    assert not StageTransition.objects.exists()


def test_override_by_a_contributor_is_403_and_by_a_manager_moves(org):
    project = ProjectFactory(organization=org, stage=Stage.EVALUATION, data_classification="internal")
    body = {"to_stage": "pilot", "override_reason": "Signed off by the CFO"}
    url = f"/api/v1/projects/{project.pk}/transition/"
    assert as_role(org, Role.CONTRIBUTOR).post(url, body, format="json").status_code == 403
    response = as_role(org, Role.MANAGER).post(url, body, format="json")
    assert response.status_code == 201
    assert "budget" in response.json()["overridden_gates"]


def test_transition_with_an_unknown_stage_is_a_400(org):
    project = ProjectFactory(organization=org)
    response = as_role(org, Role.CONTRIBUTOR).post(
        f"/api/v1/projects/{project.pk}/transition/", {"to_stage": "launched"}, format="json"
    )
    assert response.status_code == 400 and "to_stage" in error_fields(response)


def test_status_update_sets_project_health(org):
    project = ProjectFactory(organization=org)
    body = {"project": project.pk, "date": "2026-03-01", "health": "red", "progress": 40, "summary": "Vendor late"}
    response = as_role(org, Role.CONTRIBUTOR).post("/api/v1/status-updates/", body, format="json")
    assert response.status_code == 201, response.json()
    project.refresh_from_db()
    assert (project.health, project.progress) == ("red", 40)


@pytest.mark.parametrize("progress", [-1, 101, "lots", 10**30])
def test_status_update_with_bad_progress_writes_nothing(org, progress):
    project = ProjectFactory(organization=org)
    body = {"project": project.pk, "date": "2026-03-01", "health": "green", "progress": progress, "summary": "s"}
    response = as_role(org, Role.CONTRIBUTOR).post("/api/v1/status-updates/", body, format="json")
    assert response.status_code == 400 and "progress" in error_fields(response)
    assert not StatusUpdate.objects.exists()


def test_status_update_in_the_future_is_refused(org):
    project = ProjectFactory(organization=org)
    tomorrow = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    body = {"project": project.pk, "date": tomorrow, "health": "green", "progress": 1, "summary": "s"}
    response = as_role(org, Role.CONTRIBUTOR).post("/api/v1/status-updates/", body, format="json")
    assert response.status_code == 400 and "date" in error_fields(response)


def test_stage_history_is_read_only(org):
    project = ProjectFactory(organization=org)
    client = as_role(org, Role.MANAGER)
    client.post(f"/api/v1/projects/{project.pk}/transition/", {"to_stage": "data_preparation"}, format="json")
    transition = StageTransition.objects.get()
    assert client.get(f"/api/v1/stage-transitions/?project={project.pk}").json()["count"] == 1
    assert client.delete(f"/api/v1/stage-transitions/{transition.pk}/").status_code == 405
    assert client.patch(f"/api/v1/stage-transitions/{transition.pk}/", {"note": "x"}, format="json").status_code == 405


def test_only_admins_update_the_organization(org):
    url = f"/api/v1/organizations/{org.pk}/"
    assert as_role(org, Role.MANAGER).patch(url, {"currency": "EUR"}, format="json").status_code == 403
    response = as_role(org, Role.ADMIN).patch(url, {"currency": "EUR"}, format="json")
    assert response.status_code == 200
    assert as_role(org, Role.ADMIN).patch(url, {"currency": "euro"}, format="json").status_code == 400
    assert as_role(org, Role.ADMIN).patch(url, {"timezone": "Mars/Olympus"}, format="json").status_code == 400
    org.refresh_from_db()
    assert org.currency == "EUR" and org.timezone == "UTC"


def test_admins_manage_teams(org):
    admin = as_role(org, Role.ADMIN)
    response = admin.post("/api/v1/teams/", {"organization": org.pk, "name": "Risk analytics"}, format="json")
    assert response.status_code == 201
    team_id = response.json()["id"]
    assert admin.patch(f"/api/v1/teams/{team_id}/", {"description": "Quants"}, format="json").status_code == 200
    contributor = as_role(org, Role.CONTRIBUTOR)
    assert contributor.post("/api/v1/teams/", {"organization": org.pk, "name": "X"}, format="json").status_code == 403
    assert contributor.delete(f"/api/v1/teams/{team_id}/").status_code == 403
    assert admin.delete(f"/api/v1/teams/{team_id}/").status_code == 204
    assert not Team.objects.exists()


def test_admins_change_roles_and_keep_one_admin_and_nobody_adds_by_username(org):
    admin_user = member(org, Role.ADMIN)
    admin = client_for(admin_user)
    newcomer = UserFactory(username="dana")
    response = admin.post(
        "/api/v1/memberships/", {"organization": org.pk, "user": "dana", "role": "viewer"}, format="json"
    )
    assert response.status_code == 405  # people join by invitation (projects/tests/test_members_hardening.py)
    assert not Membership.objects.filter(user=newcomer).exists()
    membership_id = MembershipFactory(organization=org, user=newcomer, role=Role.VIEWER).pk
    assert admin.patch(f"/api/v1/memberships/{membership_id}/", {"role": "manager"}, format="json").status_code == 200
    assert Membership.objects.get(user=newcomer).role == Role.MANAGER
    own = Membership.objects.get(user=admin_user)
    assert admin.delete(f"/api/v1/memberships/{own.pk}/").status_code == 409
    assert admin.patch(f"/api/v1/memberships/{own.pk}/", {"role": "viewer"}, format="json").status_code == 409
    assert admin.delete(f"/api/v1/memberships/{membership_id}/").status_code == 204
    manager = as_role(org, Role.MANAGER)
    assert manager.patch(f"/api/v1/memberships/{own.pk}/", {"role": "viewer"}, format="json").status_code == 403
    assert Membership.objects.get(pk=own.pk).role == Role.ADMIN


def test_member_of_organization_b_sees_nothing_of_organization_a(org):
    ProjectFactory(organization=org)
    other = OrganizationFactory()
    assert as_role(other, Role.ADMIN).get("/api/v1/projects/").json()["count"] == 0
    assert Organization.objects.count() == 2
