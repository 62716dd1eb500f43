"""Attacks on the e-mails and the reports: header breaks in names, a poisoned item in a batch, report floods.

A line break in a risk title or a project name used to raise BadHeaderError out of the reminder
batch (no reminder went out, every day) and out of the digest (re-queued hourly, forever). Report
requests took any period (ten years, or ending 9999-12-31: a 500), any number of them, each
mailing a digest.
"""

import datetime as dt
import logging
import re
import smtplib
from email import message_from_bytes

import pytest
from django.contrib.auth import get_user_model
from django.core.mail.backends.locmem import EmailBackend
from django.test import Client

from ops.models import ReminderKind, Report, ReportKind, ReportState, ReviewReminder
from ops.services import report_build, report_digest_send, report_request, review_reminders_send
from ops.services.reports import PERIOD_SHAPE, reports_schedule
from ops.tasks import report_build_task
from ops.tests.factories import ReportFactory, RiskFactory
from projects.models import Role
from projects.tests.api_support import _fresh_throttle, client_for  # noqa: F401
from projects.tests.factories import MembershipFactory, OrganizationFactory, ProjectFactory, UserFactory
from tracker.celery import app
from tracker.mail import SUBJECT_MAX_LENGTH, MailCounts, subject_line

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 3, 19)
TOMORROW = TODAY + dt.timedelta(days=1)
# Every character some mail software takes as the end of a header line.
BREAKS = ["\r", "\n", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\t"]
HOSTILE = "Poison" + "".join(BREAKS) + "Bcc: victim@example.net"
ONE_LINE = re.compile(r"[^\x00-\x1f\x7f-\x9f\u2028\u2029]*")
MONDAY = dt.date(2026, 3, 2)
TO_SUNDAY = dt.timedelta(days=6)  # Monday to Sunday


def one_line(subject: str) -> bool:
    return ONE_LINE.fullmatch(subject) is not None


class RefusingBackend(EmailBackend):
    """The test outbox, with a mail server that refuses recipients whose address starts with "refused"."""

    def send_messages(self, messages):
        for message in messages:
            if any(address.startswith("refused") for address in message.recipients()):
                raise smtplib.SMTPRecipientsRefused({message.to[0]: (550, b"No such user")})
        return super().send_messages(messages)


class UnreachableBackend(EmailBackend):
    def open(self):
        raise ConnectionRefusedError("mail server down")


@pytest.fixture
def refusing(settings):
    settings.EMAIL_BACKEND = f"{__name__}.RefusingBackend"


@pytest.fixture
def worked(django_capture_on_commit_callbacks):
    """Return a runner: call, then run the tasks it enqueued in-process, as a worker would."""

    def run(call):
        app.conf.task_always_eager = True
        try:
            with django_capture_on_commit_callbacks(execute=True):
                result = call()
        finally:
            app.conf.task_always_eager = False
        return result

    return run


# --- Subjects -------------------------------------------------------------------------------------


@pytest.mark.parametrize("char", [*BREAKS, "\x00", "\x1b", "\x7f"])
def test_subject_line_turns_every_header_break_into_a_space(char):
    subject = subject_line("[Acme]", f"Review due:{char}Poison{char}{char}Bcc: x@y")
    assert subject == "[Acme] Review due: Poison Bcc: x@y"


def test_subject_line_cuts_long_text():
    subject = subject_line("x" * 1000)
    assert len(subject) == SUBJECT_MAX_LENGTH and subject.endswith("…")


# --- Reminders: one bad item never stops the batch ------------------------------------------------


@pytest.fixture
def three_due():
    """Three risks due for review tomorrow, the second one with a title that carries a header break."""
    org = OrganizationFactory(name="Acme\r\nX-Org: evil")
    project = ProjectFactory(organization=org)
    risks = []
    for name, title in (("ann", "Model drift"), ("bob", "Poison\nBcc: x@y"), ("cid", "Vendor lock-in")):
        owner = MembershipFactory(organization=org, user=UserFactory(username=name)).user
        risks.append(RiskFactory(project=project, owner=owner, next_review_date=TOMORROW, title=title))
    return risks


def test_a_poisoned_risk_title_among_three_due_reminders_is_sent_with_a_clean_subject(three_due, mailoutbox):
    result = review_reminders_send(organization=three_due[0].organization, today=TODAY)

    assert result == MailCounts(sent=3, failed=0)
    assert sorted(m.to[0] for m in mailoutbox) == ["ann@example.com", "bob@example.com", "cid@example.com"]
    poisoned = next(m for m in mailoutbox if m.to == ["bob@example.com"])
    assert poisoned.subject == "[Acme X-Org: evil] Review due tomorrow: Poison Bcc: x@y"
    headers = message_from_bytes(poisoned.message().as_bytes())
    assert headers["Bcc"] is None and headers["X-Org"] is None and poisoned.bcc == []
    assert ReviewReminder.objects.filter(kind=ReminderKind.DUE_IN_1_DAY).count() == 3


def test_a_reminder_the_mail_server_refuses_is_logged_and_counted_and_the_others_go(
    three_due, refusing, mailoutbox, caplog
):
    bad = three_due[1]
    bad.owner.email = "refused@example.com"
    bad.owner.save()

    with caplog.at_level(logging.ERROR, logger="tracker.mail"):
        result = review_reminders_send(organization=bad.organization, today=TODAY)

    assert result == MailCounts(sent=2, failed=1)
    assert sorted(m.to[0] for m in mailoutbox) == ["ann@example.com", "cid@example.com"]
    assert [r.getMessage() for r in caplog.records] == [
        f"Could not send the review_reminder e-mail for risk {bad.pk} (due_1)"
    ]
    # Not recorded as sent, so the next run tries it again (and only it).
    assert not ReviewReminder.objects.filter(risk=bad).exists()
    bad.owner.email = "bob@example.com"
    bad.owner.save()
    assert review_reminders_send(organization=bad.organization, today=TODAY) == MailCounts(sent=1)
    assert mailoutbox[-1].to == ["bob@example.com"]


def test_an_unreachable_mail_server_sends_nothing_and_records_nothing(three_due, settings):
    settings.EMAIL_BACKEND = f"{__name__}.UnreachableBackend"

    with pytest.raises(ConnectionRefusedError):
        review_reminders_send(organization=three_due[0].organization, today=TODAY)

    assert not ReviewReminder.objects.exists()
    # With nothing due, the mail server is not even asked.
    assert review_reminders_send(organization=three_due[0].organization, today=TODAY - dt.timedelta(30)) == MailCounts()


# --- Digests ----------------------------------------------------------------------------------------


@pytest.fixture
def managers():
    org = OrganizationFactory(name="Acme")
    for name in ("anna", "boris"):
        MembershipFactory(organization=org, user=UserFactory(username=name), role=Role.MANAGER)
    return org


def test_a_project_name_with_a_line_break_gets_its_digest_with_a_clean_subject_and_is_not_requeued(
    managers, mailoutbox
):
    project = ProjectFactory(organization=managers, name="Chatbot\r\nBcc: victim@example.net")
    report = ReportFactory(organization=managers, project=project, notify=True)

    app.conf.task_always_eager = True
    try:
        report_build_task.delay(report.pk)
    finally:
        app.conf.task_always_eager = False

    report.refresh_from_db()
    assert report.state == ReportState.READY and report.digest_sent_at is not None
    assert [m.to for m in mailoutbox] == [["anna@example.com"], ["boris@example.com"]]
    assert {m.subject for m in mailoutbox} == {
        "[Acme] Status summary of Chatbot Bcc: victim@example.net, 2 Mar 2026 – 8 Mar 2026 ready"
    }
    assert all(message_from_bytes(m.message().as_bytes())["Bcc"] is None for m in mailoutbox)
    # The hourly job finds nothing to re-queue: the digest went.
    later = report.generated_at + dt.timedelta(hours=2)
    assert report not in reports_schedule(now=later)


def test_a_digest_recipient_the_server_refuses_is_counted_the_others_get_it_and_it_is_not_sent_again(
    managers, refusing, mailoutbox, caplog
):
    refused = MembershipFactory(organization=managers, user=UserFactory(username="refused"), role=Role.ADMIN).user
    report = report_build(report_id=ReportFactory(organization=managers).pk)

    with caplog.at_level(logging.ERROR, logger="tracker.mail"):
        assert report_digest_send(report_id=report.pk) == MailCounts(sent=2, failed=1)

    assert [m.to for m in mailoutbox] == [["anna@example.com"], ["boris@example.com"]]
    assert f"report {report.pk} to user {refused.pk}" in caplog.records[0].getMessage()
    assert report_digest_send(report_id=report.pk) == MailCounts()
    assert len(mailoutbox) == 2


def test_an_unreachable_mail_server_keeps_the_digest_due(managers, settings):
    report = report_build(report_id=ReportFactory(organization=managers).pk)
    settings.EMAIL_BACKEND = f"{__name__}.UnreachableBackend"

    with pytest.raises(ConnectionRefusedError):
        report_digest_send(report_id=report.pk)

    report.refresh_from_db()
    assert report.digest_sent_at is None  # the hourly job sends it once the server is back


def test_no_subject_of_any_e_mail_the_app_sends_leaves_one_line(mailoutbox):
    """Walk every e-mail the app sends (each reminder kind, each digest) with hostile names everywhere."""
    org = OrganizationFactory(name=f"Org {HOSTILE}")
    MembershipFactory(organization=org, user=UserFactory(username="boss"), role=Role.MANAGER)
    owner = MembershipFactory(organization=org, user=UserFactory(username="owner")).user
    project = ProjectFactory(organization=org, name=f"Project {HOSTILE}")
    for days in (7, 1, -3):
        RiskFactory(project=project, owner=owner, title=f"Risk {HOSTILE}", next_review_date=TODAY + dt.timedelta(days))
    assert review_reminders_send(organization=org, today=TODAY) == MailCounts(sent=3)
    for kind in ReportKind.values:
        for scope in (None, project):
            report = ReportFactory(organization=org, project=scope, kind=kind)
            report_build(report_id=report.pk)
            assert report_digest_send(report_id=report.pk) == MailCounts(sent=1)

    assert len(mailoutbox) == 7
    for message in mailoutbox:
        assert one_line(message.subject), repr(message.subject)
        assert "Bcc: victim@example.net" in message.subject  # kept as text, harmless on one line
        parsed = message_from_bytes(message.message().as_bytes())
        assert parsed["Bcc"] is None and parsed.get_all("Subject") and len(parsed.get_all("Subject")) == 1


# --- Report requests: periods, bounds, the pending cap, the digest flag -----------------------------


@pytest.fixture
def manager(managers):
    return get_user_model().objects.get(username="anna")


@pytest.fixture
def api(manager):
    return client_for(manager)


def ask(api, start: dt.date | str, end: dt.date | str, **extra):
    body = {"kind": "status", "period_start": str(start), "period_end": str(end), **extra}
    return api.post("/api/v1/reports/", body, format="json")


def test_a_period_ending_9999_12_31_is_a_400_through_the_api_and_the_form(api, manager, managers):
    response = ask(api, "9999-12-27", "9999-12-31")
    assert response.status_code == 400, response.content
    assert response.json()["errors"] == {"period_start": [f"A report covers days from 2000-01-01 to {latest()}."]}

    web = Client(raise_request_exception=False)
    web.force_login(manager)
    for span in ("week", "month"):
        page = web.post("/reports/new/", {"kind": "status", "span": span, "week": "9999-12-31"})
        assert page.status_code == 400
        assert page.context["request_form"].errors["week"] == [
            f"Ensure this value is less than or equal to {latest()}."
        ]
    assert not Report.objects.exists()


def latest() -> dt.date:
    from django.utils import timezone

    return timezone.localdate() + dt.timedelta(days=366)


def test_two_hundred_ten_year_periods_are_refused_and_nothing_is_built_or_mailed(
    api, django_capture_on_commit_callbacks, mailoutbox, expensive_unthrottled
):
    with django_capture_on_commit_callbacks() as enqueued:
        answers = [ask(api, dt.date(2006, 1, 2) + dt.timedelta(days=n), dt.date(2015, 12, 31)) for n in range(200)]

    assert {a.status_code for a in answers} == {400}
    assert {a.json()["detail"] for a in answers} == {PERIOD_SHAPE}
    assert not Report.objects.exists() and enqueued == [] and mailoutbox == []


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-03-03", "2026-03-09"),  # seven days, not Monday to Sunday
        ("2026-03-02", "2026-03-15"),  # two weeks
        ("2026-02-01", "2026-02-27"),  # most of a month
        ("2026-01-01", "2026-12-31"),  # a year
        ("1999-12-27", "2000-01-02"),  # a week before the report range
    ],
)
def test_periods_the_product_does_not_offer_are_refused(api, start, end):
    response = ask(api, start, end)
    assert response.status_code == 400 and response.json()["code"] == "invalid"
    assert not Report.objects.exists()


