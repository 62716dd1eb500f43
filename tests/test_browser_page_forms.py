"""The project page's forms in Chromium: loaded when opened, focus in the form, the chart kept after a submit."""

import datetime as dt
from decimal import Decimal

import pytest

from ops.tests.factories import BudgetFactory, CostEntryFactory, RiskFactory
from projects.models import Role, Stage
from projects.tests.factories import OrganizationFactory, ProjectFactory
from tests.conftest import PHONE, SCREENSHOTS
from tests.test_browser import assert_not_reloaded, mark_page, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def org():
    return OrganizationFactory(name="Northwind Retail")


@pytest.fixture
def project(org):
    project = ProjectFactory(organization=org, name="Support assistant", stage=Stage.EVALUATION)
    today = dt.date.today()
    BudgetFactory(project=project, period_start=today.replace(month=1, day=1), amount=Decimal(60000))
    CostEntryFactory(project=project, date=today, amount=Decimal(3000))
    RiskFactory(project=project, title="Hallucinated refund policy")
    return project


def test_a_form_loads_when_opened_takes_the_focus_and_the_chart_survives_the_submit(page, org, project):
    sign_in(page, org, Role.MANAGER)
    page.goto(project.get_absolute_url())
    page.locator("#section-costs canvas[data-drawn]").wait_for(state="attached")
    mark_page(page)
    assert page.locator("#section-costs form").count() == 0
    page.get_by_text("Add a cost", exact=True).click()
    amount = page.locator("#section-costs form").get_by_label("Amount")
    amount.wait_for()
    # Focus moves into the loaded form (its first field), not back to the page.
    assert page.evaluate("document.activeElement.closest('form') !== null")
    assert page.evaluate("document.activeElement.name") == "date"
    amount.fill("1250")
    page.get_by_role("button", name="Add cost").click()
    page.get_by_text("Cost recorded.").wait_for()
    # The refreshed section draws its chart again (issue 16: it vanished after a cost or budget submit).
    page.locator("#section-costs canvas[data-drawn]").wait_for(state="attached")
    assert_not_reloaded(page)


def test_manager_opens_every_form_of_the_page(page, org, project, screenshot):
    sign_in(page, org, Role.MANAGER)
    page.goto(project.get_absolute_url())
    for summary, field in (
        ("Move the stage", "Move to"),
        ("Set a budget", "Tolerance %"),
        ("Add a risk", "Title"),
        ("Record infrastructure", "Name"),
        ("Record a quality metric", "Value"),
    ):
        page.get_by_text(summary, exact=True).click()
        page.locator("details[open]").filter(has_text=summary).get_by_label(field).first.wait_for()
    page.get_by_text("Add from the catalogue", exact=True).click()
    page.locator("details[open] .catalogue button").first.wait_for()
    screenshot(page, "project-forms-open")
    # The phone's view of one opened form, at its own scroll position (the full page is 8,000 px tall).
    page.set_viewport_size(PHONE)
    page.get_by_text("Set a budget", exact=True).scroll_into_view_if_needed()
    page.screenshot(path=SCREENSHOTS / "project-budget-form-phone-viewport.png")
