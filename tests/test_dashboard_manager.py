"""The manager's 30 seconds: the dashboard's week (risks and their trend, reviews, budgets, moves, spend) and
the risk page's summary above the register."""

import datetime as dt
import re
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from ops.models import CostEntry, RiskSnapshot, RiskStatus
from ops.services.snapshots import snapshots_take
from ops.tests.factories import BudgetFactory, CostEntryFactory, RiskFactory
from projects.models import Role, Stage, StageTransition
from projects.tests.factories import OrganizationFactory, ProjectFactory, member

NOW = dt.datetime(2026, 3, 11, 12, 0, tzinfo=dt.UTC)  # a Wednesday
TODAY = NOW.date()
THIS_MONDAY, LAST_MONDAY = dt.date(2026, 3, 9), dt.date(2026, 3, 2)
DASHBOARD, RISKS = reverse("projects:dashboard"), reverse("ops:risks")
COUNTS = re.compile(r'data-severity="(\w+)"><strong>(\d+)</strong>')


@pytest.fixture
def portfolio(db):
    with time_machine.travel(NOW - dt.timedelta(days=60), tick=False):
        org = OrganizationFactory(timezone="UTC")
        over = ProjectFactory(organization=org, name="Over tolerance")
        within = ProjectFactory(organization=org, name="Within tolerance")
        quiet = ProjectFactory(organization=org, name="Quiet")
    # Open: one critical, two high, one medium, one low; one overdue review. Closed and foreign ones never count.
    RiskFactory(project=quiet, likelihood=5, impact=4, title="Leak of personal data")
    RiskFactory(project=quiet, likelihood=4, impact=3, title="Vendor lock-in", next_review_date=dt.date(2026, 3, 1))
    RiskFactory(project=over, likelihood=3, impact=4, status=RiskStatus.MITIGATING)
    RiskFactory(project=over, likelihood=3, impact=3)
    RiskFactory(project=within, likelihood=1, impact=1)
    RiskFactory(project=within, likelihood=5, impact=5, status=RiskStatus.CLOSED, next_review_date=dt.date(2026, 1, 1))
    RiskFactory(project=ProjectFactory(organization=OrganizationFactory()), likelihood=5, impact=5)
    # Budgets of March with 10 % tolerance: 120 spent is past it, 105 is over budget but within it.
    for project, amount in ((over, "120.00"), (within, "105.00")):
        BudgetFactory(project=project, period_start=dt.date(2026, 3, 1), period_end=dt.date(2026, 3, 31), amount=100)
        CostEntryFactory(project=project, date=dt.date(2026, 3, 10), amount=Decimal(amount))
    CostEntryFactory(project=quiet, date=dt.date(2026, 3, 4), amount=Decimal("40.00"))
    # Last week's snapshots as beat takes them; their risk counts are the history of those days.
    for day, counts in ((LAST_MONDAY, {"low": 3}), (dt.date(2026, 3, 8), {"low": 1, "high": 2, "critical": 1})):
        snapshots_take(organization=org, date=day)
        RiskSnapshot.objects.filter(organization=org, date=day).update(
            **{name: counts.get(name, 0) for name in RiskSnapshot.SEVERITY_FIELDS}
        )
    # The snapshots are what past weeks read: an entry deleted behind the services' back still counts there.
    CostEntry.objects.filter(project=quiet).delete()
    mover = member(org, Role.MANAGER)
    StageTransition.objects.create(
        project=over,
        from_stage=Stage.EVALUATION,
        to_stage=Stage.PILOT,
        at=NOW - dt.timedelta(days=2),
        by=mover,
        overridden_gates=["budget"],
        override_reason="Board approved the pilot",
    )
    StageTransition.objects.create(
        project=quiet, from_stage=Stage.IDEATION, to_stage=Stage.DATA_PREPARATION, at=NOW - dt.timedelta(days=8)
    )
    return org, mover, over, within, quiet


def test_the_week_reads_risks_reviews_budgets_moves_and_the_snapshots(portfolio, client):
    _, manager, *_ = portfolio
    client.force_login(manager)
    with time_machine.travel(NOW, tick=False):
        overview = client.get(DASHBOARD).context["overview"]
    assert overview.risks.by_severity == {"critical": 1, "high": 2, "medium": 1, "low": 1}
    assert [r.title for r in overview.overdue_reviews] == ["Vendor lock-in"]
    assert [p.name for p in overview.over_tolerance] == ["Over tolerance"]
    assert overview.over_tolerance[0].budget.spend == Decimal("120.00")
    assert [(t.project.name, t.overridden_gates) for t in overview.moves] == [("Over tolerance", ["budget"])]
    weeks = {w.start: w for w in overview.weeks}
    assert len(overview.weeks) == 12 and overview.weeks[-1].start == THIS_MONDAY
    # The current week is live (today's counts, the entries of 10 March); last week is its last snapshot's.
    assert weeks[THIS_MONDAY].risks == overview.risks.by_severity and weeks[THIS_MONDAY].spend == Decimal("225.00")
    assert weeks[LAST_MONDAY].risks == {"low": 1, "medium": 0, "high": 2, "critical": 1}
    assert weeks[LAST_MONDAY].spend == Decimal("40.00")  # from the snapshots, though the entry is gone
    assert weeks[LAST_MONDAY - dt.timedelta(weeks=1)].risks is None  # no snapshot that week