def test_a_week_and_a_calendar_month_are_accepted_through_the_api_and_the_form(api, manager):
    assert ask(api, MONDAY, MONDAY + dt.timedelta(days=6)).status_code == 202
    assert ask(api, "2024-02-01", "2024-02-29").status_code == 202
    web = Client()
    web.force_login(manager)
    assert web.post("/reports/new/", {"kind": "risk", "span": "month", "week": "2026-02-14"}).status_code == 302
    assert web.post("/reports/new/", {"kind": "risk", "week": "2026-02-14"}).status_code == 302  # a week by default
    assert sorted(Report.objects.values_list("kind", "period_start", "period_end")) == [
        ("risk", dt.date(2026, 2, 1), dt.date(2026, 2, 28)),
        ("risk", dt.date(2026, 2, 9), dt.date(2026, 2, 15)),
        ("status", dt.date(2024, 2, 1), dt.date(2024, 2, 29)),
        ("status", MONDAY, dt.date(2026, 3, 8)),
    ]


def test_a_manager_may_have_five_reports_waiting_and_the_sixth_is_refused(api, manager, managers, settings):
    assert settings.REPORT_PENDING_PER_USER == 5
    weeks = [MONDAY + dt.timedelta(weeks=n) for n in range(7)]
    for start in weeks[:5]:
        assert ask(api, start, start + dt.timedelta(days=6)).status_code == 202

    refused = ask(api, weeks[5], weeks[5] + dt.timedelta(days=6))
    assert refused.status_code == 409
    assert refused.json()["code"] == "too_many_pending_reports"
    assert refused.json()["detail"].startswith("You already have 5 reports waiting to be built.")
    assert Report.objects.count() == 5
    web = Client()
    web.force_login(manager)
    assert web.post("/reports/new/", {"kind": "status", "week": str(weeks[6])}).status_code == 409
    assert Report.objects.count() == 5
    # Asking again for one already waiting adds no work and is answered; the scheduler has no cap.
    assert ask(api, weeks[0], weeks[0] + dt.timedelta(days=6)).status_code == 202
    report_request(
        organization=managers, kind="risk", period_start=weeks[5], period_end=weeks[5] + dt.timedelta(6), by=None
    )
    # Once one is built, there is room for one more.
    report_build(report_id=Report.objects.filter(requested_by=manager).earliest("pk").pk)
    assert ask(api, weeks[5], weeks[5] + dt.timedelta(days=6)).status_code == 202


