"""History has no holes: every service that writes leaves its events, and nothing else.

The walk discovers the public functions of every service module: a new writing service fails
`test_every_service_is_walked` until it is added to WALK (with the events it must leave) or, with
a reason, to one of the lists of services that write no history.
"""

import datetime as dt
import inspect
from collections import Counter
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db.models import Max
from django.utils import timezone

from ops.models import CostEntry, QualityMetric, Risk, RiskSource, SpendSnapshot
from ops.services import costs, fx, infrastructure, ingest, reminders, reports, risks, signals, snapshots
from ops.tests.factories import (
    BudgetFactory,
    CostEntryFactory,
    InfrastructureComponentFactory,
    ModelPriceFactory,
    QualityMetricFactory,
)
from projects import services
from projects.models import AuditAction, AuditEvent, Invitation, Membership, Role
from projects.tests.factories import MembershipFactory, ProjectFactory, TeamFactory, UserFactory, member
from projects.tokens import hash_key

pytestmark = pytest.mark.django_db

MODULES = [services, costs, fx, infrastructure, ingest, reminders, reports, risks, signals, snapshots]
READS_ONLY = {
    "membership_require",
    "organization_today",
    "api_token_expiry_default",
    "user_password_confirm",
    "report_period_limits",
    "risk_close_role",
    "snapshots_due",
    "cost_entries_check",
    "spend_anomaly_bound",
}
# Writes of rows outside the history, each a record of its own.
NO_HISTORY = {
    "report_request": "a report keeps who requested it and when; it is output, not data people change",
    "report_build": "the build only fills the report's state and content",
    "reports_schedule": "the scheduler creates pending reports, as report_request does",
    "report_digest_send": "digest_sent_at marks a mail as sent",
    "review_reminders_send": "a ReviewReminder row is itself the log of a sent mail",
    "api_token_expiry_warnings_send": "expiry_warned_at marks a mail as sent (an ignored field of the history)",
    "spend_snapshots_adjust": "carries a cost write into the snapshots; the cost service that calls it records it",
    "reference_rates_load": "ECB reference rates are the operator's data, shared by every organization",
}
C, U, D = AuditAction.CREATE, AuditAction.UPDATE, AuditAction.DELETE


def gone(obj):
    """Stand in for `obj` after its deletion, which clears its pk."""
    return SimpleNamespace(_meta=obj._meta, pk=obj.pk)


def _events_since(mark: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(pk__gt=mark).order_by("pk"))


def _mark() -> int:
    return AuditEvent.objects.aggregate(m=Max("pk"))["m"] or 0


class Walk:
    """An organization with an admin (every role) to call services as."""

    def __init__(self):
        self.admin = MembershipFactory(role=Role.ADMIN).user
        self.org = Membership.objects.get(user=self.admin).organization
        self.project = ProjectFactory(organization=self.org)

    def check(self, call, expected):
        """Run `call`; assert it left exactly the events `expected(result)` lists as (object, action)."""
        mark = _mark()
        result = call()
        got = Counter((e.object_type, e.object_id, e.action) for e in _events_since(mark))
        want = Counter((o._meta.label_lower, str(o.pk), action) for o, action in expected(result))
        assert got == want
        return result

    def check_batch(self, call, model, created):
        """Run `call`; assert it left one batch event of `model` whose created ids are `created(result)`."""
        mark = _mark()
        result = call()
        (event,) = _events_since(mark)
        assert (event.action, event.object_type) == (AuditAction.BATCH, model._meta.label_lower)
        assert event.changes["created"] == created(result)
        return result


def walk_organization_create(w):
    w.check(
        lambda: services.organization_create(name="Acme", owner=w.admin),
        lambda org: [(org, C), (Membership.objects.get(organization=org), C)],
    )


def walk_organization_update(w):
    w.check(
        lambda: services.organization_update(organization=w.org, by=w.admin, name="Renamed"), lambda _: [(w.org, U)]
    )
    w.check(lambda: services.organization_update(organization=w.org, by=w.admin, name="Renamed"), lambda _: [])


def walk_membership_create(w):
    operator = UserFactory(is_staff=True, is_superuser=True)
    w.check(
        lambda: services.membership_create(organization=w.org, user=UserFactory(), role=Role.VIEWER, by=operator),
        lambda m: [(m, C)],
    )


def walk_membership_role_set(w):
    m = MembershipFactory(organization=w.org, role=Role.VIEWER)
    w.check(lambda: services.membership_role_set(membership=m, role=Role.MANAGER, by=w.admin), lambda m: [(m, U)])