def test_the_page_shows_the_week_with_table_views(portfolio, client):
    _, manager, *_ = portfolio
    client.force_login(manager)
    with time_machine.travel(NOW, tick=False):
        body = client.get(DASHBOARD).content.decode()
    assert dict(COUNTS.findall(body)) == {"critical": "1", "high": "2", "medium": "1", "low": "1"}
    assert "Board approved the pilot" in body and "Gates overridden" in body
    moves = body[body.index('data-testid="stage-moves"') :].split("</ul>")[0]
    assert "Over tolerance" in moves and "Quiet" not in moves  # the move of eight days ago is not this week's
    risk_table = body[body.index('data-testid="risk-trend-table"') :].split("</table>")[0]
    # Weeks of 23 Feb (no snapshot), 2 Mar (its last snapshot) and this week (live), most severe first.
    rows = re.findall(r"<tr><td>([^<]+)</td>((?:<td class=\"num\">[^<]*</td>)+)</tr>", risk_table)
    cells = {day: re.findall(r">([^<]*)<", tds)[::2] for day, tds in rows}
    assert cells["23 Feb 2026"] == ["—"] * 4
    assert cells["2 Mar 2026"] == ["1", "2", "0", "1"] and cells["9 Mar 2026"] == ["1", "2", "1", "1"]
    spend_table = body[body.index('data-testid="spend-trend-table"') :].split("</table>")[0]
    assert '<td>2 Mar 2026</td><td class="num">$40</td>' in spend_table
    assert 'data-testid="heatmap"' not in body  # the mini heat map is not the register's filter
    assert body.count('class="heatmap mini"') == 1 and '<a href="?' not in body.split('class="heatmap mini"')[1][:3000]


def test_the_dashboard_counts_equal_the_risk_registers(portfolio, client):
    _, manager, *_ = portfolio
    client.force_login(manager)
    with time_machine.travel(NOW, tick=False):
        dashboard = dict(COUNTS.findall(client.get(DASHBOARD).content.decode()))
        risks_page = client.get(RISKS)
        register = {
            severity: client.get(RISKS, {"severity": severity}).context["page"].paginator.count
            for severity in dashboard
        }
    assert dict(COUNTS.findall(risks_page.content.decode())) == dashboard
    assert {severity: str(n) for severity, n in register.items()} == dashboard
    assert risks_page.context["page"].paginator.count == sum(register.values())


def test_the_risk_page_puts_the_cards_and_overdue_reviews_above_the_register(portfolio, client):
    _, manager, *_ = portfolio
    client.force_login(manager)
    with time_machine.travel(NOW, tick=False):
        body = client.get(RISKS).content.decode()
    cards, overdue, register = (body.index(s) for s in ('data-testid="severity-counts"', "Overdue reviews", "Register"))
    assert cards < overdue < register
    assert body.index("Vendor lock-in") < register


@pytest.mark.parametrize("extra", [0, 10])
def test_the_query_count_is_constant_as_the_portfolio_grows(portfolio, client, django_assert_num_queries, extra):
    org, manager, *_ = portfolio
    for n in range(extra):
        project = ProjectFactory(organization=org)
        RiskFactory(project=project, next_review_date=dt.date(2026, 3, 1))
        BudgetFactory(project=project, period_start=dt.date(2026, 3, 1), period_end=dt.date(2026, 3, 31), amount=1)
        CostEntryFactory(project=project, date=dt.date(2026, 3, 10), amount=Decimal(n + 2))
        StageTransition.objects.create(
            project=project, from_stage=Stage.IDEATION, to_stage=Stage.DATA_PREPARATION, at=NOW - dt.timedelta(days=1)
        )
    client.force_login(manager)
    # Session, user and memberships; the figures of before (health, months, top risks, needs attention, reports);
    # the week's: risk counts, risk snapshots, weekly spend (three), overdue reviews, stage moves.
    with time_machine.travel(NOW, tick=False), django_assert_num_queries(QUERIES):
        assert client.get(DASHBOARD).status_code == 200


QUERIES = 18
