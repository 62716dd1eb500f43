"""The members journey in headless Chromium: an admin invites, the invited person creates an account and joins."""

import re

import pytest
from django.core import mail

from projects.models import Membership, Role
from projects.tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.test_browser import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_invites_and_the_invited_person_joins_with_a_new_account(page, browser, live_server, screenshot):
    org = OrganizationFactory(name="Northwind Retail")
    admin = UserFactory(username="ada", first_name="Ada", last_name="Mensah")
    MembershipFactory(user=admin, organization=org, role=Role.ADMIN)
    MembershipFactory(user=UserFactory(username="colin"), organization=org, role=Role.CONTRIBUTOR)
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")
    page.locator("details.dropdown summary").click()
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Members").click()
    page.get_by_label("E-mail address").fill("newcomer@example.com")
    page.locator("#id_role").select_option("contributor")
    page.get_by_role("button", name="Send invitation").click()
    page.get_by_text("Invitation sent to newcomer@example.com.").wait_for()
    # The only admin cannot step down: the refusal shows on their row.
    page.get_by_label("Role of ada").select_option("viewer")
    page.locator("tr", has_text="ada").get_by_role("button", name="Change").click()
    page.get_by_role("alert").filter(has_text="make someone else admin first").wait_for()
    screenshot(page, "members")

    link = re.search(r"http\S+/invitations/accept/\S+/", mail.outbox[-1].body).group(0)
    path = link[link.index("/invitations/") :]
    guest = browser.new_context(base_url=live_server.url).new_page()
    guest.goto(path)
    guest.get_by_text("Ada Mensah invites you as contributor").wait_for()
    screenshot(guest, "invitation-accept")
    guest.locator("#id_username").fill("newcomer")
    guest.locator("#id_password").fill("a-long-unusual-passphrase")
    guest.locator("#id_password_again").fill("a-long-unusual-passphrase")
    guest.get_by_role("button", name="Create account and join").click()
    guest.get_by_text("Welcome to Northwind Retail.").wait_for()
    assert Membership.objects.get(user__username="newcomer").role == Role.CONTRIBUTOR
    guest.context.close()