def test_the_cap_counts_a_failed_report_asked_again(api, manager, managers):
    for n in range(1, 5):
        start = MONDAY + dt.timedelta(weeks=n)
        ReportFactory(organization=managers, requested_by=manager, period_start=start, period_end=start + TO_SUNDAY)
    failed = ReportFactory(organization=managers, requested_by=manager, state=ReportState.FAILED, kind="risk")
    assert ask(api, MONDAY + dt.timedelta(weeks=5), MONDAY + dt.timedelta(weeks=5, days=6)).status_code == 202
    again = ask(api, failed.period_start, failed.period_end, kind="risk")
    assert again.status_code == 409
    failed.refresh_from_db()
    assert failed.state == ReportState.FAILED


def test_an_on_demand_report_sends_no_digest_unless_asked(api, managers, worked, mailoutbox):
    quiet = worked(lambda: ask(api, MONDAY, MONDAY + dt.timedelta(days=6)))
    loud = worked(lambda: ask(api, MONDAY, MONDAY + dt.timedelta(days=6), kind="risk", notify=True))

    assert (quiet.json()["notify"], loud.json()["notify"]) == (False, True)
    quiet_report, loud_report = Report.objects.get(pk=quiet.json()["id"]), Report.objects.get(pk=loud.json()["id"])
    assert quiet_report.state == loud_report.state == ReportState.READY
    assert quiet_report.digest_sent_at is None and loud_report.digest_sent_at is not None
    assert len(mailoutbox) == 2
    assert {m.subject for m in mailoutbox} == {"[Acme] Risk report of Acme, 2 Mar 2026 – 8 Mar 2026 ready"}
    # Not a "ready without its digest" report to the hourly job.
    assert quiet_report not in reports_schedule(now=quiet_report.generated_at + dt.timedelta(hours=2))


