"""The project list's compiled statements (issue 16): one statement per shape, each request's values bound.

A shape (as-of date, the filters present, the sort) is compiled once per process with probes for the
user, the organization and each filter's value; these tests check that a compiled statement gives
exactly the ORM's rows for every value bound into it, and never another organization's.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.test import RequestFactory
from django.urls import reverse

from ops import views
from ops.selectors import project_list
from ops.selectors.portfolio import budget_status_of
from ops.tests.factories import BudgetFactory, CostEntryFactory, InfrastructureComponentFactory, RiskFactory
from projects.models import Health, Industry, Role, Stage, UseCase
from projects.tests.factories import (
    MembershipFactory,
    OrganizationFactory,
    ProjectFactory,
    TeamFactory,
    member,
)

pytestmark = pytest.mark.django_db


def _compiled_rows(request, filters):
    data = filters.form.cleaned_data
    return project_list.CompiledProjectRows(
        user=request.user, organization=request.organization, filters=filters, data=data
    )


LIST = reverse("projects:list")


@pytest.fixture(autouse=True)
def _no_compiled_shapes():
    project_list._list_shapes.clear()
    yield
    project_list._list_shapes.clear()


def _names(response) -> list[str]:
    return [p.name for p in response.context["page"]]


def _portfolio(org, prefix: str) -> list:
    teams = [TeamFactory(organization=org), TeamFactory(organization=org)]
    projects = []
    for i in range(6):
        project = ProjectFactory(
            organization=org,
            name=f"{prefix} {i}",
            stage=[Stage.IDEATION, Stage.DEVELOPMENT][i % 2],
            health=[Health.GREEN, Health.AMBER, Health.RED][i % 3],
            industry=[Industry.FINANCE, Industry.RETAIL][i % 2],
            use_case=[UseCase.CUSTOMER_SUPPORT, UseCase.DATA_ANALYSIS][i // 3],
            team=teams[i % 2],
        )
        CostEntryFactory(project=project, date=dt.date.today() - dt.timedelta(days=3), amount=Decimal(10 * i + 1))
        BudgetFactory(
            project=project,
            period_start=dt.date.today() - dt.timedelta(days=10),
            period_end=dt.date.today() + dt.timedelta(days=20),
            amount=Decimal(100),
        )
        RiskFactory.create_batch(i % 3, project=project)
        InfrastructureComponentFactory(project=project, provider=["aws", "gcp"][i % 2])
        projects.append(project)
    return projects


def test_another_organizations_request_of_a_compiled_shape_reads_only_its_own_rows(client):
    a, b = OrganizationFactory(), OrganizationFactory()
    _portfolio(a, "Alpha")
    _portfolio(b, "Bravo")
    url = LIST + "?stage=development&sort=-spend"
    client.force_login(member(a, Role.VIEWER))
    assert _names(client.get(url)) == ["Alpha 5", "Alpha 3", "Alpha 1"]
    compiled = dict(project_list._list_shapes)

    client.force_login(member(b, Role.VIEWER))
    response = client.get(url)

    assert project_list._list_shapes == compiled  # the same statements, B's values bound
    assert _names(response) == ["Bravo 5", "Bravo 3", "Bravo 1"]
    assert "Alpha" not in response.content.decode()


def test_a_member_of_two_organizations_reads_the_active_ones_rows_only():
    a, b = OrganizationFactory(), OrganizationFactory()
    _portfolio(a, "Alpha")
    _portfolio(b, "Bravo")
    user = member(a, Role.VIEWER)
    MembershipFactory(organization=b, user=user, role=Role.VIEWER)
    names = {}
    for organization in (a, b):
        request = RequestFactory().get(LIST, {"health": "green"})
        request.user, request.organization = user, organization
        filters = views._list_filters(request)
        rows = _compiled_rows(request, filters)
        names[organization.pk] = (rows.count(), [p.name for p in rows[0:25]])

    assert names == {a.pk: (2, ["Alpha 0", "Alpha 3"]), b.pk: (2, ["Bravo 0", "Bravo 3"])}
    assert len(project_list._list_shapes) == 1


def test_the_user_is_bound_too_an_organization_the_user_is_not_in_gives_no_rows():
    a, b = OrganizationFactory(), OrganizationFactory()
    _portfolio(a, "Alpha")
    request = RequestFactory().get(LIST)
    request.user, request.organization = member(b, Role.ADMIN), a
    filters = views._list_filters(request)

    rows = _compiled_rows(request, filters)

    assert rows.count() == 0 and rows[0:25] == []


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("stage", ["ideation", "development"]),
        ("health", ["green", "red"]),
        ("industry", ["finance", "retail"]),
        ("use_case", ["customer_support", "data_analysis"]),
        ("provider", ["aws", "gcp"]),
        ("team", None),
    ],
)
@pytest.mark.parametrize("sort", ["", "-spend", "-budget,name"])
def test_each_filter_value_bound_into_a_compiled_shape_gives_the_orms_rows(client, org, viewer, name, values, sort):
    projects = _portfolio(org, "Project")
    _portfolio(OrganizationFactory(), "Other")
    values = values or [str(projects[0].team_id), str(projects[1].team_id)]
    client.force_login(viewer)
    for value in values:
        request = RequestFactory().get(LIST, {name: value, "sort": sort})
        request.user, request.organization = viewer, org
        filters = views._list_filters(request)
        expected = list(
            project_list.project_rows(user=request.user, organization=request.organization, filters=filters)
        )

        response = client.get(LIST, {name: value, "sort": sort})

        rows = list(response.context["page"])
        assert [p.pk for p in rows] == [p.pk for p in expected] and rows
        assert response.context["page"].paginator.count == len(expected)
        for row, want in zip(rows, expected, strict=True):
            assert (row.spend_to_date, row.open_risks, row.critical_risks) == (
                want.spend_to_date,
                want.open_risks,
                want.critical_risks,
            )
            assert row.budget == budget_status_of(want) and row.team.name == want.team.name
    assert len(project_list._list_shapes) == 1


def test_a_later_page_is_the_orms_slice(client, org, viewer, monkeypatch):
    monkeypatch.setattr(views, "PAGE_SIZE", 4)
    _portfolio(org, "Project")
    client.force_login(viewer)

    first, second = client.get(LIST + "?sort=-spend"), client.get(LIST + "?sort=-spend&page=2")

    assert _names(first) == ["Project 5", "Project 4", "Project 3", "Project 2"]
    assert _names(second) == ["Project 1", "Project 0"]
    assert second.context["page"].paginator.num_pages == 2


def test_a_search_runs_through_the_orm_and_compiles_nothing(client, org, viewer):
    _portfolio(org, "Project")
    client.force_login(viewer)

    response = client.get(LIST + "?q=project 4&stage=ideation")

    assert _names(response) == ["Project 4"]
    assert project_list._list_shapes == {}


def test_the_compiled_shapes_are_bounded(client, org, viewer, monkeypatch):
    monkeypatch.setattr(project_list, "LIST_SHAPES_MAX", 2)
    _portfolio(org, "Project")
    client.force_login(viewer)

    for sort in ["name", "-name", "stage", "health"]:
        assert client.get(LIST, {"sort": sort}).status_code == 200

    assert 0 < len(project_list._list_shapes) <= 2


def test_a_filter_the_orm_writes_differently_from_its_probe_is_refused(org, viewer, monkeypatch):
    # A search's lookup sends `%term%`: its probe would not be found, and the probe's rows would be served.
    monkeypatch.setitem(project_list.LIST_FILTER_PROBES, "q", "probe:search")
    request = RequestFactory().get(LIST, {"q": "claims"})
    request.user, request.organization = viewer, org

    with pytest.raises(ValueError, match="binds"):
        project_list._list_statements(views._list_filters(request), names=("q",), sort=(), as_of=dt.date(2026, 12, 1))
