"""Unpriced usage kept and flagged; repricing it (dry run, then apply) once a price arrives."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.test import Client

from ops.models import CostEntry, Report, ReportKind, ReportState, RiskSnapshot, SpendSnapshot
from ops.selectors.portfolio import project_cost_figures
from ops.services import risk_signals_evaluate, usage_reprice_apply, usage_reprice_plan
from ops.tests.factories import CostEntryFactory, ModelPriceFactory
from projects.models import AuditAction, AuditEvent, Role
from projects.tests.api_support import _fresh_throttle, as_role, error_fields  # noqa: F401
from projects.tests.factories import OrganizationFactory, ProjectFactory
from tracker.exceptions import NotPermitted

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 3, 2)


def usage(project, **fields):
    return {"project": project.pk, "date": DAY.isoformat(), "model": "claude-new", "provider": "anthropic",
            "input_tokens": 2_000_000, "output_tokens": 1_000_000, **fields}  # fmt: skip


def ingest(project, *rows):
    response = as_role(project.organization).post("/api/v1/usage/", {"entries": list(rows)}, format="json")
    assert response.status_code == 201, response.json()
    return [CostEntry.objects.get(pk=pk) for pk in response.json()["created_ids"]]


def new_price(org, **fields):
    return ModelPriceFactory(
        organization=org, provider="anthropic", model="claude-new", input_per_mtok=Decimal(3),
        output_per_mtok=Decimal(15), **{"valid_from": dt.date(2026, 1, 1), **fields},
    )  # fmt: skip


def test_unpriced_usage_is_kept_flagged_in_figures_the_api_and_the_signal(project):
    (entry,) = ingest(project, usage(project))
    assert (entry.amount, entry.price, entry.provider) == (None, None, "anthropic")
    figures = project_cost_figures(project=project, as_of=DAY)
    assert figures.spend.incomplete and figures.spend.unpriced_entries == 1
    body = as_role(project.organization, Role.VIEWER).get(f"/api/v1/costs/{entry.pk}/").json()
    assert (body["amount"], body["priced"], body["provider"]) == (None, False, "anthropic")
    risk_signals_evaluate(organization=project.organization, today=DAY)
    assert project.risks.filter(signal_rule="unpriced_usage").count() == 1


def test_usage_form_keeps_unpriced_usage_and_prices_what_a_price_covers(project, contributor):
    client = Client()
    client.force_login(contributor)
    form = {"date": DAY.isoformat(), "provider": "anthropic", "model": "claude-new",
            "input_tokens": "2000000", "output_tokens": "1000000"}  # fmt: skip
    response = client.post(f"/projects/{project.pk}/usage/", form)
    assert response.status_code in (200, 302)
    entry = CostEntry.objects.get()
    assert (entry.amount, entry.source, entry.provider) == (None, "usage", "anthropic")
    page = client.get(project.get_absolute_url()).content.decode()
    assert "incomplete: unpriced usage (1)" in page
    new_price(project.organization)
    client.post(f"/projects/{project.pk}/usage/", form | {"date": "2026-03-03"})
    assert CostEntry.objects.get(date="2026-03-03").amount == Decimal("21.0000")  # 2 × 3 + 1 × 15


def test_dry_run_changes_nothing_and_apply_prices_exactly_the_waiting_entries(project, manager):
    org = project.organization
    waiting = ingest(project, usage(project), usage(project, date="2026-03-03", input_tokens=0))
    new_price(org, valid_from=dt.date(2026, 3, 10))  # not valid yet on the usage's days
    old = ModelPriceFactory(organization=org, model="gpt-4o", input_per_mtok=Decimal(1), valid_from=DAY)
    priced = CostEntryFactory(project=project, date=DAY, source="usage", model="gpt-4o", provider="openai",
                              price=old, amount=Decimal("1.0000"), input_tokens=1_000_000)  # fmt: skip
    assert usage_reprice_plan(organization=org, by=manager).changes == []
    price = new_price(org)
    before = list(CostEntry.objects.order_by("pk").values_list("pk", "amount", "price_id", "updated_at"))
    events = AuditEvent.objects.filter(action=AuditAction.BATCH).count()
    plan = usage_reprice_plan(organization=org, by=manager)
    assert [(c.entry_id, c.old_amount, c.new_amount) for c in plan.changes] == [
        (waiting[0].pk, None, Decimal("21.0000")),
        (waiting[1].pk, None, Decimal("15.0000")),
    ]
    assert [(t.entries, t.old_total, t.new_total) for t in plan.totals] == [(2, 0, Decimal("36.0000"))]
    assert list(CostEntry.objects.order_by("pk").values_list("pk", "amount", "price_id", "updated_at")) == before
    assert AuditEvent.objects.filter(action=AuditAction.BATCH).count() == events
    late = ingest(project, usage(project, date="2026-03-04"))[0]  # arrives after the dry run, priced already
    applied = usage_reprice_apply(organization=org, by=manager, entry_ids=plan.entry_ids)
    assert applied.entry_ids == plan.entry_ids
    amounts = dict(CostEntry.objects.values_list("pk", "amount"))
    assert amounts[waiting[0].pk] == Decimal("21.0000") and amounts[waiting[1].pk] == Decimal("15.0000")
    assert CostEntry.objects.get(pk=waiting[0].pk).price == price
    assert amounts[priced.pk] == Decimal("1.0000") and amounts[late.pk] == Decimal("21.0000")
    (event,) = AuditEvent.objects.filter(action=AuditAction.BATCH, object_repr__startswith="Repriced")
    assert sorted(event.changes["changed"]) == sorted(plan.entry_ids)
    assert AuditEvent.objects.filter(action=AuditAction.BATCH).count() == events + 2  # the late ingest's, the reprice's


def test_priced_entries_change_only_when_asked_with_the_same_flow(project, manager):
    org = project.organization
    price = new_price(org)
    (entry,) = ingest(project, usage(project))
    CostEntry.objects.filter(pk=entry.pk).update(amount=Decimal("99.0000"))  # priced under an older rule
    assert usage_reprice_plan(organization=org, by=manager).changes == []
    assert usage_reprice_apply(organization=org, by=manager, entry_ids=[entry.pk]).changes == []
    assert CostEntry.objects.get(pk=entry.pk).amount == Decimal("99.0000")
    plan = usage_reprice_plan(organization=org, by=manager, include_priced=True)
    assert [(c.old_amount, c.new_amount, c.price_id) for c in plan.changes] == [
        (Decimal("99.0000"), Decimal("21.0000"), price.pk)
    ]
    usage_reprice_apply(organization=org, by=manager, entry_ids=plan.entry_ids, include_priced=True)
    assert CostEntry.objects.get(pk=entry.pk).amount == Decimal("21.0000")


def test_apply_carries_the_change_into_snapshots_and_marks_reports_revised(project, manager):
    org = project.organization
    (entry,) = ingest(project, usage(project))
    CostEntryFactory(project=project, date=DAY, amount=Decimal(5))
    for day, spend_day, to_date in (
        (DAY - dt.timedelta(days=1), 0, 0),
        (DAY, 5, 5),
        (DAY + dt.timedelta(days=3), 0, 5),
    ):
        # As snapshots_take writes them: the organization's snapshot of the day, and the project's row.
        RiskSnapshot.objects.create(organization=org, date=day)
        SpendSnapshot.objects.create(project=project, date=day, spend_day=spend_day, spend_to_date=to_date,
                                     unpriced_entries=0 if day < DAY else 1)  # fmt: skip

    def report(start, end, **fields):
        return Report.objects.create(organization=org, kind=ReportKind.STATUS, period_start=start, period_end=end,
                                     state=ReportState.READY, **fields)  # fmt: skip

    before = report(dt.date(2026, 2, 23), dt.date(2026, 3, 1))
    covering = report(dt.date(2026, 3, 2), dt.date(2026, 3, 8))
    later = report(dt.date(2026, 3, 9), dt.date(2026, 3, 15), project=project)
    other = report(dt.date(2026, 3, 2), dt.date(2026, 3, 8), project=ProjectFactory(organization=org))
    new_price(org)
    plan = usage_reprice_plan(organization=org, by=manager)
    usage_reprice_apply(organization=org, by=manager, entry_ids=plan.entry_ids)
    snapshots = list(
        SpendSnapshot.objects.order_by("date").values_list("spend_day", "spend_to_date", "unpriced_entries")
    )
    assert snapshots == [(0, 0, 0), (26, 26, 0), (0, 26, 0)]
    revised = set(Report.objects.filter(revised_at__isnull=False).values_list("pk", flat=True))
    assert revised == {covering.pk, later.pk} and before.pk not in revised and other.pk not in revised
    client = Client()
    client.force_login(manager)
    assert "figures revised since" in client.get(covering.get_absolute_url()).content.decode()
    assert as_role(org).get(f"/api/v1/reports/{covering.pk}/").json()["revised_at"] is not None
    assert entry.pk in plan.entry_ids


def test_reprice_api_dry_run_then_apply_and_contributors_are_refused(project):
    org = project.organization
    (entry,) = ingest(project, usage(project))
    new_price(org)
    manager = as_role(org, Role.MANAGER)
    dry = manager.post("/api/v1/model-prices/reprice/", {"dry_run": True}, format="json")
    assert dry.status_code == 200, dry.json()
    body = dry.json()
    assert body["entries"] == [entry.pk] and body["applied"] is False
    assert body["changes"][0]["old_amount"] is None and body["changes"][0]["new_amount"] == "21.0000"
    assert body["totals"] == [{"project": project.pk, "project_name": project.name, "entries": 1,
                               "old_total": "0.00", "new_total": "21.00", "difference": "21.00"}]  # fmt: skip
    assert CostEntry.objects.get().amount is None
    contributor = as_role(org, Role.CONTRIBUTOR)
    refused = contributor.post(
        "/api/v1/model-prices/reprice/", {"dry_run": False, "entries": [entry.pk]}, format="json"
    )
    assert refused.status_code == 403 and CostEntry.objects.get().amount is None
    assert contributor.post("/api/v1/model-prices/reprice/", {}, format="json").status_code == 403
    applied = manager.post(
        "/api/v1/model-prices/reprice/", {"dry_run": False, "entries": body["entries"]}, format="json"
    )
    assert applied.status_code == 200 and applied.json()["applied"] is True
    assert CostEntry.objects.get().amount == Decimal("21.0000")


def test_reprice_never_touches_another_organizations_entries(project, manager):
    org = project.organization
    stranger = ProjectFactory(organization=OrganizationFactory())
    foreign = CostEntryFactory(project=stranger, source="usage", amount=None, model="claude-new", provider="anthropic")
    ModelPriceFactory(organization=stranger.organization, provider="anthropic", model="claude-new")
    new_price(org)
    assert usage_reprice_plan(organization=org, by=manager).changes == []
    assert usage_reprice_apply(organization=org, by=manager, entry_ids=[foreign.pk]).changes == []
    assert CostEntry.objects.get(pk=foreign.pk).amount is None
    with pytest.raises(NotPermitted):
        usage_reprice_plan(organization=stranger.organization, by=manager)
    response = as_role(org, Role.MANAGER).post(
        "/api/v1/model-prices/reprice/", {"organization": stranger.organization.pk}, format="json"
    )
    assert response.status_code in (400, 404) and CostEntry.objects.get(pk=foreign.pk).amount is None


def test_prices_page_previews_then_applies_and_is_for_managers(project, manager, contributor):
    (entry,) = ingest(project, usage(project))
    new_price(project.organization)
    client = Client()
    client.force_login(contributor)
    assert client.get("/prices/").status_code == 200  # every member reads the prices
    assert client.get("/prices/", {"preview": "1"}).status_code == 403
    assert client.post("/prices/", {"entries": str(entry.pk)}).status_code == 403
    client.force_login(manager)
    page = client.get("/prices/", {"preview": "1"}).content.decode()
    assert "incomplete: unpriced usage" in page and "reprice-changes" in page
    assert CostEntry.objects.get().amount is None
    response = client.post("/prices/", {"entries": str(entry.pk)})
    assert response.status_code == 302 and CostEntry.objects.get().amount == Decimal("21.0000")


def test_command_lists_then_applies(project, manager):
    ingest(project, usage(project))
    new_price(project.organization)
    call_command("reprice_usage", org=project.organization.slug, by=manager.username, verbosity=0)
    assert CostEntry.objects.get().amount is None
    call_command("reprice_usage", org=project.organization.slug, by=manager.username, apply=True, verbosity=0)
    assert CostEntry.objects.get().amount == Decimal("21.0000")
