"""axe-core on every page of the web UI, at laptop and phone widths, with every panel open.

A page added to the UI is added to `pages` below; a new violation anywhere fails the suite.
"""

import datetime as dt
from decimal import Decimal

import pytest

from ops.models import CostSource, ModelProvider, ReportKind
from ops.services.reports import report_build
from ops.tests.factories import (
    BudgetFactory,
    CostEntryFactory,
    InfrastructureComponentFactory,
    QualityMetricFactory,
    ReportFactory,
    RiskFactory,
)
from projects import services
from projects.models import Role, Stage
from projects.services import status_update_create
from projects.tests.factories import MembershipFactory, OrganizationFactory, ProjectFactory, UserFactory
from tests.conftest import LAPTOP, PHONE
from tests.test_browser import PASSWORD
from webhooks.models import EventType
from webhooks.services import webhook_endpoint_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def portfolio() -> tuple[list[str], UserFactory]:
    """An organization with one of everything a page can show; the UI paths to check, and its admin."""
    org = OrganizationFactory(name="Northwind Retail")
    admin = UserFactory(username="admin-user")
    MembershipFactory(user=admin, organization=org, role=Role.ADMIN)
    project = ProjectFactory(
        organization=org, name="Support assistant", stage=Stage.EVALUATION, summary="Answers.", business_owner=admin
    )
    status_update_create(project=project, by=admin, date=dt.date.today(), health="amber", progress=30, summary="On it.")
    today = dt.date.today()
    BudgetFactory(
        project=project,
        amount=Decimal("1000"),
        period_start=today.replace(month=1, day=1),
        period_end=today.replace(month=12, day=31),
    )
    CostEntryFactory(project=project, amount=Decimal("120.50"), date=today)
    CostEntryFactory(  # token usage, so the cost analytics draw their model and provider charts
        project=project,
        date=today,
        source=CostSource.USAGE,
        model="gpt-4o",
        provider=ModelProvider.OPENAI,
        amount=Decimal("3.20"),
        input_tokens=1000,
        output_tokens=200,
        requests=4,
    )
    InfrastructureComponentFactory(project=project)
    QualityMetricFactory(project=project)
    risk = RiskFactory(project=project)
    report = ReportFactory(organization=org, kind=ReportKind.STATUS)
    report_build(report_id=report.pk)
    team = services.team_create(organization=org, name="Customer care", by=admin, lead=admin)
    centre = services.cost_centre_create(organization=org, by=admin, code="CC-4100", name="Support", owner=admin)
    services.invitation_create(organization=org, email="newcomer@example.com", role=Role.CONTRIBUTOR, by=admin)
    endpoint, _ = webhook_endpoint_create(
        organization=org, by=admin, url="https://hooks.example.com/tracker", events=[EventType.choices[0][0]]
    )
    pages = [
        "/",
        "/projects/",
        "/projects/new/",
        project.get_absolute_url(),
        f"/projects/{project.pk}/edit/",
        f"/projects/{project.pk}/history/",
        f"/projects/{project.pk}/status/history/",
        f"/projects/{project.pk}/activity/",
        "/projects/mine/",
        "/activity/",
        "/risks/",
        f"/risks/{risk.pk}/",
        "/analytics/costs/",
        "/chargeback/",
        "/imports/",
        "/reports/",
        f"/reports/{report.pk}/",
        "/prices/",
        "/prices/import/",
        "/imports/csv/",
        "/webhooks/",
        f"/webhooks/{endpoint.pk}/",
        "/settings/",
        "/settings/members/",
        "/settings/teams/",
        f"/settings/teams/{team.pk}/",
        "/settings/cost-centres/",
        f"/settings/cost-centres/{centre.pk}/",
        "/settings/service-tokens/",
        "/account/notifications/",
        "/account/tokens/",
        "/accounts/password_change/",
    ]
    return pages, admin


@pytest.mark.parametrize("size", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_every_page_has_no_axe_violations(page, axe, size):
    pages, admin = portfolio()
    page.set_viewport_size(size)
    page.goto("/accounts/login/")
    assert axe(page) == [], "/accounts/login/"
    page.get_by_label("Username").fill(admin.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")
    found = {}
    for path in pages:
        response = page.goto(path)
        assert response.ok, f"{path} answered {response.status}"
        page.wait_for_load_state("networkidle")
        if violations := axe(page):
            found[path] = violations
    assert found == {}
