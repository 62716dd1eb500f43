"""Unpriced usage is shown as such beside every spend figure it leaves out: "incomplete: unpriced usage"."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from ops.models import CostCategory, CostSource, ReportKind
from ops.selectors.portfolio import cost_figures, monthly_spend, with_list_figures
from ops.selectors.reports import report_headline, report_markdown
from ops.services import report_build
from ops.tests.factories import BudgetFactory, CostEntryFactory, ReportFactory
from projects.models import Project, Role
from projects.tests.api_support import _fresh_throttle, client_for  # noqa: F401 (an autouse fixture)
from projects.tests.factories import OrganizationFactory, ProjectFactory, member

NOW = dt.datetime(2026, 3, 8, 15, 0, tzinfo=dt.UTC)
MARCH = (dt.date(2026, 3, 1), dt.date(2026, 3, 31))
FLAG = "incomplete: unpriced usage"


@pytest.fixture
def portfolio(db):
    """Two projects over budget this month: "Waiting" has unpriced usage in it, "Priced" has none."""
    with time_machine.travel(NOW - dt.timedelta(days=30), tick=False):
        org = OrganizationFactory(timezone="UTC")
        manager = member(org, Role.MANAGER)
        waiting = ProjectFactory(organization=org, name="Waiting")
        priced = ProjectFactory(organization=org, name="Priced")
    for project in (waiting, priced):
        BudgetFactory(project=project, period_start=MARCH[0], period_end=MARCH[1], amount=100)
        CostEntryFactory(project=project, date=dt.date(2026, 3, 3), amount=Decimal("150.00"))
    CostEntryFactory(
        project=waiting,
        date=dt.date(2026, 3, 4),
        amount=None,
        category=CostCategory.INFERENCE,
        source=CostSource.USAGE,
        model="new-model",
        input_tokens=1000,
    )
    return org, manager, waiting, priced


def test_the_portfolio_sets_the_flag_beside_each_figure(portfolio):
    org, _, waiting, priced = portfolio
    rows = {row.pk: row for row in with_list_figures(Project.objects.filter(organization=org), as_of=NOW.date())}
    assert (rows[waiting.pk].spend_incomplete, rows[priced.pk].spend_incomplete) == (True, False)
    assert (rows[waiting.pk].budget_unpriced, rows[priced.pk].budget_unpriced) == (1, 0)
    figures = cost_figures(projects=Project.objects.filter(organization=org), as_of=NOW.date())
    assert figures[waiting.pk].budgets.overall.incomplete and not figures[priced.pk].budgets.overall.incomplete
    months = monthly_spend(
        projects=Project.objects.filter(pk=waiting.pk), months=[(dt.date(2026, 2, 1), dt.date(2026, 2, 28)), MARCH]
    )
    assert not months[dt.date(2026, 2, 1)].incomplete
    assert months[MARCH[0]].incomplete and months[MARCH[0]].amount == Decimal("150.00")


def test_the_dashboard_flags_the_month_and_the_budget_that_leave_unpriced_usage_out(portfolio, client):
    _, manager, _waiting, _ = portfolio
    client.force_login(manager)
    with time_machine.travel(NOW, tick=False):
        response = client.get(reverse("projects:dashboard"))
    overview = response.context["overview"]
    assert [m.month for m in overview.months if m.incomplete] == [MARCH[0]]
    attention = {p.name: p.budget.incomplete for p in overview.needs_attention}
    assert attention == {"Waiting": True, "Priced": False}
    assert [w.start for w in overview.weeks if w.incomplete] == [dt.date(2026, 3, 2)]
    assert {p.name: p.budget.incomplete for p in overview.over_tolerance} == attention
    # The note under the chart, the March row of its table, the Waiting line of "Needs attention", the week of
    # 2 March in the weekly spend and Waiting's row of the budgets over tolerance.
    assert response.content.decode().count(FLAG) == 5


def test_the_project_list_flags_spend_to_date_and_budget_spend(portfolio, client):
    _, manager, _waiting, _priced = portfolio
    client.force_login(manager)
    with time_machine.travel(NOW, tick=False):
        response = client.get(reverse("projects:list"))
    rows = {p.name: p for p in response.context["page"]}
    assert (rows["Waiting"].spend_incomplete, rows["Waiting"].budget.incomplete) == (True, True)
    assert (rows["Priced"].spend_incomplete, rows["Priced"].budget.incomplete) == (False, False)
    assert response.content.decode().count(FLAG) == 2  # Waiting's spend to date and its budget line


def test_the_project_page_flags_spend_budget_and_months(portfolio, client):
    _, manager, waiting, priced = portfolio
    client.force_login(manager)
    with time_machine.travel(NOW, tick=False):
        flagged = client.get(waiting.get_absolute_url())
        plain = client.get(priced.get_absolute_url())
    detail = flagged.context["detail"]
    assert detail["spend"].incomplete and detail["budgets"].overall.incomplete and detail["months_incomplete"]
    assert flagged.content.decode().count(FLAG) == 3  # the months note, spend to date, the budget line
    assert FLAG not in plain.content.decode()


def test_the_api_says_which_spend_figures_leave_unpriced_usage_out(portfolio):
    _, manager, waiting, priced = portfolio
    api = client_for(manager)
    with time_machine.travel(NOW, tick=False):
        listed = {row["id"]: row for row in api.get("/api/v1/projects/").json()["results"]}
        one = api.get(f"/api/v1/projects/{waiting.pk}/").json()
    flags = ("spend_incomplete", "budget_spend_incomplete")
    assert [listed[waiting.pk][f] for f in flags] == [True, True] == [one[f] for f in flags]
    assert [listed[priced.pk][f] for f in flags] == [False, False]


def test_the_status_report_flags_period_and_to_date_spend(portfolio):
    org, _, _waiting, _priced = portfolio
    with time_machine.travel(NOW, tick=False):
        report = report_build(
            report_id=ReportFactory(
                organization=org, kind=ReportKind.STATUS, period_start=dt.date(2026, 3, 2), period_end=NOW.date()
            ).pk
        )
    headline = dict(report_headline(report))
    assert headline["Spend in the period"].endswith(f"({FLAG})") and headline["Spend to date"].endswith(f"({FLAG})")
    sections = {s["name"]: s for s in report.data["projects"]}
    assert sections["Waiting"]["budget_spend_incomplete"] and not sections["Priced"]["budget_spend_incomplete"]
    assert sections["Waiting"]["spend_period_incomplete"] and not sections["Priced"]["spend_period_incomplete"]
    lines = report_markdown(report).splitlines()
    rows = {line.split("|")[1].strip(): line for line in lines if line.startswith(("| Waiting", "| Priced"))}
    assert (rows["Waiting"].count(FLAG), rows["Priced"].count(FLAG)) == (2, 0)  # Waiting's period and to-date spend
