"""The webhooks journey in headless Chromium: an admin registers an endpoint, copies its secret, reads the log."""

from types import SimpleNamespace

import pytest

from ops.services import risk_create, risk_update
from projects.models import Role
from projects.tests.factories import MembershipFactory, OrganizationFactory, ProjectFactory, UserFactory
from tests.test_browser import PASSWORD
from webhooks import outbox, transport
from webhooks.models import EndpointState, WebhookDelivery, WebhookEndpoint
from webhooks.services import webhook_delivery_attempt, webhook_endpoint_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_registers_an_endpoint_sees_its_secret_once_and_reads_its_deliveries(page, screenshot, monkeypatch):
    monkeypatch.setattr(outbox, "current_app", SimpleNamespace(send_task=lambda *args, **kwargs: None))  # no broker
    org = OrganizationFactory(name="Northwind Retail")
    admin = UserFactory(username="ada")
    MembershipFactory(user=admin, organization=org, role=Role.ADMIN)
    project = ProjectFactory(organization=org, name="Support bot")
    slack, _ = webhook_endpoint_create(
        organization=org,
        by=admin,
        url="https://hooks.slack.com/services/T000/B000/XXXX",
        events=["risk.escalated", "budget.threshold_crossed"],
        kind="slack",
        description="#llm-ops channel",
    )
    risk = risk_create(project=project, by=admin, title="Prompt injection", category="security", likelihood=3, impact=3)
    risk_update(risk=risk, by=admin, likelihood=5, impact=4)
    monkeypatch.setattr(transport, "resolve", lambda host, port: ["10.0.0.1"])  # no internet here: a private answer
    for delivery in WebhookDelivery.objects.all():
        webhook_delivery_attempt(delivery_id=delivery.pk)
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")
    page.locator("details.dropdown summary").click()
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_text("Register an endpoint").click()
    page.get_by_label("URL").fill("https://tickets.example.com/hooks/tracker")
    page.get_by_label("Description").fill("Jira sync")
    page.get_by_label("Status update created").uncheck()
    page.get_by_role("button", name="Register endpoint").click()
    secret = page.get_by_test_id("new-secret").inner_text()
    assert secret.startswith("whsec_")
    endpoint = WebhookEndpoint.objects.get(description="Jira sync")
    assert "status_update.created" not in endpoint.events and "risk.created" in endpoint.events
    screenshot(page, "webhooks")
    page.goto("/webhooks/")
    assert page.get_by_test_id("new-secret").count() == 0  # shown once
    page.locator("tr", has_text="tickets.example.com").get_by_role("button", name="Pause").click()
    page.get_by_text("paused.").wait_for()
    endpoint.refresh_from_db()
    assert endpoint.state == EndpointState.PAUSED
    page.get_by_role("link", name="https://tickets.example.com/hooks/tracker").click()
    page.get_by_text("No delivery yet.").wait_for()
    page.goto(f"/webhooks/{slack.pk}/")
    row = page.locator("tr", has_text="Risk escalated")
    row.get_by_text("Refused: hooks.slack.com resolves to a non-public address").wait_for()
    screenshot(page, "webhook-deliveries")
    row.get_by_role("button", name="Redeliver").click()
    page.get_by_text("queued again").wait_for()
