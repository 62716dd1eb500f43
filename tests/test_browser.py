"""The main journeys of the web UI in a real headless Chromium against a live server."""

import datetime as dt
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from ops.models import ReportKind
from ops.services.reports import report_build
from ops.tests.factories import (
    BudgetFactory,
    CostEntryFactory,
    InfrastructureComponentFactory,
    QualityMetricFactory,
    ReportFactory,
    RiskFactory,
)
from projects.models import Health, Role, Stage, StageTransition
from projects.tests.factories import MembershipFactory, OrganizationFactory, ProjectFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "correct-horse-battery"


@pytest.fixture
def org():
    return OrganizationFactory(name="Northwind Retail")


@pytest.fixture
def project(org):
    return ProjectFactory(
        organization=org, name="Support assistant", stage=Stage.EVALUATION, summary="Answers order questions."
    )


def sign_in(page, org, role: Role = Role.CONTRIBUTOR) -> None:
    user = UserFactory(username=f"{role}-user")
    MembershipFactory(user=user, organization=org, role=role)
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")


def mark_page(page) -> None:
    """Tag the loaded document: the tag survives htmx swaps and disappears on a full reload."""
    page.evaluate("window.__noReload = true")


def assert_not_reloaded(page) -> None:
    assert page.evaluate("window.__noReload === true"), "the page was fully reloaded"


def test_sign_in_and_log_a_status_update_changes_the_health(page, org, project):
    sign_in(page, org)
    page.goto(project.get_absolute_url())
    assert page.get_by_test_id("health").inner_text().strip() == "No status yet"
    mark_page(page)
    form = page.locator("#section-status form")
    form.get_by_label("Off track").check()
    form.get_by_label("Progress %").fill("35")
    form.get_by_label("Summary").fill("Payment provider outage blocks refunds.")
    form.get_by_role("button", name="Log status").click()
    page.get_by_text("Status update logged.").wait_for()
    assert "Off track" in page.get_by_test_id("health").inner_text()
    assert page.locator(".timeline").get_by_text("Payment provider outage blocks refunds.").is_visible()
    assert_not_reloaded(page)
    project.refresh_from_db()
    assert project.health == Health.RED


def test_status_update_errors_show_inline(page, org, project):
    sign_in(page, org)
    page.goto(project.get_absolute_url())
    mark_page(page)
    form = page.locator("#section-status form")
    form.get_by_label("Progress %").fill("20")
    # Bypass the browser's own required-field check to see the server's message.
    form.evaluate("f => f.noValidate = true")
    form.get_by_role("button", name="Log status").click()
    page.locator("#section-status .errorlist").first.wait_for()
    assert "This field is required." in page.locator("#section-status").inner_text()
    assert_not_reloaded(page)


def test_add_a_risk_with_live_score_and_see_it_in_the_heat_maps(page, org, project):
    sign_in(page, org)
    page.goto(project.get_absolute_url())
    mark_page(page)
    # The forms open from the start (status, catalogue) load above this one: once they are in, nothing moves
    # the disclosure out from under the click.
    page.wait_for_load_state("networkidle")
    page.get_by_text("Add a risk", exact=True).click()
    form = page.locator("#section-risks form").filter(has_text="Add risk")
    form.get_by_label("Title").fill("Order data leaks into answers")
    form.get_by_label("Category").select_option("data_privacy")
    form.get_by_label("Likelihood").select_option("4")
    form.get_by_label("Impact").select_option("5")
    assert form.locator("[data-risk-score]").inner_text() == "Score 20 · Critical"
    form.get_by_role("button", name="Add risk").click()
    page.get_by_text("Risk added.").wait_for()
    cell = page.get_by_test_id("project-heatmap").locator('[data-likelihood="4"][data-impact="5"]')
    assert cell.inner_text() == "1"
    assert_not_reloaded(page)

    page.goto("/risks/")
    page.get_by_test_id("heatmap").locator('[data-likelihood="4"][data-impact="5"]').click()
    page.wait_for_url("**likelihood=4**")
    expect(page.locator("#risk-results table").get_by_text("Order data leaks into answers")).to_be_visible()