def walk_membership_delete(w):
    m = MembershipFactory(organization=w.org, role=Role.VIEWER)
    gone_m = gone(m)
    w.check(lambda: services.membership_delete(membership=m, by=w.admin), lambda _: [(gone_m, D)])


def walk_team_create(w):
    w.check(lambda: services.team_create(organization=w.org, name="Data", by=w.admin), lambda t: [(t, C)])


def walk_team_update(w):
    team = TeamFactory(organization=w.org)
    w.check(lambda: services.team_update(team=team, by=w.admin, description="Data people"), lambda t: [(t, U)])


def walk_team_delete(w):
    team = TeamFactory(organization=w.org)
    w.project.team = team
    w.project.save()
    gone_team = gone(team)
    w.check(lambda: services.team_delete(team=team, by=w.admin), lambda _: [(gone_team, D), (w.project, U)])


def walk_cost_centre_create(w):
    w.check(
        lambda: services.cost_centre_create(organization=w.org, by=w.admin, code="CC-100", name="Research"),
        lambda c: [(c, C)],
    )


def walk_cost_centre_update(w):
    centre = services.cost_centre_create(organization=w.org, by=w.admin, code="CC-100", name="Research")
    w.check(lambda: services.cost_centre_update(cost_centre=centre, by=w.admin, name="R&D"), lambda c: [(c, U)])


def walk_cost_centre_delete(w):
    centre = services.cost_centre_create(organization=w.org, by=w.admin, code="CC-100", name="Research")
    budget = BudgetFactory(project=None, cost_centre=centre)
    w.project.cost_centre = centre
    w.project.save()
    gone_centre, gone_budget = gone(centre), gone(budget)
    w.check(
        lambda: services.cost_centre_delete(cost_centre=centre, by=w.admin),
        lambda _: [(gone_centre, D), (gone_budget, D), (w.project, U)],
    )


def walk_notification_subscriptions_set(w):
    def choose(enabled: bool):
        return lambda: services.notification_subscriptions_set(
            user=w.admin, organization=w.org, choices={"risk_digest": enabled, "status_digest": True}
        )

    row = w.check(choose(False), lambda rows: [(rows[0], C)])[0]  # the default (subscribed) writes nothing
    w.check(choose(False), lambda _: [])
    w.check(choose(True), lambda _: [(row, U)])


def walk_project_create(w):
    w.check(lambda: services.project_create(organization=w.org, by=w.admin, name="Bot"), lambda p: [(p, C)])


def walk_project_update(w):
    w.check(lambda: services.project_update(project=w.project, by=w.admin, summary="Chat"), lambda p: [(p, U)])


def walk_project_transition(w):
    w.check(
        lambda: services.project_transition(project=w.project, to_stage="data_preparation", by=w.admin),
        lambda t: [(t, C), (w.project, U)],
    )


def walk_status_update_create(w):
    w.check(
        lambda: services.status_update_create(
            project=w.project, by=w.admin, date=dt.date(2026, 1, 5), health="green", progress=5, summary="Go"
        ),
        lambda s: [(s, C), (w.project, U)],
    )


def _invitation(w, key="walk-key"):
    invitation = services.invitation_create(organization=w.org, email="new@example.com", by=w.admin)
    Invitation.objects.filter(pk=invitation.pk).update(
        key_hash=hash_key(key), last_sent_at=timezone.now() - dt.timedelta(days=1)
    )
    invitation.refresh_from_db()
    return invitation


def walk_invitation_create(w):
    w.check(
        lambda: services.invitation_create(organization=w.org, email="a@example.com", by=w.admin), lambda i: [(i, C)]
    )


def walk_invitation_resend(w):
    invitation = _invitation(w)
    w.check(lambda: services.invitation_resend(invitation=invitation, by=w.admin), lambda i: [(i, U)])


def walk_invitation_revoke(w):
    invitation = _invitation(w)
    w.check(lambda: services.invitation_revoke(invitation=invitation, by=w.admin), lambda i: [(i, U)])


def walk_invitation_accept(w):
    invitation = _invitation(w)
    w.check(lambda: services.invitation_accept(key="walk-key", user=UserFactory()), lambda m: [(m, C), (invitation, U)])


def walk_invitation_accept_new_user(w):
    invitation = _invitation(w)
    w.check(
        lambda: services.invitation_accept_new_user(key="walk-key", username="newbie", password="a-long-passphrase-9"),
        lambda m: [(m, C), (invitation, U)],
    )


def walk_api_token_create(w):
    w.check(lambda: services.api_token_create(user=w.admin, name="ci"), lambda r: [(r[0], C)])


