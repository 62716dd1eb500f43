"""Bulk ingestion's two writers: COPY on PostgreSQL and the ORM elsewhere store the same rows and history."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import models
from django.test import RequestFactory

from ops.models import CostCategory, CostEntry, CostSource
from ops.services import cost_entries_ingest, cost_entry_create, ingest, usage_ingest
from ops.tests.factories import ModelPriceFactory
from projects.audit import audit_request
from projects.models import AuditAction, AuditEvent, Role
from projects.services import api_token_create
from projects.tests.factories import MembershipFactory, OrganizationFactory, ProjectFactory
from tests.concurrency import at_once

pytestmark = pytest.mark.django_db

DECIMALS = {f.attname for f in CostEntry._meta.concrete_fields if isinstance(f, models.DecimalField)}
BOOKKEEPING = {"id", "project_id", "created_at", "updated_at"}


@pytest.fixture
def contributor():
    return MembershipFactory(organization=OrganizationFactory(), role=Role.CONTRIBUTOR).user


@pytest.fixture
def projects(contributor):
    organization = contributor.memberships.get().organization
    # The same name, so the entries' labels (which name the project) compare equal.
    return [ProjectFactory(organization=organization, name="Gateway", slug=f"gateway-{n}") for n in (1, 2)]


def rows(project, prefix: str) -> list[dict]:
    return [
        {
            "project": project.pk,
            "date": f"2026-03-{day:02}",
            "category": "inference",
            "amount": f"{day}.50",
            "description": f"Line “{day}”, with a 'quote', a \\ backslash,\ta tab and\na new line",
            "model": "gpt-4o",
            "input_tokens": 1000 * day,
            "output_tokens": 10 * day,
            "gpu_hours": "1.25",
            "external_id": f"{prefix}-{day}",
        }
        for day in range(1, 6)
    ] + [{"project": project.pk, "date": "2026-03-09", "category": "storage", "amount": "0"}]


def stored(ids: list[int]) -> list[dict]:
    by_id = {entry["id"]: entry for entry in CostEntry.objects.filter(pk__in=ids).values()}
    return [{k: v for k, v in by_id[pk].items() if k not in BOOKKEEPING | {"external_id"}} for pk in ids]


def history(ids: list[int]) -> list[dict]:
    """The creation events of these entries in request order, decimals compared as numbers."""
    by_id = {int(e.object_id): e for e in AuditEvent.objects.filter(object_type="ops.costentry")}
    out = []
    for pk in ids:
        event = by_id[pk]
        changes = {
            name: [old, None if new is None else Decimal(str(new)) if name in DECIMALS else new]
            for name, (old, new) in event.changes.items()
            if name not in {"project_id", "external_id"}
        }
        out.append({"action": event.action, "repr": event.object_repr, "actor": event.actor_id, "changes": changes})
    return out


def test_copy_and_orm_writers_store_the_same_rows_and_history(projects, contributor, monkeypatch):
    copied = cost_entries_ingest(by=contributor, entries=rows(projects[0], "copy")).created_ids
    monkeypatch.setattr(ingest, "_on_postgresql", lambda: False)
    created = cost_entries_ingest(by=contributor, entries=rows(projects[1], "orm")).created_ids

    assert len(copied) == len(created) == 6
    assert stored(copied) == stored(created)
    assert history(copied) == history(created)
    assert [e["changes"]["amount"][1] for e in history(copied)] == [Decimal(f"{d}.5") for d in range(1, 6)] + [0]


def test_ids_come_back_in_request_order_and_the_sequence_moves_on(projects, contributor):
    entries = rows(projects[0], "order")
    ids = cost_entries_ingest(by=contributor, entries=entries).created_ids
    assert list(CostEntry.objects.filter(pk__in=ids).order_by("pk").values_list("external_id", flat=True)) == [
        e.get("external_id", "") for e in entries
    ]
    later = cost_entry_create(
        project=projects[0], by=contributor, date=dt.date(2026, 3, 10), category="storage", amount=Decimal(1)
    )
    assert later.pk > max(ids)


def test_copied_history_has_its_scope_actor_token_and_the_stored_values(projects, contributor):
    token, _ = api_token_create(user=contributor, name="gateway-nightly")
    request = RequestFactory().post("/api/v1/costs/bulk/")
    request.user, request.audit_token = contributor, token
    project = projects[0]
    with audit_request(request):
        (pk,) = cost_entries_ingest(by=contributor, entries=rows(project, "scope")[:1]).created_ids

    event = AuditEvent.objects.get(object_type="ops.costentry", object_id=str(pk))
    assert (event.action, event.organization_id, event.project_id) == (
        AuditAction.CREATE,
        project.organization_id,
        project.pk,
    )
    assert (event.actor_id, event.token_id) == (contributor.pk, token.pk)
    assert event.actor_repr == f"{contributor.username} via API token “gateway-nightly” ({token.prefix}…)"
    assert event.object_repr == str(CostEntry.objects.get(pk=pk)).replace("1.5000", "1.50")
    assert event.changes["amount"] == [None, "1.5000"]
    assert event.changes["date"] == [None, "2026-03-01"]
    assert event.changes["description"] == [None, "Line “1”, with a 'quote', a \\ backslash,\ta tab and\na new line"]
    assert event.changes["price_id"] == [None, None] and event.changes["created_by_id"] == [None, contributor.pk]
    assert event.changes["source"] == [None, CostSource.API]
    assert not {"id", "created_at", "updated_at"} & event.changes.keys()


def test_a_failure_mid_copy_writes_nothing(projects, contributor, monkeypatch):
    def explode(project, date, category, amount):
        if date.day == 3:
            raise RuntimeError("the connection dropped")
        return "label"

    monkeypatch.setattr(CostEntry, "label", staticmethod(explode))
    with pytest.raises(RuntimeError):
        cost_entries_ingest(by=contributor, entries=rows(projects[0], "fail"))
    assert not CostEntry.objects.exists()
    assert not AuditEvent.objects.filter(object_type="ops.costentry").exists()


def test_usage_is_copied_with_its_price(projects, contributor):
    project = projects[0]
    price = ModelPriceFactory(
        organization=project.organization, model="gpt-4o", valid_from=dt.date(2026, 1, 1), input_per_mtok=Decimal(2)
    )
    entries = [{"project": project.pk, "date": "2026-03-01", "model": "gpt-4o"}]
    entries[0] |= {"input_tokens": 10**6, "output_tokens": 0}
    (pk,) = usage_ingest(by=contributor, entries=entries).created_ids

    entry = CostEntry.objects.get(pk=pk)
    assert (entry.category, entry.source, entry.price_id, entry.amount) == (
        CostCategory.INFERENCE,
        CostSource.USAGE,
        price.pk,
        Decimal("2.0000"),
    )
    # Usage is a machine-made aggregate: one batch event per project lists what it created, no event per row.
    event = AuditEvent.objects.get(object_type="ops.costentry")
    assert (event.action, event.project_id, event.changes["created"]) == (AuditAction.BATCH, project.pk, [pk])


@pytest.mark.django_db(transaction=True)
def test_the_same_batch_sent_twice_at_once_is_recorded_once(projects, contributor):
    """Both requests lock the batch's projects, so the second sees the first's rows as already there."""
    entries = rows(projects[0], "race") + rows(projects[1], "race")
    results = at_once(*[lambda: cost_entries_ingest(by=contributor, entries=entries)] * 2)

    assert not [r for r in results if isinstance(r, Exception)]
    first, second = sorted(results, key=lambda r: -len(r.created_ids))
    with_ids = [i for i, e in enumerate(entries) if "external_id" in e]
    assert len(first.created_ids) == len(entries) and first.existing == []
    # The rows without an external id cannot be recognised: they are recorded again, as documented.
    assert len(second.created_ids) == len(entries) - len(with_ids)
    assert [e["index"] for e in second.existing] == with_ids
    assert CostEntry.objects.exclude(external_id="").count() == len(with_ids)
    assert AuditEvent.objects.filter(object_type="ops.costentry").count() == CostEntry.objects.count()