def test_refused_stage_move_lists_the_missing_gates(page, org, project):
    sign_in(page, org)
    page.goto(project.get_absolute_url())
    mark_page(page)
    page.get_by_text("Move the stage").click()
    page.get_by_label("Move to").select_option("pilot")
    page.get_by_role("button", name="Move", exact=True).click()
    refused = page.get_by_test_id("refused")
    refused.wait_for()
    text = refused.inner_text()
    assert (
        "A budget is recorded" in text
        and "Infrastructure is recorded" in text
        and "Quality metrics are recorded" in text
    )
    assert page.get_by_test_id("stage").inner_text() == "Evaluation"
    assert_not_reloaded(page)
    assert not StageTransition.objects.exists()


def test_manager_overrides_the_gates_with_a_justification(page, org, project):
    sign_in(page, org, Role.MANAGER)
    page.goto(project.get_absolute_url())
    page.get_by_text("Move the stage").click()
    page.get_by_label("Move to").select_option("pilot")
    page.get_by_role("button", name="Move", exact=True).click()
    page.get_by_test_id("refused").wait_for()
    # The refused form loads its preview above the button: click once it is in, not while it moves the button.
    page.get_by_test_id("preview-refused").wait_for()
    page.wait_for_load_state("networkidle")
    page.get_by_label("Override justification").fill("Two-week pilot with 20 agents, approved by the risk board.")
    page.get_by_role("button", name="Move", exact=True).click()
    page.get_by_text("Stage moved.").wait_for()
    assert page.get_by_test_id("stage").inner_text() == "Pilot"
    transition = StageTransition.objects.get(project=project)
    assert transition.override_reason.startswith("Two-week pilot") and "budget" in transition.overridden_gates


def test_screenshots_of_the_main_pages(page, org, project, screenshot):
    """Save the dashboard, project page, risk page and a report at 1366×768 and 390×844 (look at them)."""
    today = dt.date.today()
    other = ProjectFactory(
        organization=org, name="Fraud radar", stage=Stage.PRODUCTION, health=Health.RED, last_status_date=today
    )
    ProjectFactory(
        organization=org, name="Catalogue copywriter", stage=Stage.PILOT, health=Health.GREEN, last_status_date=today
    )
    for p in (project, other):
        BudgetFactory(
            project=p,
            period_start=today.replace(month=1, day=1),
            period_end=today.replace(month=12, day=31),
            amount=Decimal(60000),
        )
        for months_ago in range(8):
            CostEntryFactory(
                project=p,
                date=today - dt.timedelta(days=30 * months_ago),
                amount=Decimal(3000 + 700 * months_ago),
                model="gpt-4o",
                input_tokens=2_000_000,
                output_tokens=300_000,
            )
        InfrastructureComponentFactory(project=p, name="Azure OpenAI endpoint", provider="azure", model_name="gpt-4o")
        QualityMetricFactory(project=p, metric="hallucination_rate", value=0.07, threshold=0.05, higher_is_better=False)
    RiskFactory(
        project=project,
        title="Hallucinated refund policy",
        likelihood=4,
        impact=4,
        next_review_date=today - dt.timedelta(days=3),
    )
    RiskFactory(project=other, title="Customer PII in prompts", category="data_privacy", likelihood=3, impact=5)
    RiskFactory(project=other, title="Single provider", category="vendor_lock_in", likelihood=2, impact=3)
    week_start = today - dt.timedelta(days=today.weekday())
    reports = [
        ReportFactory(
            organization=org, kind=kind, period_start=week_start, period_end=week_start + dt.timedelta(days=6)
        )
        for kind in (ReportKind.STATUS, ReportKind.RISK)
    ]
    for report in reports:
        report_build(report_id=report.pk)
    sign_in(page, org, Role.MANAGER)
    page.goto("/")
    page.locator("canvas[data-drawn]").first.wait_for(state="attached")
    screenshot(page, "dashboard")
    page.goto(project.get_absolute_url())
    screenshot(page, "project")
    page.goto("/risks/")
    screenshot(page, "risks")
    page.goto(reports[0].get_absolute_url())
    assert page.get_by_role("heading", name="Projects", exact=True).is_visible()
    screenshot(page, "report-status")
    page.goto(reports[1].get_absolute_url())
    assert page.get_by_role("heading", name="Top risks").is_visible()
    screenshot(page, "report-risk")
