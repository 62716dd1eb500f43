"""Phones and keyboards (issue 16): lists as cards, the folded header, the chart after a cost, the user
menu, the heat map's arrow keys, and the focus after an htmx form, in headless Chromium."""

import datetime as dt
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from ops.tests.factories import BudgetFactory, CostEntryFactory, RiskFactory
from projects.models import Health, Role, Stage
from projects.services import status_update_create
from projects.tests.factories import MembershipFactory, OrganizationFactory, ProjectFactory, UserFactory
from tests.conftest import LAPTOP, PHONE
from tests.test_browser import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
NO_SIDEWAYS = "document.documentElement.scrollWidth <= document.documentElement.clientWidth"


def portfolio():
    """Three projects, one with a long name, each with a health, a budget, spend and open risks; a manager."""
    org = OrganizationFactory(name="Northwind Retail")
    manager = UserFactory(username="manager-user")
    MembershipFactory(user=manager, organization=org, role=Role.MANAGER)
    today = dt.date.today()
    projects = []
    for i, (name, health) in enumerate(
        [
            ("Support assistant", Health.GREEN),
            ("Clinical documentation summarisation for the emergency department", Health.RED),
            ("Fraud triage", Health.AMBER),
        ]
    ):
        project = ProjectFactory(organization=org, name=name, stage=Stage.PILOT, summary="An LLM project.")
        status_update_create(project=project, by=manager, date=today, health=health, progress=40, summary="Going.")
        BudgetFactory(
            project=project, amount=Decimal("1000"), period_start=today.replace(day=1), period_end=today.replace(day=28)
        )
        CostEntryFactory(project=project, amount=Decimal(400 + 500 * i), date=today)
        RiskFactory(project=project, likelihood=2 + i, impact=3 + i, title=f"Risk of {name}")
        projects.append(project)
    return manager, projects


def sign_in(page, user) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")


def header_height(page) -> float:
    return page.evaluate("document.querySelector('header.topbar').getBoundingClientRect().height")


