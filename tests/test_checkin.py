"""Check-in in under 30 seconds (issue 16, point 4): my projects and what is due this week, the
check-in dialog of the dashboard and the project list (the status form and service of the project
page), "copy the last update", and the full status history."""

import datetime as dt

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from ops.models import RiskStatus
from ops.selectors.portfolio import my_projects
from ops.tests.factories import RiskFactory
from projects.models import Role, StatusUpdate
from projects.services import organization_today, status_update_create
from projects.tests.factories import MembershipFactory, OrganizationFactory, ProjectFactory, UserFactory, member

pytestmark = pytest.mark.django_db
STALE = settings.RISK_SIGNAL_STALE_STATUS_DAYS


@pytest.fixture
def org():
    return OrganizationFactory(name="Northwind Retail")


@pytest.fixture
def ana(org):
    return member(org, Role.CONTRIBUTOR)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _aged(project, *, last_status_days_ago: int | None, created_days_ago: int = 400):
    """Set the project's last status date and creation without going through history (hand-made data)."""
    today = organization_today(project.organization)
    project.last_status_date = None if last_status_days_ago is None else today - dt.timedelta(days=last_status_days_ago)
    project.created_at = timezone.now() - dt.timedelta(days=created_days_ago)
    project.save(update_fields=["last_status_date", "created_at"])
    return project


def test_my_projects_are_those_i_own_in_any_of_the_three_roles(org, ana):
    other = member(org)
    owned = ProjectFactory(organization=org, name="A owned", business_owner=ana)
    led = ProjectFactory(organization=org, name="B led", technical_lead=ana)
    overseen = ProjectFactory(organization=org, name="C overseen", human_oversight_owner=ana)
    ProjectFactory(organization=org, name="D someone else's", business_owner=other)
    ProjectFactory(organization=org, name="E archived", business_owner=ana, archived=True)
    elsewhere = OrganizationFactory()
    MembershipFactory(user=ana, organization=elsewhere)
    ProjectFactory(organization=elsewhere, name="F other organization", business_owner=ana)

    rows = my_projects(user=ana, organization=org, as_of=organization_today(org))

    assert {p.pk for p in rows} == {owned.pk, led.pk, overseen.pk}


def test_due_this_week_is_stale_within_seven_days_or_a_review_within_seven_days(org, ana):
    today = organization_today(org)
    fresh = _aged(ProjectFactory(organization=org, name="fresh", business_owner=ana), last_status_days_ago=STALE - 8)
    edge = _aged(ProjectFactory(organization=org, name="edge", business_owner=ana), last_status_days_ago=STALE - 7)
    _aged(ProjectFactory(organization=org, name="due", business_owner=ana), last_status_days_ago=STALE - 6)
    never = _aged(ProjectFactory(organization=org, name="never", business_owner=ana), last_status_days_ago=None)
    new = _aged(
        ProjectFactory(organization=org, name="new", business_owner=ana), last_status_days_ago=None, created_days_ago=1
    )
    review = _aged(ProjectFactory(organization=org, name="review", business_owner=ana), last_status_days_ago=1)
    RiskFactory(project=review, next_review_date=today + dt.timedelta(days=7))
    later = _aged(ProjectFactory(organization=org, name="later", business_owner=ana), last_status_days_ago=1)
    RiskFactory(project=later, next_review_date=today + dt.timedelta(days=8))
    closed = _aged(ProjectFactory(organization=org, name="closed", business_owner=ana), last_status_days_ago=1)
    RiskFactory(project=closed, next_review_date=today, status=RiskStatus.CLOSED)

    rows = {p.name: p for p in my_projects(user=ana, organization=org, as_of=today)}

    assert {name for name, p in rows.items() if p.due} == {"due", "never", "review"}
    assert rows["due"].status_due and not rows["due"].review_due
    assert rows["review"].review_due and not rows["review"].status_due
    assert not rows[edge.name].due and not rows[fresh.name].due and not rows[new.name].due
    assert not rows[later.name].due and not rows[closed.name].due
    assert never.pk in {p.pk for p in list(rows.values())[:3]}, "due ones come first"


