"""The settings area in a real browser, at laptop and phone widths: inviting someone and changing a role."""

import re

import pytest

from projects import services
from projects.models import Invitation, Membership, Role
from projects.tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.conftest import LAPTOP, PHONE
from tests.test_browser import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _sign_in(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")


@pytest.mark.parametrize("size", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_an_admin_invites_someone_and_changes_a_role(page, size):
    org = OrganizationFactory(name="Northwind Retail")
    admin = UserFactory(username="admin-user")
    MembershipFactory(user=admin, organization=org, role=Role.ADMIN)
    viewer = MembershipFactory(user=UserFactory(username="vera"), organization=org, role=Role.VIEWER)
    page.set_viewport_size(size)
    _sign_in(page, admin.username)

    # The user menu leads to the settings, whose sections lead to the members (on a phone behind Menu).
    if size == PHONE:
        page.get_by_role("button", name="Menu").click()
    page.locator("details.dropdown summary").click()
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Members").click()
    page.wait_for_url("**/settings/members/")

    page.get_by_label("E-mail address").fill("newcomer@example.com")
    page.get_by_label(re.compile(r"^Role:?$")).select_option("contributor")
    page.get_by_role("button", name="Send invitation").click()
    page.wait_for_url("**/settings/members/")
    assert "Invitation sent to newcomer@example.com." in page.locator(".messages").inner_text()
    assert page.get_by_role("cell", name="newcomer@example.com", exact=True).is_visible()
    assert Invitation.objects.get(organization=org).role == Role.CONTRIBUTOR

    page.get_by_label("Role of vera").select_option("manager")
    page.get_by_role("button", name="Change the role of vera").click()
    page.wait_for_url("**/settings/members/")
    assert "vera is now manager." in page.locator(".messages").inner_text()
    assert Membership.objects.get(pk=viewer.pk).role == Role.MANAGER
    # Nothing on the page is wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_screenshots_of_the_settings_area(page, screenshot):
    org = OrganizationFactory(name="Northwind Retail")
    admin = UserFactory(username="admin-user", first_name="Ada", last_name="Admin")
    MembershipFactory(user=admin, organization=org, role=Role.ADMIN)
    lead = MembershipFactory(user=UserFactory(username="lena", first_name="Lena", last_name="Lead"), organization=org)
    team = services.team_create(organization=org, name="Customer care", by=admin, lead=lead.user)
    services.team_create(organization=org, name="Data platform", by=admin, description="Pipelines and models.")
    services.invitation_create(organization=org, email="newcomer@example.com", role=Role.CONTRIBUTOR, by=admin)
    services.service_token_create(organization=org, scope="ingest", name="OTLP collector", by=admin)
    centre = services.cost_centre_create(organization=org, code="CC-100", name="Customer operations", by=admin)
    _sign_in(page, admin.username)
    for path, name in [
        ("/settings/", "settings-organization"),
        ("/settings/members/", "settings-members"),
        ("/settings/teams/", "settings-teams"),
        (f"/settings/teams/{team.pk}/", "settings-team-edit"),
        ("/settings/cost-centres/", "settings-cost-centres"),
        (f"/settings/cost-centres/{centre.pk}/", "settings-cost-centre-edit"),
        ("/settings/service-tokens/", "settings-service-tokens"),
        ("/account/notifications/", "account-notifications"),
    ]:
        assert page.goto(path).ok, path
        screenshot(page, name)