def walk_service_token_create(w):
    w.check(
        lambda: services.service_token_create(organization=w.org, scope="ingest", name="gw", by=w.admin),
        lambda r: [(r[0], C), (Membership.objects.get(user=r[0].user), C)],
    )


def walk_api_token_revoke(w):
    token, _ = services.api_token_create(user=w.admin, name="ci")
    w.check(lambda: services.api_token_revoke(token=token, by=w.admin), lambda t: [(t, U)])


def walk_api_tokens_revoke_personal(w):
    tokens = [services.api_token_create(user=w.admin, name=f"t{n}")[0] for n in range(2)]
    w.check(lambda: services.api_tokens_revoke_personal(user=w.admin), lambda _: [(t, U) for t in tokens])


def walk_user_sessions_revoke(w):
    token, _ = services.api_token_create(user=w.admin, name="ci")
    w.check(lambda: services.user_sessions_revoke(user=w.admin), lambda _: [(token, U)])


def walk_budget_create(w):
    w.check(
        lambda: costs.budget_create(
            project=w.project, by=w.admin, period_start=dt.date(2026, 1, 1), period_end=dt.date(2026, 3, 31), amount=9
        ),
        lambda b: [(b, C)],
    )


def walk_budget_update(w):
    budget = BudgetFactory(project=w.project)
    w.check(lambda: costs.budget_update(budget=budget, by=w.admin, amount=Decimal(77)), lambda b: [(b, U)])


def walk_budget_delete(w):
    budget = BudgetFactory(project=w.project)
    gone_budget = gone(budget)
    w.check(lambda: costs.budget_delete(budget=budget, by=w.admin), lambda _: [(gone_budget, D)])


def walk_cost_entry_create(w):
    w.check(
        lambda: costs.cost_entry_create(
            project=w.project, by=w.admin, date=dt.date(2026, 1, 2), category="inference", amount=Decimal(3)
        ),
        lambda e: [(e, C)],
    )


def walk_cost_entry_update(w):
    entry = CostEntryFactory(project=w.project)
    w.check(lambda: costs.cost_entry_update(entry=entry, by=w.admin, description="Fixed"), lambda e: [(e, U)])


def walk_cost_entry_delete(w):
    entry = CostEntryFactory(project=w.project)
    gone_entry = gone(entry)
    w.check(lambda: costs.cost_entry_delete(entry=entry, by=w.admin), lambda _: [(gone_entry, D)])


def walk_model_price_create(w):
    w.check(
        lambda: costs.model_price_create(
            organization=w.org,
            by=w.admin,
            provider="openai",
            model="gpt-4o",
            input_per_mtok=Decimal(2),
            output_per_mtok=Decimal(8),
            valid_from=dt.date(2026, 1, 1),
        ),
        lambda p: [(p, C)],
    )


def walk_model_price_update(w):
    price = ModelPriceFactory(organization=w.org)
    w.check(lambda: costs.model_price_update(price=price, by=w.admin, output_per_mtok=Decimal(9)), lambda p: [(p, U)])


def walk_model_price_delete(w):
    price = ModelPriceFactory(organization=w.org)
    gone_price = gone(price)
    w.check(lambda: costs.model_price_delete(price=price, by=w.admin), lambda _: [(gone_price, D)])


def walk_infrastructure_component_create(w):
    w.check(
        lambda: infrastructure.infrastructure_component_create(
            project=w.project, by=w.admin, name="LLM", kind="foundation_model", provider="aws"
        ),
        lambda c: [(c, C)],
    )


def walk_infrastructure_component_update(w):
    component = InfrastructureComponentFactory(project=w.project)
    w.check(
        lambda: infrastructure.infrastructure_component_update(component=component, by=w.admin, region="eu-west-1"),
        lambda c: [(c, U)],
    )


def walk_infrastructure_component_delete(w):
    component = InfrastructureComponentFactory(project=w.project)
    gone_component = gone(component)
    w.check(
        lambda: infrastructure.infrastructure_component_delete(component=component, by=w.admin),
        lambda _: [(gone_component, D)],
    )


def walk_quality_metric_create(w):
    w.check(
        lambda: infrastructure.quality_metric_create(
            project=w.project, by=w.admin, date=dt.date(2026, 1, 3), metric="accuracy", value=0.9
        ),
        lambda m: [(m, C)],
    )


def walk_quality_metric_update(w):
    record = QualityMetricFactory(project=w.project)
    w.check(lambda: infrastructure.quality_metric_update(record=record, by=w.admin, notes="Re-run"), lambda m: [(m, U)])