def test_my_projects_page_and_the_dashboard_card_list_only_what_is_due(org, ana, django_assert_max_num_queries):
    due = _aged(ProjectFactory(organization=org, name="Due bot", business_owner=ana), last_status_days_ago=STALE)
    _aged(ProjectFactory(organization=org, name="Fresh bot", technical_lead=ana), last_status_days_ago=0)
    client = _client(ana)

    page = client.get(reverse("projects:mine")).content.decode()
    assert "Due bot" in page and "Fresh bot" in page
    card = client.get(
        reverse("projects:mine") + "?due=week", headers={"HX-Request": "true", "HX-Target": "due-this-week"}
    )
    assert "Due bot" in card.content.decode() and "Fresh bot" not in card.content.decode()
    assert "<html" not in card.content.decode()
    assert f'id="checkin-mine-{due.pk}"' in card.content.decode()
    assert 'id="due-this-week"' in client.get(reverse("projects:dashboard")).content.decode()


def test_my_projects_costs_the_same_queries_for_two_projects_or_twelve(org, ana, django_assert_num_queries):
    client = _client(ana)
    ProjectFactory.create_batch(2, organization=org, business_owner=ana)
    client.get(reverse("projects:mine"))  # warm the session and the organization
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        client.get(reverse("projects:mine"))
    ProjectFactory.create_batch(10, organization=org, business_owner=ana)
    with CaptureQueriesContext(connection) as many:
        client.get(reverse("projects:mine"))
    assert len(many) == len(few)


def test_checkin_dialog_logs_through_the_status_service_and_answers_the_row(org, ana):
    project = ProjectFactory(organization=org, name="Support bot", business_owner=ana)
    client = _client(ana)
    url = reverse("projects:checkin", args=[project.pk])
    htmx = {"HX-Request": "true"}

    form = client.get(url + "?row=list", headers=htmx).content.decode()
    assert f'hx-post="{url}?row=list"' in form and 'name="summary"' in form

    today = organization_today(org).isoformat()
    data = {"date": today, "health": "amber", "progress": "40", "summary": "Vendor review pending"}
    answer = client.post(url + "?row=list", data, headers=htmx).content.decode()

    update = StatusUpdate.objects.get(project=project)
    assert (update.author, update.health, update.summary) == (ana, "amber", "Vendor review pending")
    assert "data-checkin-done" in answer and "Status logged for Support bot." in answer
    assert f'<tr id="project-row-{project.pk}" hx-swap-oob="true">' in answer and "At risk" in answer


def test_checkin_dialog_shows_errors_and_writes_nothing(org, ana):
    project = ProjectFactory(organization=org)
    client = _client(ana)
    url = reverse("projects:checkin", args=[project.pk]) + "?row=mine"
    future = (organization_today(org) + dt.timedelta(days=3)).isoformat()

    answer = client.post(
        url, {"date": future, "health": "red", "progress": "5", "summary": "x"}, headers={"HX-Request": "true"}
    )

    assert not StatusUpdate.objects.exists()
    body = answer.content.decode()
    assert "data-checkin-done" not in body and "In the future." in body and 'data-testid="status-form"' in body


def test_checkin_is_refused_to_viewers(org):
    project = ProjectFactory(organization=org)
    viewer = member(org, Role.VIEWER)
    client = _client(viewer)
    url = reverse("projects:checkin", args=[project.pk])
    data = {"date": organization_today(org).isoformat(), "health": "red", "progress": "5", "summary": "x"}
    assert client.get(url, headers={"HX-Request": "true"}).status_code == 403
    assert client.post(url, data).status_code == 403
    assert not StatusUpdate.objects.exists()


def test_copy_last_update_starts_the_form_from_the_newest_update(org, ana):
    project = ProjectFactory(organization=org)
    today = organization_today(org)
    status_update_create(
        project=project, by=ana, date=today - dt.timedelta(days=9), health="green", progress=10, summary="old"
    )
    status_update_create(
        project=project,
        by=ana,
        date=today - dt.timedelta(days=2),
        health="amber",
        progress=55,
        summary="Latency work",
        blockers="GPU quota",
    )
    client = _client(ana)
    htmx = {"HX-Request": "true"}

    for url in (
        reverse("projects:form", args=[project.pk, "status"]) + "?copy=last",
        reverse("projects:checkin", args=[project.pk]) + "?copy=last&row=list",
    ):
        form = client.get(url, headers=htmx).context["form"]
        assert form.initial["summary"] == "Latency work" and form.initial["blockers"] == "GPU quota"
        assert (form.initial["health"], form.initial["progress"], form.initial["date"]) == ("amber", 55, today)
    blank = client.get(reverse("projects:form", args=[project.pk, "status"]), headers=htmx).context["form"]
    assert "summary" not in blank.initial
    assert (
        "Copy the last update"
        in client.get(reverse("projects:form", args=[project.pk, "status"]), headers=htmx).content.decode()
    )


