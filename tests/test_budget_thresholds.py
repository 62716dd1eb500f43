"""Budget thresholds (issue 17, point 2): each crossed once per period, told once; recurring periods roll over in
the organization's timezone; team and cost-centre budgets; the API's new fields."""

import datetime as dt
import threading
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from ops.models import Budget, BudgetThresholdCrossing, Recurrence
from ops.selectors.portfolio import (
    budget_period,
    budget_status_of,
    budget_statuses,
    scoped_budget_statuses,
    with_budget_status,
)
from ops.services import budgets as budget_services
from ops.services.budgets import budget_thresholds_evaluate
from ops.services.costs import budget_create
from ops.tests.factories import BudgetFactory, CostEntryFactory
from projects.models import Project, Role
from projects.services import cost_centre_create
from projects.tests.api_support import client_for
from projects.tests.factories import OrganizationFactory, ProjectFactory, TeamFactory, member
from tests.concurrency import at_once
from tracker.exceptions import ValidationFailed
from webhooks.models import EventType, WebhookEndpoint, WebhookEvent

pytestmark = pytest.mark.django_db
DAY = dt.date(2026, 3, 15)


@pytest.fixture
def hooked(org, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    WebhookEndpoint.objects.create(organization=org, url="https://hooks.example.com/b", events=EventType.values)
    return org


def crossed(budget: Budget) -> list[tuple[dt.date, str]]:
    return sorted(
        (c.period_start, f"{c.threshold_pct.normalize():f}")
        for c in BudgetThresholdCrossing.objects.filter(budget=budget)
    )


def test_each_threshold_is_crossed_once_per_period_and_told_once(hooked, manager, viewer):
    org = hooked
    owner, lead = member(org, Role.CONTRIBUTOR), member(org, Role.CONTRIBUTOR)
    project = ProjectFactory(organization=org, business_owner=owner, technical_lead=lead)
    budget = budget_create(
        project=project,
        by=manager,
        period_start=dt.date(2026, 3, 1),
        period_end=dt.date(2026, 3, 31),
        amount=Decimal("1000"),
        tolerance_pct=Decimal("10"),
    )
    assert budget.alert_thresholds == [50, 80, 100, 110]
    CostEntryFactory(project=project, date=DAY, amount=Decimal("499.99"))
    budget_thresholds_evaluate(organization=org, as_of=DAY)
    assert crossed(budget) == [] and mail.outbox == []  # 49.999 %: nothing reached
    CostEntryFactory(project=project, date=DAY, amount=Decimal("0.01"))
    for _ in range(2):  # reruns tell nothing twice
        budget_thresholds_evaluate(organization=org, as_of=DAY)
    assert crossed(budget) == [(dt.date(2026, 3, 1), "50")]
    assert len(mail.outbox) == 1 and sorted(mail.outbox[0].to) == sorted([owner.email, lead.email, manager.email])
    assert viewer.email not in mail.outbox[0].to and "50.0%" in mail.outbox[0].body
    CostEntryFactory(project=project, date=DAY, amount=Decimal("700"))  # 1,200: past 80, 100 and 110 at once
    budget_thresholds_evaluate(organization=org, as_of=DAY)
    budget_thresholds_evaluate(organization=org, as_of=DAY)
    assert [t for _, t in crossed(budget)] == ["100", "110", "50", "80"]
    assert len(mail.outbox) == 4
    events = WebhookEvent.objects.filter(type=EventType.BUDGET_THRESHOLD_CROSSED).order_by("pk")
    assert [e.payload["data"]["threshold_pct"] for e in events] == ["50", "80", "100", "110"]
    assert events.last().payload["data"] | {"id": budget.pk} == events.last().payload["data"]
    assert events.last().payload["data"]["budget_period_start"] == "2026-03-01"
    assert events.last().payload["data"]["currency"] == org.currency and events.last().deliveries.count() == 1


def test_custom_thresholds_keep_the_tolerance_threshold(org, manager):
    project = ProjectFactory(organization=org)
    budget = budget_create(
        project=project,
        by=manager,
        period_start=dt.date(2026, 3, 1),
        period_end=dt.date(2026, 3, 31),
        amount=Decimal("200"),
        tolerance_pct=Decimal("5"),
        thresholds=[25, 75.5],
    )
    assert budget.alert_thresholds == [25, Decimal("75.5"), 105]
    CostEntryFactory(project=project, date=DAY, amount=Decimal("151"))  # 75.5 %
    budget_thresholds_evaluate(organization=org, as_of=DAY)
    assert [t for _, t in crossed(budget)] == ["25", "75.5"]
    for bad in ([0], [50, 50], ["x"], list(range(1, 12)), [1001]):
        with pytest.raises(ValidationFailed):
            budget_create(
                project=project,
                by=manager,
                period_start=DAY,
                period_end=DAY + dt.timedelta(days=1),
                amount=Decimal(1),
                thresholds=bad,
            )
    assert Budget.objects.count() == 1


def test_the_unique_constraint_holds_without_the_service(org):
    budget = BudgetFactory(project=ProjectFactory(organization=org))
    row = {"budget": budget, "period_start": DAY, "period_end": DAY, "amount": 1, "spend": 1, "crossed_on": DAY}
    BudgetThresholdCrossing.objects.create(threshold_pct=50, **row)
    with pytest.raises(IntegrityError), transaction.atomic():
        BudgetThresholdCrossing.objects.create(threshold_pct=50, **row)


@pytest.mark.django_db(transaction=True)
def test_two_evaluations_at_once_record_and_tell_each_threshold_once(monkeypatch, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    org = OrganizationFactory()
    manager = member(org, Role.MANAGER)
    WebhookEndpoint.objects.create(organization=org, url="https://hooks.example.com/b", events=EventType.values)
    project = ProjectFactory(organization=org)
    budget = BudgetFactory(
        project=project, period_start=dt.date(2026, 3, 1), period_end=dt.date(2026, 3, 31), amount=Decimal(100)
    )
    CostEntryFactory(project=project, date=DAY, amount=Decimal("85"))
    # Both evaluations find the same thresholds due before either writes: the race the constraint settles.
    both_read = threading.Barrier(2)
    real_due = budget_services._due

    def due_then_wait(*args):
        found = real_due(*args)
        both_read.wait(30)
        return found

    monkeypatch.setattr(budget_services, "_due", due_then_wait)
    outcomes = at_once(*[lambda: budget_thresholds_evaluate(organization=org, as_of=DAY)] * 2)
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    # Between them they told 50 and 80 once each (whichever wrote a threshold first told it; the other skipped it).
    assert sum(o.sent for o in outcomes) == 2
    assert [t for _, t in crossed(budget)] == ["50", "80"]
    assert WebhookEvent.objects.filter(type=EventType.BUDGET_THRESHOLD_CROSSED).count() == 2
    assert len(mail.outbox) == 2 and all(m.to == [manager.email] for m in mail.outbox)


def test_budget_period_of_a_recurring_budget():
    first = {"period_start": dt.date(2026, 1, 1), "period_end": dt.date(2026, 1, 31)}
    assert budget_period(recurrence="", **first, on=dt.date(2026, 2, 1)) is None
    assert budget_period(recurrence=Recurrence.MONTHLY, **first, on=dt.date(2026, 2, 28)) == (
        dt.date(2026, 2, 1),
        dt.date(2026, 2, 28),
    )
    assert budget_period(recurrence=Recurrence.MONTHLY, **first, on=dt.date(2025, 12, 31)) is None
    assert budget_period(recurrence=Recurrence.QUARTERLY, **first, on=dt.date(2026, 12, 31)) == (
        dt.date(2026, 10, 1),
        dt.date(2026, 12, 31),
    )
    assert budget_period(recurrence=Recurrence.YEARLY, **first, on=dt.date(2028, 2, 29)) == (
        dt.date(2028, 1, 1),
        dt.date(2028, 12, 31),
    )


def test_a_recurring_budget_starts_on_a_calendar_boundary(org, manager):
    project = ProjectFactory(organization=org)
    with pytest.raises(ValidationFailed, match="2026-01-01 – 2026-03-31"):
        budget_create(
            project=project,
            by=manager,
            period_start=dt.date(2026, 1, 5),
            period_end=dt.date(2026, 3, 31),
            amount=Decimal(1),
            recurrence=Recurrence.QUARTERLY,
        )
    assert not Budget.objects.exists()


@pytest.mark.parametrize(
    ("recurrence", "first_end", "last_day", "next_day"),
    [
        (Recurrence.MONTHLY, dt.date(2026, 1, 31), dt.date(2026, 3, 31), dt.date(2026, 4, 1)),
        (Recurrence.QUARTERLY, dt.date(2026, 3, 31), dt.date(2026, 6, 30), dt.date(2026, 7, 1)),
    ],
)
def test_recurring_budgets_roll_over_at_midnight_in_the_organization_timezone(
    manager, recurrence, first_end, last_day, next_day
):
    # Auckland is 12 hours ahead of UTC in April–September (13 in summer): its new day starts at noon UTC or before.
    org = manager.organizations.get()
    org.timezone = "Pacific/Auckland"
    org.save()
    project = ProjectFactory(organization=org)
    budget_create(
        project=project,
        by=manager,
        period_start=dt.date(2026, 1, 1),
        period_end=first_end,
        amount=Decimal("100"),
        recurrence=recurrence,
    )
    CostEntryFactory(project=project, date=last_day, amount=Decimal("60"))
    CostEntryFactory(project=project, date=next_day, amount=Decimal("10"))
    tz = org.tzinfo
    before = dt.datetime.combine(last_day, dt.time(23, 59), tzinfo=tz)
    after = dt.datetime.combine(next_day, dt.time(0, 1), tzinfo=tz)
    assert after.astimezone(dt.UTC).date() == last_day  # still the old day in UTC
    rows = Project.objects.filter(pk=project.pk)
    with time_machine.travel(before, tick=False):
        status = budget_status_of(with_budget_status(rows).get())
        assert (status.period_end, status.spend) == (last_day, Decimal("60"))
    with time_machine.travel(after, tick=False):
        status = budget_status_of(with_budget_status(rows).get())
        assert (status.period_start, status.spend) == (next_day, Decimal("10"))
        # The set-based form (reports, signals, thresholds) agrees.
        today = timezone.localdate(timezone=tz)
        assert budget_statuses(projects=rows, as_of=today)[project.pk].overall == status
        budget_thresholds_evaluate(organization=org, as_of=today)
    with time_machine.travel(before, tick=False):
        budget_thresholds_evaluate(organization=org, as_of=timezone.localdate(timezone=tz))
    assert [(c.period_start, c.threshold_pct) for c in BudgetThresholdCrossing.objects.order_by("period_start")] == [
        (last_day.replace(day=1) if recurrence == Recurrence.MONTHLY else dt.date(2026, 4, 1), 50)
    ]


def test_team_and_cost_centre_budgets_count_their_projects_and_tell_their_owner(org, manager):
    team_owner, centre_owner = member(org, Role.CONTRIBUTOR), member(org, Role.VIEWER)
    team = TeamFactory(organization=org, lead=team_owner)
    centre = cost_centre_create(organization=org, by=manager, code="CC-4100", name="Support", owner=centre_owner)
    in_team = ProjectFactory(organization=org, team=team)
    in_centre = ProjectFactory(organization=org, cost_centre=centre)
    other = ProjectFactory(organization=OrganizationFactory(), team=None)
    for project, amount in ((in_team, "30"), (in_centre, "90"), (other, "1000")):
        CostEntryFactory(project=project, date=DAY, amount=Decimal(amount))
    CostEntryFactory(project=in_team, date=dt.date(2026, 2, 28), amount=Decimal("500"))  # the period before
    common = {"by": manager, "period_start": dt.date(2026, 3, 1), "period_end": dt.date(2026, 3, 31)}
    team_budget = budget_create(team=team, amount=Decimal("50"), recurrence=Recurrence.MONTHLY, **common)
    centre_budget = budget_create(cost_centre=centre, amount=Decimal("100"), **common)
    statuses = {s.budget_id: s for s in scoped_budget_statuses(organization=org, as_of=DAY)}
    assert statuses[team_budget.pk].spend == Decimal("30") and statuses[centre_budget.pk].spend == Decimal("90")
    budget_thresholds_evaluate(organization=org, as_of=DAY)
    assert [t for _, t in crossed(team_budget)] == ["50"]
    assert [t for _, t in crossed(centre_budget)] == ["50", "80"]
    recipients = sorted((tuple(sorted(m.to)), m.subject) for m in mail.outbox)
    assert {to for to, _ in recipients} == {
        tuple(sorted([team_owner.email, manager.email])),
        tuple(sorted([centre_owner.email, manager.email])),
    }
    with pytest.raises(ValidationFailed, match="exactly one"):
        budget_create(team=team, cost_centre=centre, amount=Decimal(1), **common)
    with pytest.raises(IntegrityError), transaction.atomic():
        Budget.objects.create(team=team, project=in_team, amount=1, **{k: v for k, v in common.items() if k != "by"})


def test_api_budgets_take_thresholds_recurrence_team_and_cost_centre(org, manager):
    team = TeamFactory(organization=org)
    centre = cost_centre_create(organization=org, by=manager, code="CC-1", name="R&D")
    foreign_team = TeamFactory(organization=OrganizationFactory())
    client = client_for(manager)
    body = {"period_start": "2026-04-01", "period_end": "2026-06-30", "amount": "900.00"}
    created = client.post(
        "/api/v1/budgets/", {**body, "team": team.pk, "thresholds": [60, 90], "recurrence": "quarterly"}, format="json"
    )
    assert created.status_code == 201, created.json()
    data = created.json()
    assert (data["team"], data["cost_centre"], data["project"]) == (team.pk, None, None)
    assert (data["thresholds"], data["recurrence"]) == (["60.00", "90.00"], "quarterly")
    assert Budget.objects.get(pk=data["id"]).thresholds == [60, 90]
    assert client.get(f"/api/v1/budgets/{data['id']}/").status_code == 200
    by_centre = client.post("/api/v1/budgets/", {**body, "cost_centre": centre.pk}, format="json").json()
    assert by_centre["thresholds"] == ["50.00", "80.00", "100.00"]
    refused = [
        client.post("/api/v1/budgets/", {**body, "team": team.pk, "cost_centre": centre.pk}, format="json"),
        client.post("/api/v1/budgets/", body, format="json"),
        client.post("/api/v1/budgets/", {**body, "team": foreign_team.pk}, format="json"),
        client.post("/api/v1/budgets/", {**body, "team": team.pk, "thresholds": [0]}, format="json"),
        client.post("/api/v1/budgets/", {**body, "team": team.pk, "recurrence": "weekly"}, format="json"),
    ]
    assert [r.status_code for r in refused] == [400] * 5
    assert Budget.objects.count() == 2
    # Someone else's budgets stay out of sight.
    assert (
        client_for(member(OrganizationFactory(), Role.ADMIN)).get(f"/api/v1/budgets/{data['id']}/").status_code == 404
    )


def test_the_project_page_lists_the_crossings(org, manager, client):
    project = ProjectFactory(organization=org)
    budget_create(
        project=project,
        by=manager,
        period_start=dt.date(2026, 3, 1),
        period_end=dt.date(2026, 3, 31),
        amount=Decimal("1000"),
    )
    CostEntryFactory(project=project, date=DAY, amount=Decimal("850"))
    budget_thresholds_evaluate(organization=org, as_of=DAY)
    client.force_login(manager)
    html = client.get(project.get_absolute_url()).content.decode()
    assert 'data-testid="budget-crossings"' in html and "80.0%" in html and "50.0%" in html and "100.0%" not in html


def test_the_weekly_digest_lists_the_thresholds_crossed_in_its_week(org, manager):
    from ops.models import Report, ReportKind
    from ops.services.reports import report_build, report_digest_send, report_request

    project = ProjectFactory(organization=org, name="Ask Aria")
    budget_create(
        project=project,
        by=manager,
        period_start=dt.date(2026, 3, 1),
        period_end=dt.date(2026, 3, 31),
        amount=Decimal("1000"),
    )
    CostEntryFactory(project=project, date=DAY, amount=Decimal("600"))
    budget_thresholds_evaluate(organization=org, as_of=DAY)  # Sunday 15 March: in the week of 9–15 March
    budget_thresholds_evaluate(organization=org, as_of=dt.date(2026, 3, 16))  # nothing new
    report = report_request(
        organization=org,
        kind=ReportKind.STATUS,
        period_start=dt.date(2026, 3, 9),
        period_end=dt.date(2026, 3, 15),
        by=manager,
        enqueue=False,
    )
    report = report_build(report_id=report.pk)
    assert report.data["totals"]["budget_thresholds_crossed"] == 1
    assert (
        report.data["budget_thresholds_crossed"][0] | {"owner": "Ask Aria", "threshold_pct": "50"}
        == (report.data["budget_thresholds_crossed"][0])
    )
    Report.objects.filter(pk=report.pk).update(notify=True)
    mail.outbox.clear()
    report_digest_send(report_id=report.pk)
    assert "Budget thresholds crossed" in mail.outbox[0].body and "Ask Aria: 50.0%" in mail.outbox[0].body


def test_the_status_report_names_each_crossed_budget_by_its_owner(org):
    from ops.models import ReportKind
    from ops.services.reports import report_build
    from ops.tests.factories import ReportFactory
    from projects.models import CostCentre

    project = ProjectFactory(organization=org, name="Ask Aria")
    team = TeamFactory(organization=org, name="Platform")
    centre = CostCentre.objects.create(organization=org, code="CC-7", name="Research")
    elsewhere = ProjectFactory(organization=OrganizationFactory(), name="Not ours")
    for owner in ({"project": project}, {"team": team}, {"cost_centre": centre}, {"project": elsewhere}):
        budget = BudgetFactory(**({"project": None} | owner))
        BudgetThresholdCrossing.objects.create(
            budget=budget,
            period_start=budget.period_start,
            period_end=budget.period_end,
            threshold_pct=Decimal("80"),
            amount=budget.amount,
            spend=budget.amount,
            crossed_on=DAY,
        )
    report = ReportFactory(
        organization=org, kind=ReportKind.STATUS, period_start=dt.date(2026, 3, 9), period_end=dt.date(2026, 3, 15)
    )
    crossings = report_build(report_id=report.pk).data["budget_thresholds_crossed"]
    assert sorted(c["owner"] for c in crossings) == ["Ask Aria", "CC-7 Research", "Platform"]
