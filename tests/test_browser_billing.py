"""Estimated vs billed on the cost analytics page in headless Chromium (screenshots at 1366 and 390 px)."""

import datetime as dt
from decimal import Decimal

import pytest

from ops.selectors.billing import month_start
from ops.tests.factories import CostEntryFactory
from projects.models import Role
from projects.tests.factories import OrganizationFactory, ProjectFactory
from tests.test_billing_wiring import bill, row, run
from tests.test_browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_analytics_page_draws_estimated_vs_billed_with_a_bill_imported(page, screenshot):
    org = OrganizationFactory(name="Northwind Retail", currency="USD", timezone="UTC")
    support = ProjectFactory(organization=org, slug="support-bot", name="Support bot")
    months = [month_start(dt.date.today(), back) for back in (2, 1, 0)]
    for month, amount in zip(months, ("1840.00", "2210.50", "960.25"), strict=True):
        CostEntryFactory(project=support, date=month, amount=Decimal(amount))
    run(
        org,
        bill(
            row(day=months[0], billed="1795.10"),
            row(day=months[1], billed="2150.00", currency="EUR"),
            row(day=months[1] + dt.timedelta(days=3), billed="310.40"),
        ),
    )
    sign_in(page, org, Role.MANAGER)
    page.goto("/analytics/costs/")
    section = page.get_by_test_id("chart-billing")
    section.get_by_text("As a table").click()
    section.get_by_test_id("billing-months").get_by_text("$1,795.10").wait_for()
    assert section.locator("canvas[data-chart]").count() == 1
    section.scroll_into_view_if_needed()
    screenshot(page, "cost-analytics-billing")