def test_asking_again_with_notify_mails_the_digest_of_a_ready_report(api, managers, worked, mailoutbox):
    first = worked(lambda: ask(api, MONDAY, MONDAY + dt.timedelta(days=6)))
    assert Report.objects.get(pk=first.json()["id"]).state == ReportState.READY and mailoutbox == []

    worked(lambda: ask(api, MONDAY, MONDAY + dt.timedelta(days=6), notify=True))

    assert len(mailoutbox) == 2 and Report.objects.get(pk=first.json()["id"]).digest_sent_at is not None


def test_the_weekly_reports_still_mail_the_managers_even_a_week_asked_for_quietly(api, managers, worked, mailoutbox):
    now = dt.datetime(2026, 3, 9, 1, 0, tzinfo=dt.UTC)  # Monday: the week of 2 March has ended
    type(managers).objects.filter(pk=managers.pk).update(created_at=dt.datetime(2026, 3, 2, tzinfo=dt.UTC))
    quiet = worked(lambda: ask(api, MONDAY, MONDAY + dt.timedelta(days=6)))  # that week's status report, no digest
    assert mailoutbox == []

    worked(lambda: reports_schedule(now=now))

    weekly = Report.objects.filter(organization=managers, period_start=MONDAY)
    assert weekly.count() == 2 and all(r.notify and r.digest_sent_at for r in weekly)
    assert quiet.json()["id"] in {r.pk for r in weekly}
    assert len(mailoutbox) == 4  # two reports, two managers