def walk_quality_metric_delete(w):
    record = QualityMetricFactory(project=w.project)
    gone_record = gone(record)
    w.check(lambda: infrastructure.quality_metric_delete(record=record, by=w.admin), lambda _: [(gone_record, D)])


def _cost_rows(w, n):
    return [{"project": w.project.pk, "date": "2026-02-01", "category": "storage", "amount": "1"} for _ in range(n)]


def walk_cost_entries_ingest(w):
    # Costs people send: one event per row.
    w.check(
        lambda: ingest.cost_entries_ingest(by=w.admin, entries=_cost_rows(w, 3)),
        lambda r: [(CostEntry.objects.get(pk=pk), C) for pk in r.created_ids],
    )


def walk_cost_entries_import(w):
    # A file of costs: one batch event for the file.
    w.check_batch(
        lambda: ingest.cost_entries_import(organization=w.org, by=w.admin, entries=_cost_rows(w, 3), label="CSV"),
        CostEntry,
        lambda r: r.created_ids,
    )


def walk_usage_ingest(w):
    ModelPriceFactory(organization=w.org, model="gpt-4o", valid_from=dt.date(2026, 1, 1))
    rows = [{"project": w.project.pk, "date": "2026-02-01", "model": "gpt-4o", "input_tokens": 5, "output_tokens": 1}]
    w.check_batch(lambda: ingest.usage_ingest(by=w.admin, entries=rows * 3), CostEntry, lambda r: r.created_ids)


def walk_usage_record(w):
    # One usage row typed in the form goes through usage_ingest's rules, and its one batch event.
    ModelPriceFactory(organization=w.org, model="gpt-4o", valid_from=dt.date(2026, 1, 1))
    w.check_batch(
        lambda: ingest.usage_record(
            project=w.project, by=w.admin, date=dt.date(2026, 2, 1), model="gpt-4o", input_tokens=5, output_tokens=1
        ),
        CostEntry,
        lambda entry: [entry.pk],
    )


def walk_risk_create(w):
    w.check(
        lambda: risks.risk_create(
            project=w.project, by=w.admin, title="Leak", category="security", likelihood=2, impact=2
        ),
        lambda r: [(r, C)],
    )


def walk_risk_create_from_catalogue(w):
    w.check(
        lambda: risks.risk_create_from_catalogue(project=w.project, by=w.admin, key="prompt_injection"),
        lambda r: [(r, C)],
    )


def _risk(w):
    return risks.risk_create(project=w.project, by=w.admin, title="Leak", category="security", likelihood=2, impact=2)


def walk_risk_update(w):
    risk = _risk(w)
    # A reassessment: the risk's event carries the new rating and when it was reviewed.
    risk = w.check(lambda: risks.risk_update(risk=risk, by=w.admin, likelihood=4), lambda r: [(r, U)])
    event = AuditEvent.objects.filter(object_type="ops.risk", object_id=str(risk.pk)).latest("pk")
    assert event.changes["likelihood"] == [2, 4] and "last_reviewed_at" in event.changes


def walk_risk_accept(w):
    risk = _risk(w)
    w.check(
        lambda: risks.risk_accept(
            risk=risk, by=w.admin, justification="Fine", expires=dt.date.today() + dt.timedelta(7)
        ),
        lambda r: [(r, U)],
    )


def walk_risk_close(w):
    risk = _risk(w)
    w.check(lambda: risks.risk_close(risk=risk, by=w.admin, note="Gone"), lambda r: [(r, U)])


def walk_risk_signals_evaluate(w):
    # A project with no status update for ever raises a signal risk; a status update closes it.
    w.project.__class__.objects.filter(pk=w.project.pk).update(created_at=timezone.now() - dt.timedelta(days=90))

    def raised(_):
        return [(Risk.objects.get(source=RiskSource.SIGNAL, signal_rule="stale_status"), C)]

    w.check(lambda: signals.risk_signals_evaluate(organization=w.org), raised)
    w.project.__class__.objects.filter(pk=w.project.pk).update(last_status_date=timezone.localdate())
    risk = Risk.objects.get(source=RiskSource.SIGNAL, signal_rule="stale_status")
    w.check(lambda: signals.risk_signals_evaluate(organization=w.org), lambda _: [(risk, U)])
    assert AuditEvent.objects.filter(object_id=str(risk.pk)).latest("pk").changes["status"] == ["open", "closed"]


