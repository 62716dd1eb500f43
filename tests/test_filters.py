"""One FilterSet per entity: the web UI's list filters are the API's, presented for people (ops/filters.py).

The same filter values give the same rows on the page and in the API; the page stays tolerant (a bad
value is a form error) while the API stays strict (a 400); the heat map's cell survives a filter change.
"""

import pytest
from django.urls import reverse

from ops.models import RiskStatus
from ops.tests.factories import RiskFactory
from projects.models import Health, Role, Stage
from projects.tests.api_support import _fresh_throttle, client_for  # noqa: F401
from projects.tests.factories import OrganizationFactory, ProjectFactory, TeamFactory, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    return OrganizationFactory()


@pytest.fixture
def viewer(client, org):
    user = member(org, Role.VIEWER)
    client.force_login(user)
    return user


def api_ids(user, path: str, params: dict) -> list[int]:
    response = client_for(user).get(path, params)
    assert response.status_code == 200, response.json()
    return sorted(row["id"] for row in response.json()["results"])


def page_ids(client, url: str, params: dict) -> list[int]:
    response = client.get(url, params)
    assert response.status_code == 200
    return sorted(row.pk for row in response.context["page"])


def test_the_project_list_and_the_api_list_the_same_projects_for_stage_health_and_team(client, org, viewer):
    team, other_team = TeamFactory(organization=org), TeamFactory(organization=org)
    match = dict(stage=Stage.PILOT, health=Health.AMBER)
    hits = [ProjectFactory(organization=org, team=team, **match) for _ in range(2)]
    ProjectFactory(organization=org, team=other_team, **match)
    ProjectFactory(organization=org, team=team, stage=Stage.PILOT, health=Health.GREEN)
    ProjectFactory(organization=org, team=team, stage=Stage.PRODUCTION, health=Health.AMBER)
    ProjectFactory(organization=OrganizationFactory(), stage=Stage.PILOT, health=Health.AMBER)  # not the viewer's
    params = {"stage": Stage.PILOT, "health": Health.AMBER, "team": team.pk}

    ui = page_ids(client, reverse("projects:list"), params)
    api = api_ids(viewer, "/api/v1/projects/", params)
    assert ui == api == sorted(p.pk for p in hits)


def test_the_risk_register_and_the_api_list_the_same_risks_for_category_status_and_project(client, org, viewer):
    project, other = ProjectFactory(organization=org), ProjectFactory(organization=org)
    match = dict(project=project, category="data_privacy", status=RiskStatus.MITIGATING)
    hits = [RiskFactory(**match) for _ in range(2)]
    RiskFactory(project=project, category="data_privacy", status=RiskStatus.OPEN)
    RiskFactory(project=project, category="cost", status=RiskStatus.MITIGATING)
    RiskFactory(project=other, category="data_privacy", status=RiskStatus.MITIGATING)
    params = {"category": "data_privacy", "status": RiskStatus.MITIGATING, "project": project.pk}

    ui = page_ids(client, reverse("ops:risks"), params)
    api = api_ids(viewer, "/api/v1/risks/", params)
    assert ui == api == sorted(r.pk for r in hits)


def test_the_api_filters_risks_by_owner_and_heat_map_cell_like_the_register(client, org, viewer):
    project = ProjectFactory(organization=org)
    owner = member(org, Role.CONTRIBUTOR)
    hit = RiskFactory(project=project, owner=owner, likelihood=4, impact=5)
    RiskFactory(project=project, owner=owner, likelihood=4, impact=4)
    RiskFactory(project=project, likelihood=4, impact=5)
    params = {"owner": owner.pk, "likelihood": 4, "impact": 5}

    assert page_ids(client, reverse("ops:risks"), params) == api_ids(viewer, "/api/v1/risks/", params) == [hit.pk]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/risks/", {"owner": "me"}),
        ("/api/v1/risks/", {"likelihood": "high"}),
        ("/api/v1/projects/", {"team": "ops"}),
        ("/api/v1/projects/", {"stage": "launched"}),
    ],
)
def test_the_api_refuses_a_bad_filter_value(org, viewer, path, params):
    response = client_for(viewer).get(path, params)
    assert response.status_code == 400 and set(response.json()["errors"]) == set(params)


