"""Cost centres reachable without Django's admin: the API (`/api/v1/cost-centres/`), its services' history, and
the project form's cost centre and tags."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ops.models import Budget
from ops.tests.factories import BudgetFactory
from projects.models import AuditAction, AuditEvent, CostCentre, Role
from projects.services import cost_centre_create
from projects.tests.api_support import client_for
from projects.tests.factories import OrganizationFactory, ProjectFactory, member

pytestmark = pytest.mark.django_db
URL = "/api/v1/cost-centres/"


@pytest.fixture
def admin(org):
    return member(org, Role.ADMIN)


@pytest.fixture
def centre(org, manager):
    return cost_centre_create(organization=org, by=manager, code="CC-100", name="Support", owner=manager)


def test_members_list_and_read_their_organizations_cost_centres_only(org, viewer, centre):
    other = OrganizationFactory()
    cost_centre_create(organization=other, by=member(other, Role.MANAGER), code="CC-100", name="Theirs")
    client = client_for(viewer)
    listed = client.get(URL)
    assert listed.status_code == 200
    assert [(c["code"], c["name"], c["owner"]) for c in listed.json()["results"]] == [
        ("CC-100", "Support", centre.owner_id)
    ]
    assert client.get(f"{URL}{centre.pk}/").json()["organization"] == org.pk
    theirs = CostCentre.objects.get(organization=other)
    assert client.get(f"{URL}{theirs.pk}/").status_code == 404


def test_managers_create_and_update_viewers_and_contributors_are_refused(org, viewer, contributor, manager, centre):
    for user in (viewer, contributor):
        assert client_for(user).post(URL, {"code": "CC-2", "name": "X"}, format="json").status_code == 403
        assert client_for(user).patch(f"{URL}{centre.pk}/", {"name": "X"}, format="json").status_code == 403
    assert not CostCentre.objects.filter(code="CC-2").exists()
    client = client_for(manager)
    created = client.post(URL, {"code": "CC-200", "name": "Research"}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["organization"] == org.pk
    changed = client.patch(f"{URL}{centre.pk}/", {"name": "Customer support", "owner": None}, format="json")
    assert changed.status_code == 200 and (changed.json()["name"], changed.json()["owner"]) == (
        "Customer support",
        None,
    )
    event = AuditEvent.objects.filter(object_type="projects.costcentre", object_id=str(centre.pk)).latest("pk")
    assert event.action == AuditAction.UPDATE and set(event.changes) == {"name", "owner_id"}


def test_a_taken_code_is_a_409_and_an_owner_must_be_a_member(org, manager, centre):
    client = client_for(manager)
    taken = client.post(URL, {"code": "CC-100", "name": "Again"}, format="json")
    assert taken.status_code == 409 and "code" in taken.json()["errors"]
    renamed = client.post(URL, {"code": "CC-300", "name": "Ops"}, format="json").json()
    assert client.patch(f"{URL}{renamed['id']}/", {"code": "CC-100"}, format="json").status_code == 409
    stranger = member(OrganizationFactory(), Role.ADMIN)
    assert client.post(URL, {"code": "CC-4", "name": "X", "owner": stranger.pk}, format="json").status_code == 400
    assert CostCentre.objects.filter(organization=org).count() == 2


def test_admins_delete_projects_stay_without_it_budgets_go_with_it_each_recorded(org, manager, admin, centre):
    project = ProjectFactory(organization=org, cost_centre=centre)
    budget = BudgetFactory(project=None, cost_centre=centre)
    assert client_for(manager).delete(f"{URL}{centre.pk}/").status_code == 403
    assert CostCentre.objects.filter(pk=centre.pk).exists()
    assert client_for(admin).delete(f"{URL}{centre.pk}/").status_code == 204
    project.refresh_from_db()
    assert project.cost_centre_id is None
    assert not Budget.objects.filter(pk=budget.pk).exists()
    deleted = set(AuditEvent.objects.filter(action=AuditAction.DELETE).values_list("object_type", "object_id"))
    assert {("projects.costcentre", str(centre.pk)), ("ops.budget", str(budget.pk))} <= deleted
    changed = AuditEvent.objects.filter(object_type="projects.project", object_id=str(project.pk)).latest("pk")
    assert changed.changes["cost_centre_id"] == [centre.pk, None]


def test_the_list_follows_the_contract_cursor_strict_query_and_fixed_queries(org, manager, viewer, settings):
    settings.API_SYNC_CLOCK_MARGIN_SECONDS = 0  # one clock: the margin would only hide the rows just written
    for n in range(3):
        cost_centre_create(organization=org, by=manager, code=f"CC-{n}", name=f"Centre {n}")
    client = client_for(viewer)
    page = client.get(URL, {"ordering": "updated_at", "page_size": 2}).json()
    assert "cursor=" in page["next"]
    assert client.get(URL, {"bogus": "1"}).status_code == 400
    assert client.get(URL, {"ordering": "bogus"}).status_code == 400
    assert client.get(URL, {"updated_after": "not-a-date"}).status_code == 400
    assert client.get(URL, {"updated_after": "2999-01-01T00:00:00Z"}).json()["results"] == []
    with CaptureQueriesContext(connection) as few:
        client.get(URL)
    for n in range(3, 9):
        cost_centre_create(organization=org, by=manager, code=f"CC-{n}", name=f"Centre {n}")
    with CaptureQueriesContext(connection) as more:
        assert len(client.get(URL).json()["results"]) == 9
    assert len(more) == len(few)


def test_projects_filter_by_cost_centre(org, viewer, centre):
    inside = ProjectFactory(organization=org, cost_centre=centre)
    ProjectFactory(organization=org)
    answer = client_for(viewer).get("/api/v1/projects/", {"cost_centre": centre.pk}).json()
    assert [p["id"] for p in answer["results"]] == [inside.pk]


def _project_body(**extra) -> dict:
    return {
        "name": "Ask Aria",
        "industry": "retail",
        "use_case": "customer_support",
        "ai_act_tier": "unassessed",
        **extra,
    }


def test_the_project_form_sets_a_cost_centre_and_tags(client, org, contributor, centre):
    client.force_login(contributor)
    answer = client.post("/projects/new/", _project_body(cost_centre=centre.pk, tags="env=prod\nowner = search"))
    assert answer.status_code == 302, answer.context["form"].errors
    project = org.projects.get(name="Ask Aria")
    assert (project.cost_centre, project.tags) == (centre, {"env": "prod", "owner": "search"})
    edit = client.get(f"/projects/{project.pk}/edit/")
    assert edit.context["form"].initial["tags"] == "env=prod\nowner=search"
    assert b"CC-100 Support" in edit.content


def test_the_project_form_shows_tag_errors_on_the_field_and_refuses_another_organizations_centre(
    client, org, contributor
):
    client.force_login(contributor)
    answer = client.post("/projects/new/", _project_body(tags="Env=prod"))
    assert answer.status_code == 200 and "tags" in answer.context["form"].errors
    other = OrganizationFactory()
    theirs = cost_centre_create(organization=other, by=member(other, Role.MANAGER), code="CC-9", name="Theirs")
    answer = client.post("/projects/new/", _project_body(cost_centre=theirs.pk))
    assert answer.status_code == 200 and "cost_centre" in answer.context["form"].errors
    assert not org.projects.filter(name="Ask Aria").exists()


def test_the_settings_page_lists_adds_edits_and_deletes_by_role(client, org, viewer, manager, admin, centre):
    ProjectFactory(organization=org, cost_centre=centre)
    BudgetFactory(project=None, cost_centre=centre)
    client.force_login(viewer)
    assert client.get("/settings/cost-centres/").status_code == 403
    assert client.post("/settings/cost-centres/", {"code": "CC-7", "name": "X"}).status_code == 403
    client.force_login(manager)
    with CaptureQueriesContext(connection) as queries:
        page = client.get("/settings/cost-centres/")
    assert page.status_code == 200 and b"CC-100" in page.content
    listed = page.context["cost_centres"][0]
    assert (listed.project_count, listed.budget_count) == (1, 1)
    few = len(queries)
    for n in range(3):
        cost_centre_create(organization=org, by=manager, code=f"CC-{n}", name=f"Centre {n}", owner=manager)
    with CaptureQueriesContext(connection) as queries:
        client.get("/settings/cost-centres/")
    assert len(queries) == few  # one query for the rows, their owners and counts, however many
    assert client.post("/settings/cost-centres/", {"code": "CC-100", "name": "Again"}).status_code == 200
    assert client.post("/settings/cost-centres/", {"code": "CC-7", "name": "Seven"}).status_code == 302
    edit = f"/settings/cost-centres/{centre.pk}/"
    assert b"Delete" not in client.get(edit).content  # admins delete
    assert client.post(edit, {"code": "CC-101", "name": "Support", "owner": ""}).status_code == 302
    centre.refresh_from_db()
    assert (centre.code, centre.owner) == ("CC-101", None)
    assert client.post(f"{edit}delete/").status_code == 403
    client.force_login(admin)
    assert client.post(f"{edit}delete/").status_code == 302
    assert not CostCentre.objects.filter(pk=centre.pk).exists()
    assert not Budget.objects.filter(cost_centre_id=centre.pk).exists()
