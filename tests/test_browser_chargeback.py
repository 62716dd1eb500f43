"""The chargeback page and the budget panel's crossings in headless Chromium (screenshots at 1366 and 390 px)."""

import datetime as dt
from decimal import Decimal

import pytest

from ops.models import InfrastructureComponent
from ops.services.budgets import budget_thresholds_evaluate
from ops.tests.factories import BudgetFactory, CostEntryFactory
from projects.models import CostCentre, Role
from projects.tests.factories import ProjectFactory, TeamFactory
from tests.test_browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_chargeback_page_and_the_budget_crossings(page, org, screenshot):
    today = dt.date.today()
    month = today.replace(day=1)
    support = CostCentre.objects.create(organization=org, code="CC-4100", name="Customer support")
    research = CostCentre.objects.create(organization=org, code="CC-5200", name="Research and development")
    team = TeamFactory(organization=org, name="Platform")
    aria = ProjectFactory(organization=org, name="Ask Aria", cost_centre=support, team=team, tags={"env": "prod"})
    scout = ProjectFactory(organization=org, name="Drug scout", cost_centre=research, tags={"env": "dev"})
    lab = ProjectFactory(organization=org, name="Prompt lab")
    InfrastructureComponent.objects.create(project=aria, name="Bedrock", kind="foundation_model", provider="aws")
    for project, amount in ((aria, "18250.40"), (aria, "3120.00"), (scout, "9600.00"), (lab, "1480.25")):
        CostEntryFactory(project=project, date=month, amount=Decimal(amount))
    BudgetFactory(project=aria, period_start=month, period_end=month + dt.timedelta(days=27), amount=Decimal(25000))
    budget_thresholds_evaluate(organization=org, as_of=today)
    sign_in(page, org, Role.MANAGER)
    page.goto("/chargeback/")
    table = page.get_by_test_id("chargeback-table")
    table.get_by_text("Unallocated").wait_for()
    assert "CC-4100 Customer support" in table.inner_text() and "32,450.65" in table.inner_text()
    page.get_by_text("As a table").click()
    screenshot(page, "chargeback-cost-centre")
    page.locator("#id_group_by").select_option("tag")
    page.locator("#id_tag").fill("env")
    page.get_by_role("button", name="Show").click()
    page.get_by_test_id("chargeback-table").get_by_text("prod").wait_for()
    screenshot(page, "chargeback-tag")
    page.goto(aria.get_absolute_url())
    crossings = page.get_by_test_id("budget-crossings")
    crossings.get_by_text("80.0%").wait_for()
    crossings.scroll_into_view_if_needed()
    screenshot(page, "project-budget-crossings")