def test_status_history_pages_through_every_update(org, ana):
    project = ProjectFactory(organization=org)
    today = organization_today(org)
    for n in range(30):
        status_update_create(
            project=project,
            by=ana,
            date=today - dt.timedelta(days=n),
            health="green",
            progress=n,
            summary=f"week {n:02d}",
        )
    client = _client(ana)

    assert "Every status update" in client.get(project.get_absolute_url()).content.decode()
    first = client.get(reverse("projects:status-history", args=[project.pk])).content.decode()
    second = client.get(reverse("projects:status-history", args=[project.pk]) + "?page=2").content.decode()
    assert "week 00" in first and "week 24" in first and "week 25" not in first
    assert "week 25" in second and "week 29" in second and "week 00" not in second


# In a browser: the dialog from the project list and from the dashboard, at both widths.

PASSWORD = "correct-horse-battery"


def _sign_in(page, user) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")


def _log_in_dialog(page, name: str, summary: str) -> None:
    page.get_by_role("link", name=f"Log status of {name}").first.click()
    dialog = page.get_by_test_id("checkin-dialog")
    dialog.get_by_label("Summary").wait_for()
    assert dialog.evaluate("d => d.open")  # a modal <dialog>: the page behind is inert
    dialog.get_by_text("At risk").click()
    dialog.get_by_label("Summary").fill(summary)
    dialog.get_by_role("button", name="Log status").click()
    expect(page.get_by_test_id("checkin-dialog")).to_be_hidden()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "size", [{"width": 1366, "height": 768}, {"width": 390, "height": 844}], ids=["laptop", "phone"]
)
def test_a_status_logged_from_the_list_and_the_dashboard_dialogs(page, screenshot, size):
    org = OrganizationFactory(name="Northwind Retail")
    ana = UserFactory(username="ana")
    MembershipFactory(user=ana, organization=org, role=Role.CONTRIBUTOR)
    listed = ProjectFactory(organization=org, name="Support bot", business_owner=ana)
    due = _aged(ProjectFactory(organization=org, name="Fraud radar", technical_lead=ana), last_status_days_ago=None)
    page.set_viewport_size(size)
    _sign_in(page, ana)

    page.goto("/projects/")
    page.evaluate("window.__noReload = true")
    page.get_by_role("link", name="Log status of Support bot").click()
    page.get_by_test_id("checkin-dialog").get_by_label("Summary").wait_for()
    if size["width"] == 1366:
        screenshot(page, "checkin-dialog-list")
    page.keyboard.press("Escape")
    _log_in_dialog(page, "Support bot", "Vendor review pending")
    row = page.locator(f"#project-row-{listed.pk}")
    assert "At risk" in row.inner_text()
    assert page.evaluate("window.__noReload === true"), "the page was reloaded"
    assert page.evaluate("document.activeElement.id") == f"checkin-list-{listed.pk}"
    assert "Status logged for Support bot." in page.locator("#checkin-notice").inner_text()

    page.goto("/")
    card = page.get_by_test_id("due-this-week")
    card.get_by_role("link", name="Fraud radar", exact=True).wait_for()
    assert "Support bot" not in card.inner_text()
    screenshot(page, f"dashboard-due-{'laptop' if size['width'] == 1366 else 'phone'}")
    _log_in_dialog(page, "Fraud radar", "First check-in")
    expect(page.locator(f"#mine-row-{due.pk} [data-testid=due-badge]")).to_have_count(0)
    assert "At risk" in page.locator(f"#mine-row-{due.pk}").inner_text()
    assert list(StatusUpdate.objects.order_by("pk").values_list("project__name", "summary", "health")) == [
        ("Support bot", "Vendor review pending", "amber"),
        ("Fraud radar", "First check-in", "amber"),
    ]
