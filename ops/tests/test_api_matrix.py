"""Every endpoint at once: tenant isolation (another organization's objects answer 404) and query counts."""

import datetime as dt

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ops.tests.factories import (
    BudgetFactory,
    CostEntryFactory,
    InfrastructureComponentFactory,
    ModelPriceFactory,
    QualityMetricFactory,
    ReportFactory,
    RiskFactory,
)
from projects.models import Invitation, Membership, Role, StageTransition, StatusUpdate
from projects.services import api_token_create
from projects.tests.api_support import _fresh_throttle, as_role, client_for, member  # noqa: F401
from projects.tests.factories import MembershipFactory, OrganizationFactory, ProjectFactory, TeamFactory

pytestmark = pytest.mark.django_db


def _status(project):
    return StatusUpdate.objects.create(
        project=project, date=dt.date(2026, 3, 1), health="green", progress=5, summary="s"
    )


def _transition(project):
    return StageTransition.objects.create(
        project=project, from_stage="ideation", to_stage="data_preparation", at=timezone.now()
    )


# Resource → (how to make one object of the organization's project, extra POST actions on it).
RESOURCES = {
    "teams": (lambda p: TeamFactory(organization=p.organization), []),
    "memberships": (lambda p: MembershipFactory(organization=p.organization), []),
    "projects": (lambda p: p, ["transition"]),
    "status-updates": (_status, []),
    "stage-transitions": (_transition, []),
    "infrastructure": (lambda p: InfrastructureComponentFactory(project=p), []),
    "budgets": (lambda p: BudgetFactory(project=p), []),
    "costs": (lambda p: CostEntryFactory(project=p), []),
    "model-prices": (lambda p: ModelPriceFactory(organization=p.organization), []),
    "metrics": (lambda p: QualityMetricFactory(project=p), []),
    "risks": (lambda p: RiskFactory(project=p), ["accept", "close"]),
    "reports": (lambda p: ReportFactory(organization=p.organization), []),
}


@pytest.fixture
def stranger():
    """An admin of organization B: the highest role, elsewhere."""
    return as_role(OrganizationFactory(name="B"), Role.ADMIN)


@pytest.mark.parametrize("resource", [*RESOURCES, "organizations", "auth/tokens"])
def test_member_of_another_organization_gets_404_for_every_method(resource, stranger):
    project = ProjectFactory(organization=OrganizationFactory(name="A"))
    if resource == "organizations":
        obj, actions = project.organization, []
    elif resource == "auth/tokens":
        obj, actions = api_token_create(user=member(project.organization), name="A's")[0], []
    else:
        make, actions = RESOURCES[resource]
        obj = make(project)
    url = f"/api/v1/{resource}/{obj.pk}/"
    before = type(obj).objects.filter(pk=obj.pk).values().get()
    answers = {
        "GET": stranger.get(url),
        "PUT": stranger.put(url, {"name": "x", "title": "x"}, format="json"),
        "PATCH": stranger.patch(url, {"name": "x", "title": "x", "notes": "x"}, format="json"),
        "DELETE": stranger.delete(url),
    }
    answers |= {f"POST {a}": stranger.post(f"{url}{a}/", {"to_stage": "pilot", "note": "x"}) for a in actions}
    for method, response in answers.items():
        # 405 where the endpoint has no such method at all (e.g. stage history is read-only).
        assert response.status_code in (404, 405), (method, response.status_code)
        assert response.json() == {"detail": response.json()["detail"], "code": response.json()["code"], "errors": {}}
    assert {r.status_code for m, r in answers.items() if m == "GET"} == {404}
    assert type(obj).objects.filter(pk=obj.pk).values().get() == before


