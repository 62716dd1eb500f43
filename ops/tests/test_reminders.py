"""Review reminders: 7 days and 1 day before the review date and when overdue, each once."""

import datetime as dt

import pytest

from ops.models import ReminderKind, ReviewReminder, RiskStatus
from ops.services import review_reminders_send
from ops.tests.factories import RiskFactory
from projects.tests.factories import MembershipFactory, OrganizationFactory, ProjectFactory, UserFactory
from tracker.mail import MailCounts

pytestmark = pytest.mark.django_db

REVIEW = dt.date(2026, 3, 20)


@pytest.fixture
def risk():
    org = OrganizationFactory()
    owner = MembershipFactory(organization=org, user=UserFactory(username="owner")).user
    return RiskFactory(project=ProjectFactory(organization=org), owner=owner, next_review_date=REVIEW, title="Leak")


def send(risk, days_before: int) -> int:
    return review_reminders_send(organization=risk.organization, today=REVIEW - dt.timedelta(days=days_before)).sent


def test_owner_is_reminded_seven_days_one_day_before_and_when_overdue_once_each(risk, mailoutbox):
    assert send(risk, 8) == 0
    assert send(risk, 7) == 1
    assert send(risk, 6) == 0 and send(risk, 2) == 0
    assert send(risk, 1) == 1
    assert send(risk, 0) == 0
    assert send(risk, -1) == 1
    assert send(risk, -5) == 0
    assert [m.to for m in mailoutbox] == [["owner@example.com"]] * 3
    assert "due on 20 Mar 2026 (in 7 days)" in mailoutbox[0].body
    assert "1 day overdue" in mailoutbox[2].body
    assert mailoutbox[2].alternatives[0][1] == "text/html"
    kinds = list(ReviewReminder.objects.order_by("sent_at").values_list("kind", flat=True))
    assert kinds == [ReminderKind.DUE_IN_7_DAYS, ReminderKind.DUE_IN_1_DAY, ReminderKind.OVERDUE]


def test_a_moved_review_date_gets_its_own_reminders(risk, mailoutbox):
    send(risk, 1)
    risk.next_review_date = REVIEW + dt.timedelta(days=30)
    risk.save()
    assert review_reminders_send(organization=risk.organization, today=REVIEW + dt.timedelta(days=29)) == MailCounts(
        sent=1
    )
    assert ReviewReminder.objects.filter(kind=ReminderKind.DUE_IN_1_DAY).count() == 2


def test_no_reminder_for_closed_risks_or_owners_without_e_mail(risk, mailoutbox):
    risk.owner.email = ""
    risk.owner.save()
    other = RiskFactory(project=risk.project, owner=None, next_review_date=REVIEW)
    closed = RiskFactory(
        project=risk.project,
        owner=MembershipFactory(organization=risk.organization).user,
        next_review_date=REVIEW,
        status=RiskStatus.CLOSED,
    )
    assert send(risk, 1) == 0
    assert mailoutbox == [] and not ReviewReminder.objects.filter(risk__in=[risk, other, closed]).exists()