def walk_organization_costs_reconvert(w):
    entry = costs.cost_entry_create(
        project=w.project, by=w.admin, date=dt.date(2024, 3, 1), category="storage", amount=Decimal(10)
    )
    before = w.org.currency
    w.org.currency = "EUR" if before != "EUR" else "USD"
    w.org.save(update_fields=["currency"])
    w.check_batch(
        lambda: fx.organization_costs_reconvert(organization=w.org, before=before, by=w.admin), CostEntry, lambda _: []
    )
    assert AuditEvent.objects.latest("pk").changes["changed"] == [entry.pk]


def walk_snapshots_take(w):
    date = dt.date(2026, 1, 31)
    w.check_batch(
        lambda: snapshots.snapshots_take(organization=w.org, date=date),
        SpendSnapshot,
        lambda _: list(SpendSnapshot.objects.filter(date=date).values_list("pk", flat=True)),
    )
    # A rerun refreshes the same rows: listed as changed, nothing created.
    snapshots.snapshots_take(organization=w.org, date=date)
    event = AuditEvent.objects.latest("pk")
    assert event.changes["created"] == [] and len(event.changes["changed"]) == 1


WALK = {name.removeprefix("walk_"): f for name, f in dict(globals()).items() if name.startswith("walk_")}


def _writing_services() -> set[str]:
    return {
        name
        for module in MODULES
        for name, f in inspect.getmembers(module, inspect.isfunction)
        if f.__module__ == module.__name__ and not name.startswith("_")
    }


def test_every_service_is_walked():
    assert _writing_services() - READS_ONLY - NO_HISTORY.keys() == WALK.keys()


@pytest.mark.parametrize("name", sorted(WALK))
def test_service_leaves_its_history(name):
    w = Walk()
    member(w.org, Role.VIEWER)  # someone else in the organization, never in the events
    WALK[name](w)


def test_copy_and_orm_record_a_decimal_the_same_way(monkeypatch):
    """A value entered as "0" is recorded "0.00" (the field's decimal places) by COPY, the ORM and a form."""
    w = Walk()
    rows = [{"project": w.project.pk, "date": "2026-02-01", "category": "storage", "amount": "0", "gpu_hours": "0"}]
    (copied,) = ingest.cost_entries_ingest(by=w.admin, entries=rows).created_ids
    monkeypatch.setattr(ingest, "_on_postgresql", lambda: False)
    (created,) = ingest.cost_entries_ingest(by=w.admin, entries=rows).created_ids
    typed = costs.cost_entry_create(
        project=w.project, by=w.admin, date=dt.date(2026, 2, 1), category="storage", amount=Decimal(0), gpu_hours=0
    )
    for pk in (copied, created, typed.pk):
        event = AuditEvent.objects.get(object_type="ops.costentry", object_id=str(pk))
        assert event.changes["amount"] == [None, "0.0000"]
        assert event.changes["gpu_hours"] == [None, "0.00"]


def test_an_unchanged_value_written_differently_is_no_change():
    w = Walk()
    budget = BudgetFactory(project=w.project, amount=Decimal("100.00"))
    mark = _mark()
    costs.budget_update(budget=budget, by=w.admin, amount=Decimal(100))
    assert _events_since(mark) == []


def test_the_admins_edit_leaves_the_same_event_as_the_service(admin_client, admin_user):
    w = Walk()
    team = TeamFactory(organization=w.org, name="Data")
    services.team_update(team=team, by=w.admin, name="Data science")
    by_service = AuditEvent.objects.latest("pk")
    data = {"organization": w.org.pk, "name": "Data platform", "slug": team.slug, "description": ""}
    response = admin_client.post(f"/admin/projects/team/{team.pk}/change/", data)
    assert response.status_code == 302
    by_admin = AuditEvent.objects.latest("pk")
    assert by_admin.pk != by_service.pk
    keep = ("action", "object_type", "object_id", "organization_id", "project_id")
    assert [getattr(by_admin, k) for k in keep] == [getattr(by_service, k) for k in keep]
    assert by_service.changes == {"name": ["Data", "Data science"]}
    assert by_admin.changes == {"name": ["Data science", "Data platform"]}
    assert (by_admin.actor, by_service.actor) == (admin_user, None)


def test_the_admins_inline_and_bulk_deletions_are_recorded(admin_client):
    w = Walk()
    metrics = [QualityMetricFactory(project=w.project) for _ in range(2)]
    response = admin_client.post(
        "/admin/ops/qualitymetric/",
        {"action": "delete_selected", "_selected_action": [m.pk for m in metrics], "post": "yes"},
    )
    assert response.status_code == 302 and not QualityMetric.objects.exists()
    deleted = AuditEvent.objects.filter(object_type="ops.qualitymetric", action=D)
    assert sorted(deleted.values_list("object_id", flat=True)) == sorted(str(m.pk) for m in metrics)
