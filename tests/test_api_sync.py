"""Incremental sync: sync filters, cursor pages on (updated_at, id), the change feed, updated_at on every write path."""

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone

from ops.models import CostEntry, Report, Risk
from ops.services import costs, risk_create
from ops.tests.factories import CostEntryFactory, ReportFactory, RiskFactory
from projects.models import ApiToken, Membership, Project, Role, TokenScope
from projects.services import api_token_revoke, membership_role_set
from projects.tests.api_support import _fresh_throttle, as_role, client_for  # noqa: F401
from projects.tests.factories import OrganizationFactory, ProjectFactory, member
from tests.concurrency import at_once


@pytest.fixture
def org():
    return OrganizationFactory(name="Acme")


@pytest.fixture(autouse=True)
def _no_clock_margin(settings):
    # App and database share this machine's clock; the margin would only hide the rows just written.
    settings.API_SYNC_CLOCK_MARGIN_SECONDS = 0


def walk_rows(client, url: str) -> tuple[list[dict], str]:
    """Follow `next` to the end; return the rows seen, in order, and the last page's `resume` link."""
    rows, body = [], {"next": url}
    while body["next"]:
        answer = client.get(body["next"])
        assert answer.status_code == 200, answer.json()
        body = answer.json()
        assert "count" not in body and body["previous"] is None
        rows += body["results"]
    return rows, body["resume"]


def walk(client, url: str) -> tuple[list[int], str]:
    rows, resume = walk_rows(client, url)
    return [row["id"] for row in rows], resume


@pytest.mark.django_db
def test_rows_inserted_between_cursor_pages_neither_repeat_nor_vanish(org):
    client = as_role(org, Role.VIEWER)
    before = [ProjectFactory(organization=org).pk for _ in range(10)]
    first = client.get("/api/v1/projects/?ordering=updated_at&page_size=4").json()
    assert "cursor=" in first["next"] and [row["id"] for row in first["results"]] == before[:4]
    added = [ProjectFactory(organization=org).pk for _ in range(7)]  # the 7 rows

    rest, _ = walk(client, first["next"])

    seen = [row["id"] for row in first["results"]] + rest
    assert seen == before + added  # each once, in (updated_at, id) order


@pytest.mark.django_db
def test_descending_cursor_keeps_its_rows_when_newer_ones_arrive(org):
    client = as_role(org, Role.VIEWER)
    before = [ProjectFactory(organization=org).pk for _ in range(6)]
    first = client.get("/api/v1/projects/?ordering=-updated_at&page_size=4").json()
    ProjectFactory.create_batch(3, organization=org)
    rest, _ = walk(client, first["next"])
    assert [row["id"] for row in first["results"]] + rest == before[::-1]


@pytest.mark.django_db
def test_resume_link_returns_only_what_changed_since(org):
    client = as_role(org, Role.VIEWER)
    ProjectFactory.create_batch(3, organization=org)
    _, resume = walk(client, "/api/v1/projects/?ordering=updated_at")
    assert client.get(resume).json()["results"] == []
    changed = Project.objects.filter(organization=org).first()
    Project.objects.filter(pk=changed.pk).update(summary="Changed")  # a bulk path: updated_at still moves
    new = ProjectFactory(organization=org)

    ids, _ = walk(client, resume)

    assert ids == [changed.pk, new.pk]


@pytest.mark.django_db(transaction=True)
def test_a_row_committing_late_with_an_earlier_timestamp_is_not_skipped(org):
    """A second connection writes a row, holds its transaction open, and commits after a later row did."""
    client = as_role(org, Role.VIEWER)
    early = [ProjectFactory(organization=org).pk for _ in range(2)]
    written, release = threading.Event(), threading.Event()

    def late_writer() -> int:
        with transaction.atomic():
            project = ProjectFactory(organization=org, name="Late")
            written.set()
            assert release.wait(30)
        return project.pk

    def reader() -> tuple[list[int], list[int], int]:
        try:
            assert written.wait(30)
            later = ProjectFactory(organization=org, name="Later").pk  # committed, timestamp after Late's
            first_pass, resume = walk(client, "/api/v1/projects/?ordering=updated_at&page_size=1")
        finally:
            release.set()
        connection.close()
        return first_pass, resume, later

    late, (first_pass, resume, later) = at_once(late_writer, reader)
    # Later committed first, yet the cursor stopped before the open transaction: it passed nothing.
    assert first_pass == early
    second_pass, _ = walk(client, resume)
    assert second_pass == [late, later]
    assert Project.objects.get(pk=late).updated_at < Project.objects.get(pk=later).updated_at


@pytest.mark.django_db
def test_cursor_page_costs_a_fixed_number_of_queries(org, django_assert_num_queries):
    client = as_role(org, Role.VIEWER)
    ProjectFactory.create_batch(3, organization=org)
    client.get("/api/v1/projects/?ordering=updated_at")  # warm the token's last_used_at
    # the token with its user, then the page with the horizon inside it: no count.
    with django_assert_num_queries(2):
        client.get("/api/v1/projects/?ordering=updated_at&page_size=2")
    ProjectFactory.create_batch(30, organization=org)
    with django_assert_num_queries(2):
        client.get("/api/v1/projects/?ordering=updated_at&page_size=100")


