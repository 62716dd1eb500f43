"""Browser walk of the manager dashboard and cost analytics, at laptop and phone widths."""

import datetime as dt
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from ops.models import CostCategory, CostSource, ModelProvider, RiskStatus
from ops.tests.factories import BudgetFactory, CostEntryFactory, RiskFactory
from projects.models import Role
from projects.tests.factories import OrganizationFactory, ProjectFactory
from tests.conftest import LAPTOP, PHONE
from tests.test_browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _portfolio():
    org = OrganizationFactory(name="Northwind Retail")
    today = dt.date.today()
    project = ProjectFactory(organization=org, name="Support assistant")
    other = ProjectFactory(organization=org, name="Catalogue writer")
    for likelihood, impact in ((5, 4), (4, 3), (4, 4), (3, 3), (1, 2)):
        RiskFactory(project=project, likelihood=likelihood, impact=impact, next_review_date=today)
    RiskFactory(project=other, likelihood=5, impact=5, status=RiskStatus.CLOSED)
    BudgetFactory(
        project=project,
        period_start=today.replace(day=1),
        period_end=today.replace(day=28) + dt.timedelta(days=4),
        amount=100,
    )
    for day, model, amount in ((today, "gpt-4o", "30.00"), (today.replace(day=1), "claude-sonnet-4", "80.00")):
        CostEntryFactory(
            project=project,
            date=day,
            category=CostCategory.INFERENCE,
            source=CostSource.USAGE,
            model=model,
            provider=ModelProvider.OPENAI,
            amount=Decimal(amount),
            input_tokens=40_000,
            output_tokens=8_000,
            requests=20,
        )
    CostEntryFactory(project=other, date=today, category=CostCategory.STORAGE, amount=Decimal("12.00"))
    return org


def _counts(page) -> dict[str, str]:
    cards = page.locator("[data-testid=severity-counts] [data-severity]")
    return {
        cards.nth(i).get_attribute("data-severity"): cards.nth(i).locator("strong").inner_text()
        for i in range(cards.count())
    }


def _no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


@pytest.mark.parametrize("size", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_dashboard_counts_equal_the_register_and_analytics_charts_draw(page, screenshot, size):
    org = _portfolio()
    page.set_viewport_size(size)
    sign_in(page, org, Role.MANAGER)
    page.goto("/")
    dashboard = _counts(page)
    assert dashboard == {"critical": "1", "high": "2", "medium": "1", "low": "1"}
    expect(page.locator("[data-testid=manager-week] canvas[data-drawn]")).to_have_count(2)  # drawn by app.js
    assert _no_sideways_scroll(page)
    page.goto("/risks/")
    assert _counts(page) == dashboard
    # The register lists as many of each severity as the cards say (a card opens it at its severity).
    for severity, count in dashboard.items():
        page.locator(f"[data-testid=severity-counts] [data-severity={severity}]").click()
        page.wait_for_url(f"**/risks/?severity={severity}")
        expect(page.locator("#risk-results tbody tr")).to_have_count(int(count))
        page.go_back()

    page.goto("/analytics/costs/")
    charts = page.locator("canvas[data-chart]")
    assert charts.count() == 4
    page.wait_for_function("document.querySelectorAll('canvas[data-drawn]').length === 4")
    model = page.get_by_test_id("chart-model")
    model.get_by_text("As a table").click()
    table = model.locator("table")
    assert table.is_visible()
    assert table.locator("thead th").all_inner_texts()[1:] == ["claude-sonnet-4", "gpt-4o"]
    assert page.get_by_test_id("total-spend").inner_text() == "$122"
    assert _no_sideways_scroll(page)
    with page.expect_download() as download:
        model.get_by_role("link", name="Download as CSV").click()
    assert download.value.suggested_filename.startswith("costs-model-")
    if size == LAPTOP:  # the screenshot fixture takes both widths
        page.goto("/")
        screenshot(page, "uidash-dashboard")
        page.goto("/risks/")
        screenshot(page, "uidash-risks")
        page.goto("/analytics/costs/")
        page.wait_for_function("document.querySelectorAll('canvas[data-drawn]').length === 4")
        screenshot(page, "uidash-costs")
