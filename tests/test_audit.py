"""Audit history: every change recorded with who, when and old → new; nobody can rewrite it."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib import admin
from django.db import DatabaseError, transaction
from django.test import RequestFactory

from ops.models import Budget
from ops.services import budget_create, cost_entry_create, risk_create, risk_update
from ops.services.costs import budget_delete
from projects.audit import audit_request
from projects.models import AuditAction, AuditEvent, Role
from projects.selectors import audit_history
from projects.services import project_create, project_transition, project_update, status_update_create
from projects.tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager():
    return MembershipFactory(role=Role.MANAGER)


def _as(user):
    request = RequestFactory().get("/")
    request.user = user
    return audit_request(request)


def test_project_changes_are_recorded_with_actor_and_old_and_new_values(manager):
    user, org = manager.user, manager.organization
    with _as(user):
        project = project_create(organization=org, by=user, name="Support bot")
        project_update(project=project, by=user, summary="Answers tickets", industry="retail")
    events = list(audit_history(obj=project).order_by("id"))
    assert [e.action for e in events] == [AuditAction.CREATE, AuditAction.UPDATE]
    assert events[0].actor == user and events[0].actor_repr == user.username
    assert events[1].changes == {"summary": ["", "Answers tickets"], "industry": ["other", "retail"]}
    assert events[1].organization_id == org.pk and events[1].project_id == project.pk


def test_every_audited_kind_lands_in_the_project_history(manager):
    user, org = manager.user, manager.organization
    with _as(user):
        project = project_create(organization=org, by=user, name="Fraud scoring")
        project_transition(project=project, to_stage="data_preparation", by=user)
        status_update_create(
            project=project, by=user, date=dt.date(2026, 1, 5), health="green", progress=10, summary="Kick-off"
        )
        budget_create(
            project=project,
            by=user,
            period_start=dt.date(2026, 1, 1),
            period_end=dt.date(2026, 12, 31),
            amount=Decimal(5000),
        )
        cost_entry_create(
            project=project, by=user, date=dt.date(2026, 1, 6), category="inference", amount=Decimal("12.50")
        )
        risk = risk_create(
            project=project, by=user, title="PII in prompts", category="data_privacy", likelihood=3, impact=4
        )
        risk_update(risk=risk, by=user, likelihood=4)
    kinds = set(audit_history(project=project).values_list("object_type", flat=True))
    assert kinds >= {
        "projects.project",
        "projects.stagetransition",
        "projects.statusupdate",
        "ops.budget",
        "ops.costentry",
        "ops.risk",
    }
    risk_events = audit_history(obj=risk).order_by("id")
    assert risk_events.last().changes["likelihood"] == [3, 4]


def test_a_deletion_is_recorded_and_history_survives_it(manager):
    user, org = manager.user, manager.organization
    with _as(user):
        project = project_create(organization=org, by=user, name="Playlist")
        budget = budget_create(
            project=project, by=user, period_start=dt.date(2026, 1, 1), period_end=dt.date(2026, 6, 30), amount=100
        )
        budget_id = budget.pk
        budget_delete(budget=budget, by=user)
    deleted = AuditEvent.objects.get(object_type="ops.budget", object_id=str(budget_id), action=AuditAction.DELETE)
    assert deleted.changes["amount"] == ["100.00", None]
    assert not Budget.objects.filter(pk=budget_id).exists()


def test_changes_without_a_request_are_attributed_to_the_system(manager):
    project = project_create(organization=manager.organization, by=manager.user, name="Batch job")
    event = audit_history(obj=project).get()
    assert event.actor is None and event.actor_repr == "system"


def test_the_database_refuses_to_edit_or_delete_history(manager):
    project = project_create(organization=manager.organization, by=manager.user, name="Robo-advisor")
    event = audit_history(obj=project).get()
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(actor_repr="someone else")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).actor_repr == "system"


def test_the_admin_cannot_add_change_or_delete_history():
    model_admin = admin.site._registry[AuditEvent]
    request = RequestFactory().get("/admin/")
    request.user = type(
        "Superuser", (), {"is_active": True, "is_staff": True, "is_superuser": True, "has_perm": lambda *a: True}
    )()
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)


def test_history_page_shows_changes_to_members_only(client, manager):
    user, org = manager.user, manager.organization
    with _as(user):
        project = project_create(organization=org, by=user, name="Newsroom drafts")
        project_update(project=project, by=user, summary="Drafts headlines")
    viewer = MembershipFactory(organization=org, role=Role.VIEWER).user
    client.force_login(viewer)
    response = client.get(f"/projects/{project.pk}/history/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Drafts headlines" in body and user.username in body

    outsider = MembershipFactory(role=Role.ADMIN).user
    client.force_login(outsider)
    assert client.get(f"/projects/{project.pk}/history/").status_code == 404


def test_history_page_queries_do_not_grow_with_events(client, manager, django_assert_max_num_queries):
    user, org = manager.user, manager.organization
    project = project_create(organization=org, by=user, name="Query count")
    for n in range(30):
        project_update(project=project, by=user, summary=f"Revision {n}")
    client.force_login(user)
    with django_assert_max_num_queries(12):
        assert client.get(f"/projects/{project.pk}/history/").status_code == 200


def test_api_history_names_the_token_and_covers_bulk_ingest(client, manager):
    from projects.services import api_token_create

    user, org = manager.user, manager.organization
    project = project_create(organization=org, by=user, name="Gateway")
    token, raw = api_token_create(user=user, name="gateway-nightly")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    rows = [
        {
            "project": project.pk,
            "date": f"2026-03-0{d}",
            "category": "inference",
            "amount": "1.50",
            "external_id": f"n-{d}",
        }
        for d in (1, 2, 3)
    ]
    assert client.post(
        "/api/v1/costs/bulk/", {"entries": rows}, content_type="application/json", **auth
    ).status_code in (
        200,
        201,
    )
    body = client.get(f"/api/v1/projects/{project.pk}/history/", **auth).json()
    costs = [e for e in body["results"] if e["object_type"] == "ops.costentry"]
    assert len(costs) == 3
    assert all(e["token"] == token.pk and "gateway-nightly" in e["actor_repr"] for e in costs)
    assert body["results"][-1]["object_type"] == "projects.project"  # oldest last


def test_api_risk_history_and_no_way_to_write_history(client, manager):
    user, org = manager.user, manager.organization
    project = project_create(organization=org, by=user, name="Scribe")
    client.force_login(user)
    created = client.post(
        "/api/v1/risks/",
        {"project": project.pk, "title": "Leaks", "category": "data_privacy", "likelihood": 2, "impact": 3},
        content_type="application/json",
    )
    risk_id = created.json()["id"]
    client.patch(f"/api/v1/risks/{risk_id}/", {"likelihood": 4}, content_type="application/json")
    events = client.get(f"/api/v1/risks/{risk_id}/history/").json()["results"]
    assert [e["action"] for e in events] == ["update", "create"]
    assert events[0]["changes"]["likelihood"] == [2, 4]
    for method in ("post", "put", "patch", "delete"):
        response = getattr(client, method)(f"/api/v1/risks/{risk_id}/history/", {}, content_type="application/json")
        assert response.status_code == 405


def test_history_of_another_organizations_project_is_a_404(client, manager):
    project = project_create(organization=manager.organization, by=manager.user, name="Private")
    client.force_login(MembershipFactory(role=Role.ADMIN).user)
    assert client.get(f"/api/v1/projects/{project.pk}/history/").status_code == 404
