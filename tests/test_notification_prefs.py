"""Each member chooses which digests and reminders of an organization they receive.

No choice recorded is the default, subscribed (what every member got before); the digest and the
review reminders leave out whoever unsubscribed from their kind, in that organization only.
"""

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse

from ops.models import ReportKind, ReviewReminder
from ops.services import report_build, report_digest_send, review_reminders_send
from ops.tests.factories import ReportFactory, RiskFactory
from projects import services
from projects.models import AuditEvent, NotificationKind, NotificationSubscription, Role
from projects.selectors import notification_choices
from projects.tests.factories import MembershipFactory, OrganizationFactory, ProjectFactory, UserFactory
from tracker.exceptions import NotPermitted, ValidationFailed
from tracker.mail import MailCounts

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 3, 19)


@pytest.fixture
def org():
    org = OrganizationFactory(name="Acme")
    for name in ("anna", "boris"):
        MembershipFactory(organization=org, user=UserFactory(username=name), role=Role.MANAGER)
    return org


def _user(name: str):
    return UserFactory(username=name)


def _unsubscribe(user, org, kind: NotificationKind) -> None:
    services.notification_subscriptions_set(user=user, organization=org, choices={kind: False})


def test_a_manager_who_unsubscribed_from_the_status_digest_gets_none_the_others_do(org, mailoutbox):
    _unsubscribe(_user("boris"), org, NotificationKind.STATUS_DIGEST)
    report = report_build(report_id=ReportFactory(organization=org, kind=ReportKind.STATUS).pk)

    assert report_digest_send(report_id=report.pk) == MailCounts(sent=1)
    assert [m.to for m in mailoutbox] == [["anna@example.com"]]


def test_the_choice_is_per_kind_a_risk_digest_still_goes(org, mailoutbox):
    _unsubscribe(_user("boris"), org, NotificationKind.STATUS_DIGEST)
    report = report_build(report_id=ReportFactory(organization=org, kind=ReportKind.RISK).pk)

    assert report_digest_send(report_id=report.pk) == MailCounts(sent=2)
    assert sorted(m.to[0] for m in mailoutbox) == ["anna@example.com", "boris@example.com"]


def test_the_choice_is_per_organization(org, mailoutbox):
    other = OrganizationFactory(name="Other")
    boris = _user("boris")
    MembershipFactory(organization=other, user=boris, role=Role.ADMIN)
    _unsubscribe(boris, other, NotificationKind.STATUS_DIGEST)
    report = report_build(report_id=ReportFactory(organization=org, kind=ReportKind.STATUS).pk)

    assert report_digest_send(report_id=report.pk) == MailCounts(sent=2)
    assert notification_choices(user=boris, organization=org)[NotificationKind.STATUS_DIGEST] is True


def test_an_owner_who_unsubscribed_from_review_reminders_gets_none_the_others_do(org, mailoutbox):
    project = ProjectFactory(organization=org)
    anna, boris = _user("anna"), _user("boris")
    kept = RiskFactory(project=project, owner=anna, next_review_date=TODAY + dt.timedelta(days=1))
    RiskFactory(project=project, owner=boris, next_review_date=TODAY + dt.timedelta(days=1))
    _unsubscribe(boris, org, NotificationKind.REVIEW_REMINDER)

    assert review_reminders_send(organization=org, today=TODAY) == MailCounts(sent=1)
    assert [m.to for m in mailoutbox] == [["anna@example.com"]]
    # Nothing is recorded as sent to the one who unsubscribed.
    assert list(ReviewReminder.objects.values_list("risk_id", flat=True)) == [kept.pk]


def test_resubscribing_brings_the_reminders_back(org, mailoutbox):
    boris = _user("boris")
    RiskFactory(project=ProjectFactory(organization=org), owner=boris, next_review_date=TODAY)
    _unsubscribe(boris, org, NotificationKind.REVIEW_REMINDER)
    assert review_reminders_send(organization=org, today=TODAY) == MailCounts()
    services.notification_subscriptions_set(
        user=boris, organization=org, choices={NotificationKind.REVIEW_REMINDER: True}
    )
    assert review_reminders_send(organization=org, today=TODAY) == MailCounts(sent=1)


def test_the_page_records_each_change_once_with_its_history(org):
    boris = _user("boris")
    client = Client()
    client.force_login(boris)
    url = reverse("projects:notifications")
    page = client.get(url).content.decode()
    assert page.count('type="checkbox"') == len(NotificationKind) and page.count("checked") == len(NotificationKind)

    # Everything ticked but the status digest.
    response = client.post(url, {"risk_digest": "on", "review_reminder": "on"})
    assert response.status_code == 302
    assert list(NotificationSubscription.objects.values_list("kind", "enabled")) == [("status_digest", False)]
    events = AuditEvent.objects.filter(object_type="projects.notificationsubscription")
    assert [(e.action, e.actor_id, e.organization_id) for e in events.all()] == [("create", boris.pk, org.pk)]

    # The same choices again: nothing written.
    client.post(url, {"risk_digest": "on", "review_reminder": "on"})
    assert events.count() == 1 and NotificationSubscription.objects.count() == 1

    client.post(url, {"status_digest": "on", "risk_digest": "on", "review_reminder": "on"})
    assert NotificationSubscription.objects.get().enabled is True
    assert events.count() == 2 and events.first().changes == {"enabled": [False, True]}


def test_only_members_choose_and_only_known_kinds(org):
    with pytest.raises(NotPermitted):
        services.notification_subscriptions_set(user=UserFactory(), organization=org, choices={"risk_digest": False})
    with pytest.raises(ValidationFailed):
        services.notification_subscriptions_set(user=_user("anna"), organization=org, choices={"weekly_spam": False})
    assert not NotificationSubscription.objects.exists()
