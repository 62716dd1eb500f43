"""Registers people can work in (issue 16, point 7): sortable headers, filters in the URL, CSV of the
same rows, and activity feeds as sentences."""

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from ops.models import CostCategory, RiskCategory, RiskStatus
from ops.services import budget_create, cost_entry_create, risk_create
from ops.tests.factories import RiskFactory
from projects.audit import audit_actor
from projects.models import AuditEvent, DataClassification, Health, Role, Stage
from projects.services import organization_today, project_transition, project_update, status_update_create
from projects.tests.factories import OrganizationFactory, ProjectFactory, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    return OrganizationFactory(name="Northwind Retail")


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _csv(response) -> list[dict]:
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def _names(html: str, marker: str) -> list[str]:
    return re.findall(marker, html)


# Sorting and filters in the URL


def test_project_headers_sort_both_ways_and_keep_the_filters(org):
    for name, health in (("Bravo", Health.GREEN), ("Alpha", Health.GREEN), ("Charlie", Health.RED)):
        ProjectFactory(organization=org, name=name, health=health, stage=Stage.PILOT)
    ProjectFactory(organization=org, name="Delta", stage=Stage.IDEATION)
    client = _client(member(org))
    url = reverse("projects:list")

    page = client.get(url, {"stage": Stage.PILOT}).content.decode()
    rows = _names(page, r"<strong>(\w+)</strong></a><br>")
    assert rows == ["Alpha", "Bravo", "Charlie"]
    assert '<th scope="col" aria-sort="ascending"><a href="?stage=pilot&amp;sort=-name"' in page
    assert '<a href="?stage=pilot&amp;sort=health" class="sort">Health' in page

    desc = client.get(url, {"stage": Stage.PILOT, "sort": "-name"}).content.decode()
    assert _names(desc, r"<strong>(\w+)</strong></a><br>") == ["Charlie", "Bravo", "Alpha"]
    assert 'aria-sort="descending"><a href="?stage=pilot&amp;sort=name"' in desc
    assert desc.count("aria-sort=") == 1


def test_risk_headers_sort_and_keep_the_heat_map_cell(org):
    project = ProjectFactory(organization=org, name="Support bot")
    today = organization_today(org)
    RiskFactory(project=project, title="Late", likelihood=3, impact=3, next_review_date=today + dt.timedelta(days=9))
    RiskFactory(project=project, title="Soon", likelihood=3, impact=3, next_review_date=today + dt.timedelta(days=1))
    RiskFactory(project=project, title="Elsewhere", likelihood=1, impact=1)
    client = _client(member(org))

    page = client.get(reverse("ops:risks"), {"likelihood": 3, "impact": 3, "sort": "review"}).content.decode()
    titles = _names(page, r'hx-boost="false">(Late|Soon|Elsewhere)</a><br>')
    assert titles == ["Soon", "Late"]
    assert 'aria-sort="ascending"><a href="?likelihood=3&amp;impact=3&amp;sort=-review"' in page
    default = client.get(reverse("ops:risks")).content.decode()
    assert 'aria-sort="descending"><a href="?sort=score"' in default


def test_the_shareable_link_and_the_csv_link_carry_the_filters(org):
    ProjectFactory(organization=org, name="Alpha", stage=Stage.PILOT)
    page = _client(member(org)).get(reverse("projects:list"), {"stage": "pilot", "sort": "-spend"}).content.decode()
    assert f'href="{reverse("projects:list-csv")}?stage=pilot&amp;sort=-spend"' in page
    assert re.search(
        r'<span id="share-url" hidden>http://testserver/projects/\?stage=pilot&amp;sort=-spend</span>', page
    )


# CSV of the same rows


