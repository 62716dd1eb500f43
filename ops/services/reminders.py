"""Review reminders: risk owners are e-mailed 7 days and 1 day before a review is due, and when overdue."""

import datetime as dt

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.base import BaseEmailBackend
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from ops.models import ReminderKind, ReviewReminder, Risk, RiskStatus
from projects.models import NotificationKind, Organization
from projects.selectors import notification_unsubscribed
from projects.services import organization_today
from tracker.mail import MailCounts, absolute_link, mail_each, subject_line


def _kind(days_left: int) -> ReminderKind:
    if days_left < 0:
        return ReminderKind.OVERDUE
    return ReminderKind.DUE_IN_1_DAY if days_left <= 1 else ReminderKind.DUE_IN_7_DAYS


def review_reminders_send(*, organization: Organization, today: dt.date | None = None) -> MailCounts:
    """Send the reminders due today in the organization; return how many were sent and how many failed.

    Each (risk, kind, review date) goes out once: the send record is inserted under a unique
    constraint in the same transaction as the sending, so a rerun or a concurrent run skips it
    and a failed send (logged, counted, the others still sent) is retried on the next run.
    A moved review date gets its own reminders. An owner who unsubscribed from review reminders gets none.
    """
    today = today or organization_today(organization)
    risks = (
        Risk.objects.filter(
            organization=organization,
            status__in=RiskStatus.active(),
            next_review_date__lte=today + dt.timedelta(days=7),
            owner__is_active=True,
        )
        .exclude(owner__email="")
        .exclude(owner__in=notification_unsubscribed(organization=organization, kind=NotificationKind.REVIEW_REMINDER))
        .select_related("owner", "project", "organization")
        .order_by("next_review_date", "pk")
    )
    due = [(risk, _kind((risk.next_review_date - today).days)) for risk in risks]
    sent_before = set(
        ReviewReminder.objects.filter(risk__in=[risk.pk for risk, _ in due]).values_list(
            "risk_id", "kind", "review_date"
        )
    )
    unsent = [(risk, kind) for risk, kind in due if (risk.pk, kind.value, risk.next_review_date) not in sent_before]

    def send(item: tuple[Risk, ReminderKind], connection: BaseEmailBackend) -> bool:
        risk, kind = item
        try:
            with transaction.atomic():
                ReviewReminder.objects.create(
                    risk=risk,
                    kind=kind,
                    review_date=risk.next_review_date,
                    recipient=risk.owner.email,
                    sent_at=timezone.now(),
                )
                _send(risk, kind, today, connection)
        except IntegrityError:  # a concurrent run sent it
            return False
        return True

    return mail_each(unsent, send, kind="review_reminder", describe=lambda item: f"risk {item[0].pk} ({item[1]})")


def _send(risk: Risk, kind: ReminderKind, today: dt.date, connection: BaseEmailBackend) -> None:
    context = {
        "risk": risk,
        "kind": kind,
        "overdue": kind == ReminderKind.OVERDUE,
        "days_left": (risk.next_review_date - today).days,
        "days_overdue": (today - risk.next_review_date).days,
        "link": absolute_link(risk, f"/api/v1/risks/{risk.pk}/"),
    }
    message = EmailMultiAlternatives(
        subject_line(f"[{risk.organization.name}]", f"{kind.label}:", risk.title),
        render_to_string("ops/email/review_reminder.txt", context),
        settings.DEFAULT_FROM_EMAIL,
        [risk.owner.email],
        connection=connection,
    )
    message.attach_alternative(render_to_string("ops/email/review_reminder.html", context), "text/html")
    message.send()