def test_the_pages_show_a_bad_filter_value_as_a_form_error_and_apply_the_others(client, org, viewer):
    project = ProjectFactory(organization=org, stage=Stage.PILOT)
    ProjectFactory(organization=org, stage=Stage.PRODUCTION)
    projects = client.get(reverse("projects:list"), {"team": "ops", "stage": Stage.PILOT})
    assert projects.status_code == 200 and set(projects.context["filters"].errors) == {"team"}
    assert [p.pk for p in projects.context["page"]] == [project.pk]

    active = RiskFactory(project=project)
    RiskFactory(project=project, status=RiskStatus.CLOSED)
    risks = client.get(reverse("ops:risks"), {"status": "bogus", "project": "x", "likelihood": "9"})
    assert risks.status_code == 200 and set(risks.context["form"].errors) == {"status", "project", "likelihood"}
    # An invalid status falls back to the page's default: the active risks.
    assert [r.pk for r in risks.context["page"]] == [active.pk] and risks.context["cell"] is None


def test_the_register_lists_active_risks_unless_a_status_is_chosen(client, org, viewer):
    project = ProjectFactory(organization=org)
    open_, closed = RiskFactory(project=project), RiskFactory(project=project, status=RiskStatus.CLOSED)
    assert page_ids(client, reverse("ops:risks"), {}) == [open_.pk]
    assert page_ids(client, reverse("ops:risks"), {"status": "all"}) == sorted([open_.pk, closed.pk])
    assert page_ids(client, reverse("ops:risks"), {"status": RiskStatus.CLOSED}) == [closed.pk]


def test_changing_a_filter_keeps_the_selected_heat_map_cell(client, org, viewer):
    RiskFactory(project=ProjectFactory(organization=org), likelihood=4, impact=5)
    page = client.get(reverse("ops:risks"), {"likelihood": 4, "impact": 5}).content.decode()
    # The cell's inputs belong to the filter form, so its next submit (htmx or plain) carries them.
    assert '<form method="get" class="filters" id="risk-filters"' in page
    assert '<input type="hidden" form="risk-filters" name="likelihood" value="4">' in page
    assert '<input type="hidden" form="risk-filters" name="impact" value="5">' in page
    fragment = client.get(
        reverse("ops:risks"), {"likelihood": 4, "impact": 5}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="risk-results"
    ).content.decode()
    assert 'form="risk-filters" name="likelihood" value="4"' in fragment
    unselected = client.get(reverse("ops:risks")).content.decode()
    assert 'name="likelihood"' not in unselected


@pytest.mark.django_db(transaction=True)
def test_in_the_browser_a_filter_change_after_choosing_a_cell_keeps_the_cell(page, screenshot):
    from tests.test_browser import sign_in

    org = OrganizationFactory()
    project = ProjectFactory(organization=org)
    RiskFactory(project=project, title="Leaky prompts", category="data_privacy", likelihood=4, impact=5)
    RiskFactory(project=project, title="Runaway spend", category="cost", likelihood=4, impact=5)
    RiskFactory(project=project, title="Elsewhere", category="data_privacy", likelihood=1, impact=1)
    sign_in(page, org)
    page.goto("/risks/")
    page.get_by_test_id("heatmap").locator('[data-likelihood="4"][data-impact="5"]').click()
    page.wait_for_url("**likelihood=4**")
    page.get_by_label("Category").select_option("data_privacy")
    page.wait_for_url("**category=data_privacy**")
    assert "likelihood=4" in page.url and "impact=5" in page.url
    register = page.locator("#risk-results table")
    register.get_by_text("Leaky prompts").wait_for()
    assert register.get_by_text("Runaway spend").count() == 0 and register.get_by_text("Elsewhere").count() == 0
    screenshot(page, "risks-cell-and-category")