@pytest.mark.django_db
def test_sync_filters_on_updated_and_created(org):
    client = as_role(org, Role.VIEWER)
    old = CostEntryFactory(project=ProjectFactory(organization=org), amount=Decimal("1"))
    CostEntry.objects.filter(pk=old.pk).update(updated_at=timezone.now() - dt.timedelta(days=3))
    new = CostEntryFactory(project=old.project, amount=Decimal("2"))
    since = (timezone.now() - dt.timedelta(days=1)).isoformat()

    def ids(query: str) -> list[int]:
        answer = client.get("/api/v1/costs/", {**query})
        assert answer.status_code == 200, answer.json()
        return [row["id"] for row in answer.json()["results"]]

    assert ids({"updated_after": since}) == [new.pk]
    assert ids({"updated_before": since}) == [old.pk]
    assert ids({"updated_after": "2030-01-01"}) == []  # the issue: it listed every row
    assert sorted(ids({"created_after": "2000-01-01"})) == sorted([old.pk, new.pk])


# --- The change feed ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_change_feed_lists_creations_updates_and_deletions_by_cursor(org):
    manager = member(org, Role.MANAGER)
    client = client_for(manager)
    entry = costs.cost_entry_create(
        by=manager,
        project=ProjectFactory(organization=org),
        date=dt.date(2026, 3, 1),
        category="inference",
        amount=Decimal("5"),
    )
    assert client.patch(f"/api/v1/costs/{entry.pk}/", {"amount": "7"}).status_code == 200  # the actor: manager
    entry_id = entry.pk
    costs.cost_entry_delete(entry=entry, by=manager)

    first = client.get("/api/v1/events/?object_type=ops.costentry&page_size=2").json()
    assert "cursor=" in first["next"]
    rest, resume = walk_rows(client, first["next"])
    events = first["results"] + rest
    assert client.get(f"/api/v1/events/{events[2]['id']}/").json() == events[2]

    assert [(e["action"], e["object_id"]) for e in events] == [
        (a, str(entry_id)) for a in ("create", "update", "delete")
    ]
    assert "amount" in events[1]["changes"] and events[1]["actor"] == manager.pk
    assert {e["organization"] for e in events} == {org.pk}
    assert client.get(resume).json()["results"] == []


def _risk(org, by) -> Risk:
    return risk_create(
        project=ProjectFactory(organization=org), by=by, title="r", category="cost", likelihood=2, impact=2
    )


@pytest.mark.django_db
def test_change_feed_membership_and_token_events_are_for_admins(org):
    admin, manager = member(org, Role.ADMIN), member(org, Role.MANAGER)
    # History is written by the services: a risk, a membership and a token change through them.
    _risk(org, admin)
    membership_role_set(membership=Membership.objects.get(user=member(org, Role.CONTRIBUTOR)), role="viewer", by=admin)
    service = ApiToken.objects.create(user=admin, organization=org, scope=TokenScope.READ, prefix="x", key_hash="h")
    api_token_revoke(token=service, by=admin)

    def types(user) -> set[str]:
        rows, _ = walk_rows(client_for(user), "/api/v1/events/?page_size=2")
        return {row["object_type"] for row in rows}

    assert {"projects.membership", "projects.apitoken", "ops.risk"} <= types(admin)
    assert {"projects.membership", "projects.apitoken"}.isdisjoint(types(manager)) and "ops.risk" in types(manager)


@pytest.mark.django_db
def test_change_feed_is_for_managers_of_the_organization_only(org):
    _risk(org, member(org, Role.ADMIN))
    other = OrganizationFactory(name="Other")
    _risk(other, member(other, Role.ADMIN))
    for role in (Role.VIEWER, Role.CONTRIBUTOR):
        assert as_role(org, role).get("/api/v1/events/").json()["results"] == []
    seen = as_role(org, Role.MANAGER).get("/api/v1/events/?page_size=200").json()["results"]
    assert seen and {row["organization"] for row in seen} == {org.pk}
    assert as_role(org, Role.MANAGER).get("/api/v1/events/?ordering=object_type").status_code == 400


# --- updated_at on every write path ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_updated_at_moves_on_update_bulk_update_and_update_fields(org):
    risk = RiskFactory(project=ProjectFactory(organization=org))
    report = ReportFactory(organization=org)
    token = ApiToken.objects.create(user=member(org, Role.ADMIN), name="t", prefix="x", key_hash="h2")
    past = timezone.now() - dt.timedelta(days=1)
    for model, pk in ((Risk, risk.pk), (Report, report.pk), (ApiToken, token.pk)):
        model.objects.filter(pk=pk).update(updated_at=past)

    Report.objects.filter(pk=report.pk).update(step="Moved")
    risk.refresh_from_db()
    risk.title = "Bulk"
    Risk.objects.bulk_update([risk], ["title"])
    token.refresh_from_db()
    api_token_revoke(token=token, by=token.user)  # save(update_fields=["revoked_at"])

    for model, pk in ((Risk, risk.pk), (Report, report.pk), (ApiToken, token.pk)):
        assert model.objects.get(pk=pk).updated_at > past, model
    assert Risk.objects.get(pk=risk.pk).title == "Bulk"
