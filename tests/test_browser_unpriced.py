"""Unpriced usage in headless Chromium: logged by hand, flagged on the project page and dashboard, repriced."""

import datetime as dt
from decimal import Decimal

import pytest

from ops.models import CostEntry, ModelProvider
from ops.tests.factories import BudgetFactory, CostEntryFactory, ModelPriceFactory
from projects.models import Role
from tests.test_browser import project, sign_in  # noqa: F401 (project: a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
FLAG = "incomplete: unpriced usage"


def test_unpriced_usage_is_flagged_until_a_manager_reprices_it(page, org, project, screenshot):  # noqa: F811
    today = dt.date.today()
    BudgetFactory(project=project, period_start=today.replace(day=1), period_end=today.replace(day=28), amount=100)
    CostEntryFactory(project=project, date=today, amount=Decimal("150.00"))
    sign_in(page, org, Role.MANAGER)
    page.goto(project.get_absolute_url())
    page.get_by_test_id("form-usage").locator("summary").click()
    form = page.get_by_test_id("form-usage")
    form.locator("#id_usage_model").fill("new-model")
    form.locator("#id_usage_input_tokens").fill("2000000")
    form.locator("#id_usage_output_tokens").fill("500000")
    form.get_by_role("button", name="Log usage").click()
    page.get_by_text("Spend to date").wait_for()
    page.get_by_test_id("budget-status").get_by_text(FLAG).wait_for()
    entry = CostEntry.objects.get(model="new-model")
    assert entry.amount is None and entry.price_id is None  # kept, unpriced, not costed at zero
    if not page.get_by_test_id("form-usage").evaluate("d => d.open"):  # the form again, for the picture
        page.get_by_test_id("form-usage").locator("summary").click()
    page.locator("#id_usage_model").wait_for()
    screenshot(page, "project-usage-unpriced")

    page.goto("/")
    page.get_by_text(FLAG).first.wait_for()
    screenshot(page, "dashboard-unpriced")

    ModelPriceFactory(
        organization=org,
        provider=ModelProvider.OPENAI,
        model="new-model",
        input_per_mtok=Decimal("2.00"),
        output_per_mtok=Decimal("8.00"),
        valid_from=today - dt.timedelta(days=30),
    )
    page.goto("/prices/")
    page.get_by_role("button", name="Preview (dry run)").click()
    page.get_by_test_id("reprice-totals").wait_for()
    assert CostEntry.objects.get(pk=entry.pk).amount is None  # the dry run changed nothing
    screenshot(page, "prices-dry-run")
    page.get_by_role("button", name="Apply: reprice this entry").click()
    page.get_by_text("No usage waits for a price.").wait_for()
    assert CostEntry.objects.get(pk=entry.pk).amount == Decimal("8.0000")  # 2 M × 2.00 + 0.5 M × 8.00
    screenshot(page, "prices-applied")
    page.goto(project.get_absolute_url())
    assert FLAG not in page.content()