# Create endpoints whose body names a parent: another organization's parent is an unknown id (400), never used.
CREATE_WITH_PARENT = {
    "status-updates": {"date": "2026-03-01", "health": "green", "progress": 1, "summary": "s"},
    "infrastructure": {"name": "x", "kind": "compute", "provider": "aws"},
    "budgets": {"period_start": "2026-01-01", "period_end": "2026-02-01", "amount": "1"},
    "costs": {"date": "2026-03-01", "category": "inference", "amount": "1"},
    "metrics": {"date": "2026-03-01", "metric": "accuracy", "value": 0.9},
    "risks": {"title": "x", "category": "security", "likelihood": 1, "impact": 1},
    "reports": {"kind": "status", "period_start": "2026-03-02", "period_end": "2026-03-08"},
}


@pytest.mark.parametrize("resource", CREATE_WITH_PARENT)
def test_another_organizations_project_cannot_be_written_to(resource, stranger):
    project = ProjectFactory(organization=OrganizationFactory(name="A"))
    response = stranger.post(f"/api/v1/{resource}/", {**CREATE_WITH_PARENT[resource], "project": project.pk})
    assert response.status_code == 400
    assert "project" in response.json()["errors"]
    assert not project.status_updates.exists() and not project.cost_entries.exists() and not project.risks.exists()


def test_another_organization_cannot_be_named_as_owner():
    a = OrganizationFactory(name="A")
    client = as_role(OrganizationFactory(name="B"), Role.ADMIN)
    for resource, body in [
        ("projects", {"name": "x"}),
        (
            "model-prices",
            {"provider": "p", "model": "m", "input_per_mtok": 1, "output_per_mtok": 1, "valid_from": "2026-01-01"},
        ),
        ("teams", {"name": "x"}),
        ("invitations", {"email": "joiner@example.com", "role": "admin"}),
    ]:
        response = client.post(f"/api/v1/{resource}/", {**body, "organization": a.pk})
        assert response.status_code == 400 and "organization" in response.json()["errors"], resource
    assert not Membership.objects.filter(organization=a, role=Role.ADMIN).exists()
    assert not Invitation.objects.filter(organization=a).exists()
    # Members join by invitation only: naming a user is no longer a way in, whichever organization.
    response = client.post("/api/v1/memberships/", {"user": member(a).username, "role": "admin", "organization": a.pk})
    assert response.status_code == 405


# --- query counts --------------------------------------------------------------------------------


def _fill(resource: str, project, user, n: int) -> None:
    if resource == "organizations":
        for _ in range(n - 1):
            MembershipFactory(user=user, role=Role.VIEWER)
    elif resource == "auth/tokens":
        with override_settings(API_TOKENS_PER_USER=n + 1):  # past the cap of live tokens
            for _ in range(n - 1):
                api_token_create(user=user, name="t")
    elif resource == "projects":
        for _ in range(n - 1):
            other = ProjectFactory(organization=project.organization, health="green")
            CostEntryFactory(project=other)
            RiskFactory(project=other)
    elif resource == "memberships":
        MembershipFactory.create_batch(n - 1, organization=project.organization)
    elif resource == "model-prices":
        for day in range(n):
            ModelPriceFactory(organization=project.organization, valid_from=dt.date(2025, 1, 1) + dt.timedelta(day))
    elif resource == "reports":
        for week in range(n):
            start = dt.date(2026, 1, 5) + dt.timedelta(weeks=week)
            ReportFactory(organization=project.organization, period_start=start, period_end=start + dt.timedelta(6))
    else:
        make = RESOURCES[resource][0]
        for _ in range(n):
            make(project)


LIST_QUERY_LIMIT = 8


@pytest.mark.parametrize("resource", [*RESOURCES, "organizations", "auth/tokens"])
def test_list_costs_the_same_queries_for_2_rows_and_200(resource, django_assert_max_num_queries):
    counts = []
    for n in (2, 200):
        project = ProjectFactory()
        user = member(project.organization, Role.ADMIN)
        client = client_for(user)
        _fill(resource, project, user, n)
        client.get("/api/v1/organizations/")  # the token's first use records last_used_at once
        with django_assert_max_num_queries(LIST_QUERY_LIMIT), CaptureQueriesContext(connection) as queries:
            response = client.get(f"/api/v1/{resource}/?page_size=200")
        assert response.status_code == 200
        assert response.json()["count"] >= n
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