@pytest.mark.parametrize("size", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_every_projects_health_spend_and_risks_show_without_sideways_scrolling(page, size, screenshot):
    manager, projects = portfolio()
    page.set_viewport_size(size)
    sign_in(page, manager)
    for path in ("/", "/projects/", "/risks/"):
        page.goto(path)
        assert page.evaluate(NO_SIDEWAYS), f"{path} scrolls sideways"
        # Nor does any table inside its own scrolling box (the dashboard's needs attention, the registers).
        overflowing = page.evaluate(
            "[...document.querySelectorAll('.table-wrap')].filter(w => w.scrollWidth > w.clientWidth)"
            ".map(w => [w.closest('article, section, div[id]').querySelector('h2, h3').textContent, w.scrollWidth])"
        )
        assert overflowing == [], f"{path}: a table scrolls sideways"
    page.goto("/projects/")
    rows = page.locator("#project-table tbody tr")
    assert rows.count() == len(projects)
    width = size["width"]
    for project in projects:
        project.refresh_from_db()
        row = rows.filter(has_text=project.name)
        for label, expected in (("Health", project.get_health_display()), ("Spend to date", "of $1,000")):
            cell = row.locator(f'td[data-label="{label}"]')
            assert expected in cell.inner_text()
            box = cell.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, f"{label} of {project.name} off-screen"
        risks = row.locator('td[data-label="Open risks"]')
        assert risks.inner_text().strip().startswith("1")
        assert risks.bounding_box()["x"] + risks.bounding_box()["width"] <= width
    if size == PHONE:  # both widths, once
        screenshot(page, "projects-cards")


def test_the_phone_header_folds_behind_menu(page):
    manager, _ = portfolio()
    page.set_viewport_size(PHONE)
    sign_in(page, manager)
    folded = header_height(page)
    assert folded < 60, f"the header takes {folded} px"
    assert not page.get_by_role("link", name="Risks", exact=True).is_visible()
    menu = page.get_by_role("button", name="Menu")
    menu.click()
    assert menu.get_attribute("aria-expanded") == "true"
    assert page.get_by_role("link", name="Risks", exact=True).is_visible()
    page.keyboard.press("Escape")
    assert menu.get_attribute("aria-expanded") == "false"
    assert page.evaluate("document.activeElement.classList.contains('nav-toggle')")
    # On a laptop the links show at once, on one line.
    page.set_viewport_size(LAPTOP)
    assert page.get_by_role("link", name="Risks", exact=True).is_visible()
    assert not menu.is_visible()
    assert header_height(page) < 70


def test_user_menu_shows_its_focus_and_escape_closes_it(page):
    manager, _ = portfolio()
    sign_in(page, manager)
    summary = page.locator("details.dropdown > summary")
    summary.focus()
    ring = summary.evaluate("s => [getComputedStyle(s).outlineStyle, getComputedStyle(s).outlineWidth]")
    assert ring == ["solid", "3px"]
    page.keyboard.press("Enter")
    assert page.locator("details.dropdown").get_attribute("open") is not None
    page.keyboard.press("Tab")  # into the menu
    page.keyboard.press("Escape")
    assert page.locator("details.dropdown").get_attribute("open") is None
    assert page.evaluate("document.activeElement === document.querySelector('details.dropdown > summary')")


def test_chart_still_drawn_after_a_cost_is_logged(page):
    manager, projects = portfolio()
    sign_in(page, manager)
    page.goto(projects[0].get_absolute_url())
    chart = "Chart.getChart(document.querySelector('#section-costs canvas[data-chart]')) !== undefined"
    page.wait_for_function(f"() => {chart}")
    page.get_by_text("Add a cost", exact=True).click()
    form = page.locator("#section-costs form").filter(has_text="Add cost")
    form.get_by_label("Amount").fill("75")
    form.get_by_role("button", name="Add cost").click()
    page.locator("#section-costs .notice").wait_for()
    page.wait_for_function(f"() => {chart}")
    drawn = page.evaluate("Chart.getChart(document.querySelector('#section-costs canvas')).data.datasets[0].data")
    assert sum(drawn) == pytest.approx(475)


def test_heat_map_is_one_tab_stop_with_arrow_keys_and_its_cell_survives_a_filter(page):
    manager, _ = portfolio()  # risks at (likelihood, impact) (2, 3), (3, 4), (4, 5)
    sign_in(page, manager)
    page.goto("/risks/")
    heatmap = page.get_by_test_id("heatmap")
    assert heatmap.locator("a").count() == 3  # empty cells are no links
    expect(heatmap.locator('a[tabindex="0"]')).to_have_count(1)
    heatmap.locator('a[tabindex="0"]').focus()
    focused = "[document.activeElement.dataset.likelihood, document.activeElement.dataset.impact]"
    assert page.evaluate(focused) == ["4", "5"]  # reading order: impact 5 first
    page.keyboard.press("ArrowDown")
    assert page.evaluate(focused) == ["3", "4"]
    page.keyboard.press("ArrowRight")
    assert page.evaluate(focused) == ["2", "3"]
    page.keyboard.press("ArrowRight")  # the last: stays
    assert page.evaluate(focused) == ["2", "3"]
    page.keyboard.press("ArrowUp")
    assert page.evaluate(focused) == ["3", "4"]
    assert heatmap.locator('a[tabindex="0"]').count() == 1
    page.keyboard.press("Enter")
    page.wait_for_url("**likelihood=3**")
    # The tab stop is set by app.js once the page has run it: wait for it rather than race it.
    expect(page.get_by_test_id("heatmap").locator('a.selected[tabindex="0"]')).to_have_count(1)
    page.get_by_label("Status").select_option("closed")
    page.wait_for_url("**status=closed**")
    assert "likelihood=3" in page.url and "impact=4" in page.url


def test_focus_goes_to_the_error_then_to_the_result_after_an_htmx_form(page):
    manager, projects = portfolio()
    page.set_viewport_size(PHONE)
    sign_in(page, manager)
    page.goto(projects[0].get_absolute_url())
    # "Log status" at the top opens the status form, which has been logged before (so it starts closed).
    page.locator("#project-header").get_by_role("button", name="Log status").click()
    form = page.locator("#section-status form")
    form.wait_for()
    page.wait_for_function("() => document.activeElement.closest('#section-status form') !== null")
    form.get_by_label("Summary").evaluate("e => e.removeAttribute('required')")
    form.get_by_role("button", name="Log status").click()
    page.wait_for_function("() => document.activeElement.getAttribute('aria-invalid') === 'true'")
    assert page.evaluate("document.activeElement.name") == "summary"
    page.locator("#section-status form").get_by_label("Summary").fill("Back on track.")
    page.locator("#section-status form").get_by_role("button", name="Log status").click()
    page.get_by_text("Status update logged.").wait_for()
    page.wait_for_function("() => document.activeElement.matches('#section-status [role=status]')")


def test_an_empty_organizations_first_steps_pass_axe_at_both_widths(page, axe, screenshot):
    org = OrganizationFactory(name="Fresh Start")
    admin = UserFactory(username="admin-user")
    MembershipFactory(user=admin, organization=org, role=Role.ADMIN)
    sign_in(page, admin)
    assert page.get_by_test_id("first-steps").get_by_role("link", name="Members and invitations").is_visible()
    for size in (LAPTOP, PHONE):
        page.set_viewport_size(size)
        assert axe(page) == [], size
    screenshot(page, "first-steps")
