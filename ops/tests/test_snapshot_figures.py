"""The dashboard's figures read the daily snapshots for past days and stay equal to the live ones (issue 11)."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.db import transaction
from django.urls import reverse

from ops.models import CostCategory, CostEntry, CostSource, RiskSnapshot, SpendSnapshot
from ops.selectors.dashboard import portfolio_overview
from ops.selectors.portfolio import cost_figures, with_budget_status, with_spend_to_date
from ops.services import cost_entries_ingest, cost_entry_create, snapshots_take, usage_ingest
from ops.services.costs import cost_entry_delete, cost_entry_update
from ops.tests.factories import BudgetFactory, CostEntryFactory, ModelPriceFactory
from projects.models import Project, Role
from projects.tests.factories import OrganizationFactory, ProjectFactory, member

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 8, 15, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
# Beat did not run on these days: a gap inside February and its last day.
MISSED = {dt.date(2026, 2, 10), dt.date(2026, 2, 11), dt.date(2026, 2, 28)}
SNAPSHOT_DAYS = [
    day
    for n in range((TODAY - dt.date(2026, 1, 1)).days)
    if (day := dt.date(2026, 1, 1) + dt.timedelta(days=n)) not in MISSED
]


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def portfolio():
    """Two projects with costs since December and a budget each; snapshots from 1 January to yesterday."""
    org = OrganizationFactory(timezone="UTC")
    manager = member(org, Role.MANAGER)
    alpha, beta = ProjectFactory(organization=org, name="Alpha"), ProjectFactory(organization=org, name="Beta")
    BudgetFactory(project=alpha, period_start=dt.date(2026, 1, 1), period_end=dt.date(2026, 12, 31), amount=5000)
    BudgetFactory(project=beta, period_start=dt.date(2026, 2, 1), period_end=dt.date(2026, 3, 31), amount=300)
    for project, step in ((alpha, 3), (beta, 5)):
        for n in range(0, 97, step):
            day = dt.date(2025, 12, 1) + dt.timedelta(days=n)
            cost_entry_create(project=project, by=manager, date=day, category=CostCategory.INFERENCE, amount=n + 1)
    # Usage no price covered: counted, never costed (only ingestion that predates pricing writes it).
    CostEntryFactory(project=alpha, date=dt.date(2026, 1, 20), amount=None, source=CostSource.USAGE, input_tokens=5)
    for day in SNAPSHOT_DAYS:
        snapshots_take(organization=org, date=day)
    return org, manager, alpha, beta


def _figures(org, user) -> dict:
    """Every figure of the dashboard and the project list that the cost entries feed."""
    overview = portfolio_overview(user=user, organization=org)
    rows = with_budget_status(with_spend_to_date(Project.objects.filter(organization=org)))
    return {
        "months": [(m.month, m.spend) for m in overview.months],
        "attention": {p.pk: p.budget.spend for p in overview.needs_attention if p.budget},
        "projects": {p.pk: (p.spend_to_date, p.unpriced_entries, p.budget_spend) for p in rows},
    }


def _live(org, user) -> dict:
    """The same figures with no snapshot to read: every entry summed live."""
    with transaction.atomic():
        SpendSnapshot.objects.all().delete()
        RiskSnapshot.objects.all().delete()
        figures = _figures(org, user)
        transaction.set_rollback(True)
    return figures


def _rows() -> dict:
    """The snapshot rows with a figure (a row of zeros and no row read the same)."""
    rows = SpendSnapshot.objects.exclude(spend_day=0, spend_to_date=0, unpriced_entries=0)
    return {(s.project_id, s.date): (s.spend_day, s.spend_to_date, s.unpriced_entries) for s in rows}


def _retaken(org) -> dict:
    """The snapshot rows as `snapshots_take` computes them afresh from the entries."""
    with transaction.atomic():
        for day in SNAPSHOT_DAYS:
            snapshots_take(organization=org, date=day)
        rows = _rows()
        transaction.set_rollback(True)
    return rows


def assert_exact(org, user) -> None:
    figures = _figures(org, user)
    assert figures == _live(org, user)
    live = cost_figures(projects=Project.objects.filter(organization=org), as_of=TODAY)
    assert {pk: (s, u) for pk, (s, u, _) in figures["projects"].items()} == {
        pk: (f.spend.amount, f.spend.unpriced_entries) for pk, f in live.items()
    }
    assert _rows() == _retaken(org)


def test_the_snapshot_figures_equal_the_live_ones_with_days_beat_missed(portfolio):
    org, manager, alpha, _ = portfolio
    assert_exact(org, manager)
    figures = _figures(org, manager)
    assert figures["projects"][alpha.pk][:2] == (sum(Decimal(n + 1) for n in range(0, 97, 3)), 1)
    assert dict(figures["months"])[dt.date(2026, 2, 1)] > 0


def test_the_dashboard_reads_past_days_from_the_snapshots(portfolio):
    org, manager, alpha, _ = portfolio
    before = _figures(org, manager)
    # A tampered snapshot shows: the past days are read from the snapshots, not summed again.
    SpendSnapshot.objects.filter(project=alpha, date=TODAY - dt.timedelta(days=1)).update(spend_to_date=0)
    after = _figures(org, manager)
    assert after["projects"][alpha.pk][0] < before["projects"][alpha.pk][0]
    assert dict(after["months"])[dt.date(2026, 3, 1)] < dict(before["months"])[dt.date(2026, 3, 1)]


def test_a_late_cost_an_edit_and_a_delete_of_past_costs_keep_the_snapshots_exact(portfolio):
    org, manager, alpha, beta = portfolio
    cost_entry_create(project=alpha, by=manager, date=dt.date(2026, 1, 15), category=CostCategory.STORAGE, amount=70)
    assert_exact(org, manager)
    entry = CostEntry.objects.filter(project=beta, date__month=2).earliest("date")
    cost_entry_update(entry=entry, by=manager, date=dt.date(2026, 1, 2), amount=Decimal("12.3456"))
    assert_exact(org, manager)
    # A repricing-like correction of the amount alone, then a move into the future.
    cost_entry_update(entry=entry, by=manager, amount=Decimal("999"))
    assert_exact(org, manager)
    cost_entry_update(entry=entry, by=manager, date=dt.date(2026, 3, 20))
    assert_exact(org, manager)
    cost_entry_delete(entry=CostEntry.objects.filter(project=alpha, date__month=1).latest("date"), by=manager)
    assert_exact(org, manager)


def test_bulk_ingest_and_a_project_created_after_the_snapshots_keep_them_exact(portfolio):
    org, manager, alpha, beta = portfolio
    ModelPriceFactory(organization=org, model="gpt-4o", valid_from=dt.date(2025, 1, 1))
    late = ProjectFactory(organization=org, name="Late")  # no snapshot row on any day yet
    BudgetFactory(project=late, period_start=dt.date(2026, 1, 1), period_end=dt.date(2026, 12, 31), amount=100)
    rows = [
        {"project": p.pk, "date": f"2026-0{m}-{d:02d}", "category": "storage", "amount": f"{m * d}.25"}
        for p in (alpha, beta, late)
        for m, d in ((1, 3), (1, 31), (2, 11), (2, 28), (3, 7), (3, 8))
    ]
    cost_entries_ingest(by=manager, entries=rows)
    assert_exact(org, manager)
    assert SpendSnapshot.objects.filter(project=late, date=dt.date(2026, 1, 3)).exists()
    usage = [
        {"project": p.pk, "date": "2026-02-14", "model": "gpt-4o", "input_tokens": 10**6, "output_tokens": 10**5}
        for p in (alpha, late)
    ]
    usage_ingest(by=manager, entries=usage)
    assert_exact(org, manager)


def test_a_snapshot_taken_again_matches_the_adjusted_rows(portfolio):
    org, manager, alpha, _ = portfolio
    cost_entry_create(project=alpha, by=manager, date=dt.date(2026, 2, 27), category=CostCategory.OTHER, amount=5)
    adjusted = _rows()
    snapshots_take(organization=org, date=dt.date(2026, 3, 1))
    assert _rows() == adjusted


def _grow(org, manager, n: int) -> None:
    for _ in range(n):
        project = ProjectFactory(organization=org)
        BudgetFactory(project=project, period_start=dt.date(2026, 1, 1), period_end=dt.date(2026, 12, 31), amount=10)
        for day in (dt.date(2026, 1, 5), dt.date(2026, 2, 5), TODAY):
            cost_entry_create(project=project, by=manager, date=day, category=CostCategory.OTHER, amount=20)
    for day in SNAPSHOT_DAYS[-40:]:
        snapshots_take(organization=org, date=day)


def test_the_dashboard_with_snapshots_costs_the_same_queries_for_3_and_30_projects(client, django_assert_num_queries):
    org = OrganizationFactory(timezone="UTC")
    manager = member(org, Role.MANAGER)
    client.force_login(manager)
    _grow(org, manager, 3)
    client.get(reverse("projects:dashboard"))
    # With the manager's week: risk counts, risk snapshots, weekly spend (three), overdue reviews, stage moves.
    with django_assert_num_queries(18) as few:
        assert client.get(reverse("projects:dashboard")).status_code == 200
    _grow(org, manager, 27)
    with django_assert_num_queries(len(few.captured_queries)):
        assert len(client.get(reverse("projects:dashboard")).context["overview"].needs_attention) == 8