def test_project_csv_holds_the_rows_of_every_page_in_the_pages_order(org, settings):
    manager = member(org, Role.MANAGER)
    today = organization_today(org)
    projects = [ProjectFactory(organization=org, name=f"P{n:02d}", stage=Stage.PILOT) for n in range(30)]
    ProjectFactory(organization=org, name="Other stage", stage=Stage.IDEATION)
    budget_create(
        project=projects[3],
        by=manager,
        period_start=today.replace(day=1),
        period_end=today.replace(day=1) + dt.timedelta(days=40),
        amount=Decimal("500"),
        tolerance_pct=Decimal("10"),
    )
    cost_entry_create(
        project=projects[3], by=manager, date=today, category=CostCategory.INFERENCE, amount=Decimal("120.00")
    )
    RiskFactory(project=projects[5], title="Open one")
    client = _client(member(org))
    params = {"stage": "pilot", "sort": "-spend"}

    pages = [client.get(reverse("projects:list"), params | {"page": n}).content.decode() for n in (1, 2)]
    shown = [name for page in pages for name in _names(page, r"<strong>([\w ]+)</strong></a><br>")]
    rows = _csv(client.get(reverse("projects:list-csv"), params))

    assert [row["name"] for row in rows] == shown and len(rows) == 30
    top = rows[0]
    assert (top["name"], top["spend_to_date"], top["budget_amount"], top["budget_spend"]) == (
        "P03",
        "120.00",
        "500.00",
        "120.00",
    )
    assert top["stage"] == "pilot" and top["currency"] == org.currency
    assert next(r for r in rows if r["name"] == "P05")["open_risks"] == "1"


def test_risk_csv_holds_the_registers_rows_with_its_filters(org):
    project = ProjectFactory(organization=org, name="Support bot")
    RiskFactory(project=project, title="Leak", category=RiskCategory.DATA_PRIVACY, likelihood=4, impact=5)
    RiskFactory(project=project, title="Drift", category=RiskCategory.DATA_PRIVACY, likelihood=2, impact=2)
    RiskFactory(project=project, title="Bill", category=RiskCategory.COST)
    RiskFactory(project=project, title="Gone", category=RiskCategory.DATA_PRIVACY, status=RiskStatus.CLOSED)
    client = _client(member(org))
    params = {"category": RiskCategory.DATA_PRIVACY}

    page = client.get(reverse("ops:risks"), params).content.decode()
    rows = _csv(client.get(reverse("ops:risks-csv"), params))

    assert (
        [r["title"] for r in rows]
        == _names(page, r'hx-boost="false">(Leak|Drift|Bill|Gone)</a><br>')
        == ["Leak", "Drift"]
    )
    assert rows[0]["category"] == "data_privacy" and rows[0]["score"] == "20"


def test_the_csv_of_another_organizations_rows_is_empty(org):
    ProjectFactory(organization=org, name="Secret")
    outsider = member(OrganizationFactory())
    assert _csv(_client(outsider).get(reverse("projects:list-csv"))) == []


# Activity feeds


@pytest.fixture
def history(org):
    """Hand-made history: Ana moves Support bot to Pilot, Ben logs a cost of $120.00 and a status."""
    ana = member(org, Role.MANAGER)
    ana.username = "Ana"
    ana.save()
    ben = member(org)
    ben.username = "Ben"
    ben.save()
    project = ProjectFactory(
        organization=org, name="Support bot", stage=Stage.EVALUATION, data_classification=DataClassification.INTERNAL
    )
    today = organization_today(org)
    from projects.audit import audit_actor

    with audit_actor(ana):
        project_transition(project=project, to_stage=Stage.PILOT, by=ana, override_reason="Board approved")
        risk_create(
            project=project, by=ana, title="Prompt injection", category=RiskCategory.SECURITY, likelihood=3, impact=4
        )
    with audit_actor(ben):
        cost_entry_create(
            project=project, by=ben, date=today, category=CostCategory.INFERENCE, amount=Decimal("120.00")
        )
        status_update_create(project=project, by=ben, date=today, health=Health.AMBER, progress=40, summary="ok")
    return {"ana": ana, "ben": ben, "project": project}


def test_the_activity_feed_reads_as_sentences(org, history):
    page = _client(history["ben"]).get(reverse("projects:activity")).content.decode()
    assert "Ana moved Support bot to Pilot, overriding its gates: “Board approved”" in page
    assert "Ben logged a cost of $120.00 (inference) on Support bot" in page
    assert "Ana added the risk “Prompt injection” on Support bot" in page
    assert "Ben logged a status update on Support bot: At risk, 40%" in page
    assert "changed Support bot" not in page, "the stage and health the sentences above tell are not repeated"
    with audit_actor(history["ana"]):
        project_update(project=history["project"], by=history["ana"], summary="Answers order questions")
    page = _client(history["ben"]).get(reverse("projects:activity")).content.decode()
    assert "Ana changed Support bot: Summary: — → Answers order questions" in page


def test_the_activity_feed_filters_by_person_kind_and_dates(org, history):
    client = _client(history["ben"])
    url = reverse("projects:activity")
    by_ana = client.get(url, {"person": history["ana"].pk}).content.decode()
    assert "Ana moved" in by_ana and "Ben logged" not in by_ana
    costs = client.get(url, {"kind": "ops.costentry"}).content.decode()
    assert "Ben logged a cost" in costs and "moved" not in costs and "status update" not in costs
    tomorrow = organization_today(org) + dt.timedelta(days=1)
    assert "Ben logged" not in client.get(url, {"since": tomorrow.isoformat()}).content.decode()
    assert "Ben logged" in client.get(url, {"until": organization_today(org).isoformat()}).content.decode()


def test_the_project_feed_holds_only_the_project(org, history):
    other = ProjectFactory(organization=org, name="Fraud radar")
    from projects.audit import audit_actor

    with audit_actor(history["ben"]):
        status_update_create(
            project=other, by=history["ben"], date=organization_today(org), health="green", progress=5, summary="x"
        )
    page = (
        _client(history["ben"]).get(reverse("projects:project-activity", args=[history["project"].pk])).content.decode()
    )
    assert "Support bot" in page and "on Fraud radar" not in page


def test_membership_events_are_for_admins_only(org, history):
    client = _client(history["ben"])
    admin = member(org, Role.ADMIN)
    AuditEvent.objects.create(
        organization=org,
        actor_repr="root",
        action="update",
        object_type="projects.membership",
        object_id="1",
        object_repr="Ben in Northwind",
        changes={"role": ["viewer", "admin"]},
    )
    assert "Ben in Northwind" not in client.get(reverse("projects:activity")).content.decode()
    assert "Ben in Northwind" in _client(admin).get(reverse("projects:activity")).content.decode()


def test_the_activity_feed_costs_the_same_queries_for_4_events_or_40(org, history):
    client = _client(history["ben"])
    url = reverse("projects:activity")
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    from projects.audit import audit_actor

    with audit_actor(history["ben"]):
        for n in range(12):
            cost_entry_create(
                project=history["project"],
                by=history["ben"],
                date=organization_today(org),
                category=CostCategory.INFERENCE,
                amount=Decimal(n),
            )
            status_update_create(
                project=ProjectFactory(organization=org),
                by=history["ben"],
                date=organization_today(org),
                health="green",
                progress=n,
                summary="x",
            )
    with CaptureQueriesContext(connection) as many:
        client.get(url)
    assert len(many) == len(few)


def test_registers_pages_cost_the_same_queries_as_they_grow(org):
    client = _client(member(org))
    project = ProjectFactory(organization=org)
    RiskFactory(project=project)
    counts = []
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            client.get(reverse("projects:list"), {"sort": "-risks"})
            client.get(reverse("ops:risks"), {"sort": "owner"})
        counts.append(len(queries))
        for _n in range(8):
            RiskFactory(project=ProjectFactory(organization=org), owner=member(org))
    assert counts[0] == counts[1]
