"""Reports: request one (on demand or on schedule), build it, e-mail its digest, keep the schedule.

Exactly once: a report is unique per organization × project × kind × period (database
constraint), the build is claimed under a PostgreSQL session advisory lock that dies with the
worker holding it, and the digest is claimed by a conditional UPDATE of `digest_sent_at`.

Bounded: a report covers a week or a calendar month inside the report range, and a user may have
REPORT_PENDING_PER_USER on-demand reports waiting at once.
"""

import datetime as dt
import functools
import logging
import time

import orjson
from celery import current_app
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError
from psycopg.types.json import Jsonb

from ops.models import Report, ReportKind, ReportSpan, ReportState
from ops.selectors.portfolio import week_before
from ops.selectors.reports import BUILDERS, report_headline, report_period
from projects.models import Membership, NotificationKind, Organization, Project, Role
from projects.selectors import notification_unsubscribed
from projects.services import membership_require
from tracker.db import CompiledValues, instance_from_row, pipeline, related_values_names, server_bound_cursor
from tracker.exceptions import Conflict, ErrorCode, ServiceUnavailable, ValidationFailed
from tracker.formatting import date_range
from tracker.mail import MailCounts, absolute_link, mail_each, subject_line
from webhooks.models import EventType
from webhooks.outbox import emit

logger = logging.getLogger(__name__)

# High byte of the advisory-lock key: keeps report locks apart from any other use of advisory locks.
LOCK_NAMESPACE = 0x52 << 56
# Seconds between two progress writes of a build (see `report_build`).
PROGRESS_WRITE_INTERVAL = 1.0


QUEUE_UNAVAILABLE = (
    "The report is saved but could not be queued: the task queue is unavailable. "
    "It will be built automatically once the queue is back; you can also ask again in a few minutes."
)


def _enqueue_build(report_id: int) -> None:
    """Enqueue the build once the current transaction commits (a worker must see the row).

    Outside a transaction this publishes at once. A broker that is down raises ServiceUnavailable
    (after Celery's bounded publish retries); the report stays pending and reports_schedule
    re-enqueues it once the broker is back.
    """

    def publish() -> None:
        try:
            # By name: services never import tasks (the tasks call the services).
            current_app.signature("ops.report_build", args=[report_id]).delay()
        except KombuOperationalError as exc:
            logger.warning("Could not enqueue report %s, left pending: %s", report_id, exc)
            raise ServiceUnavailable(
                QUEUE_UNAVAILABLE, code=ErrorCode.QUEUE_UNAVAILABLE, extra={"report": report_id}
            ) from exc

    transaction.on_commit(publish)


PERIOD_SHAPE = "A report covers a week (Monday to Sunday) or a calendar month."
TOO_MANY_PENDING = (
    "You already have {limit} reports waiting to be built. Ask for more once one of them is ready or failed."
)


def report_period_limits() -> tuple[dt.date, dt.date]:
    """Return the first and the last day a report may cover (a sanity range: a day of timezone makes no odds)."""
    return settings.REPORT_PERIOD_EARLIEST, timezone.localdate() + dt.timedelta(days=settings.REPORT_PERIOD_DAYS_AHEAD)


def _period_errors(*, period_start: dt.date, period_end: dt.date) -> dict[str, list[str]]:
    earliest, latest = report_period_limits()
    if period_end < period_start:
        return {"period_end": ["The period ends before it starts."]}
    if period_start < earliest or period_end > latest:
        return {"period_start": [f"A report covers days from {earliest} to {latest}."]}
    if (period_start, period_end) not in {report_period(day=period_start, span=span) for span in ReportSpan}:
        return {"period_start": [PERIOD_SHAPE]}
    return {}


def _pending_limit_check(*, user: AbstractBaseUser) -> None:
    """Refuse one more on-demand report to a user who has REPORT_PENDING_PER_USER waiting (pending or running).

    The user's row is locked first, so two requests at once cannot both take the last place.
    """
    list(get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk"))
    limit = settings.REPORT_PENDING_PER_USER
    waiting = Report.objects.filter(requested_by=user, state__in=[ReportState.PENDING, ReportState.RUNNING])
    if waiting.count() >= limit:
        raise Conflict(TOO_MANY_PENDING.format(limit=limit), code=ErrorCode.TOO_MANY_PENDING_REPORTS)


def report_request(
    *,
    organization: Organization,
    kind: str,
    period_start: dt.date,
    period_end: dt.date,
    by: AbstractBaseUser | None,
    project: Project | None = None,
    notify: bool = False,
    enqueue: bool = True,
) -> Report:
    """Ask for a report of a period and enqueue its build; asking again returns the same report.

    `by` must be a manager; `by=None` is the scheduler. The period is a week or a calendar month
    inside `report_period_limits`. A failed report is reset to pending, so asking again retries
    it; a ready one is returned as it is. A new or retried report counts against the requester's
    REPORT_PENDING_PER_USER. `notify=True` has the digest e-mailed once the report is ready
    (asking again with it turns it on, never off). `enqueue=False` leaves the build to the caller
    (the command line builds in-process).
    """
    if by is not None:
        membership_require(user=by, organization=organization, role=Role.MANAGER)
    errors: dict[str, list[str]] = {}
    if kind not in ReportKind.values:
        errors["kind"] = [f"Choose one of {', '.join(ReportKind.values)}."]
    errors |= _period_errors(period_start=period_start, period_end=period_end)
    if project is not None and project.organization_id != organization.pk:
        errors["project"] = ["Unknown project."]
    if errors:
        raise ValidationFailed(next(iter(errors.values()))[0], errors=errors)
    key = {
        "organization": organization,
        "project": project,
        "kind": kind,
        "period_start": period_start,
        "period_end": period_end,
    }
    # The row commits before the build is enqueued: a broker outage never loses the request.
    with transaction.atomic():
        report = Report.objects.select_for_update().filter(**key).first()
        if by is not None and (report is None or report.state == ReportState.FAILED):
            _pending_limit_check(user=by)
        if report is None:  # get_or_create: the scheduler may be creating it right now
            report, _ = Report.objects.get_or_create(**key, defaults={"requested_by": by, "notify": notify})
        elif report.state == ReportState.FAILED:
            report.state, report.error, report.progress, report.step = ReportState.PENDING, "", 0, ""
            report.save(update_fields=["state", "error", "progress", "step", "updated_at"])
        notify_now = notify and not report.notify
        if notify_now:
            report.notify = True
            report.save(update_fields=["notify", "updated_at"])
    # A ready report asked with notify goes through the task too: the build is a no-op, the digest goes.
    if enqueue and (report.state == ReportState.PENDING or (notify_now and report.state == ReportState.READY)):
        _enqueue_build(report.pk)
    return report


# Lock and claim in one statement: the advisory lock first (a CTE evaluated once), then the running state,
# written only when the lock was taken and the report is not ready. READ COMMITTED re-checks the state on the
# row's newest version, so a build that became ready after this statement's snapshot is never claimed again.
# The lock's holder also turns JIT off for its session until the unlock: the build's statements are index
# probes and grouped scans that run in milliseconds, and a plan costed above `jit_above_cost` (the project
# rows of an organization of ~500 projects: every gate is a probe per project) spent ~90 ms compiling.
CLAIM_SQL = """
    WITH lock AS (SELECT pg_try_advisory_lock(%s) AS acquired),
    claimed AS (
        UPDATE ops_report SET state = %s, started_at = %s, progress = 0, step = %s, error = '',
            attempts = attempts + 1, updated_at = %s
        WHERE id = %s AND state <> %s AND (SELECT acquired FROM lock)
        RETURNING id),
    was AS MATERIALIZED (SELECT current_setting('jit') AS jit)
    SELECT acquired, EXISTS (SELECT 1 FROM claimed), jit, CASE WHEN acquired THEN set_config('jit', 'off', false) END
    FROM lock, was"""
# The unlock gives the session the JIT setting it had (`was` is scanned, so read, before the row sets it).
UNLOCK_SQL = "SELECT pg_advisory_unlock(%s), set_config('jit', %s, false)"
STARTING = "Starting"


def _claim(report_id: int, started: dt.datetime) -> tuple[bool, bool, str]:
    """Take the report's build lock and, unless it is ready, write its running state; return (locked, claimed)
    and the session's JIT setting, which the lock's holder turns off until `_unlock` gives it back (see CLAIM_SQL).

    The lock is a PostgreSQL session advisory lock: PostgreSQL drops it when the holder's connection
    dies, so a worker killed mid-build never blocks the redelivered task. Elsewhere (SQLite, embedded
    mode) there is one worker and the periodic job re-enqueues stuck reports.
    """
    if connection.vendor != "postgresql":
        claimed = (
            Report.objects.filter(pk=report_id)
            .exclude(state=ReportState.READY)
            .update(
                state=ReportState.RUNNING,
                started_at=started,
                progress=0,
                step=STARTING,
                error="",
                attempts=F("attempts") + 1,
                updated_at=started,
            )
        )
        return True, bool(claimed), ""
    params = [LOCK_NAMESPACE | report_id, ReportState.RUNNING, started, STARTING, started, report_id]
    with connection.cursor() as cursor:
        cursor.execute(CLAIM_SQL, [*params, ReportState.READY])
        locked, claimed, jit, _ = cursor.fetchone()
    return locked, claimed, jit


# A report is read with its organization and project (one statement, compiled once per process): the build
# reads them all, and the ORM's building and compiling of the joined read cost more than the read itself.
REPORT_RELATED = ("organization", "project")


@functools.cache
def _report_statement() -> CompiledValues:
    probe = -7_301_023  # no report's id
    names = related_values_names(Report, REPORT_RELATED)
    return CompiledValues(Report.objects.filter(pk=probe).values(*names), {"pk": probe})


def _report_read(report_id: int) -> Report:
    """Return the report with its organization and project, as `select_related` reads them."""
    rows = _report_statement()(pk=report_id)
    if not rows:
        raise Report.DoesNotExist(f"No report {report_id}.")
    return instance_from_row(Report, rows[0], REPORT_RELATED)


def _unlock(report_id: int, jit: str) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(UNLOCK_SQL, [LOCK_NAMESPACE | report_id, jit])


# The ready write binds its data server-side (tracker.db.server_bound_cursor): the data is the whole report,
# ~70 kB of JSON for 50 projects, and Django's cursor would escape it into the SQL text for PostgreSQL to parse.
READY_SQL = """UPDATE ops_report SET state = %(state)s, data = %(data)s, generated_at = %(generated_at)s,
    progress = %(progress)s, step = %(step)s, error = '', revised_at = NULL, updated_at = %(generated_at)s
    WHERE id = %(id)s"""


def _report_json(data: object) -> bytes:
    # json.dumps takes ~10 ms for the data of 500 projects, orjson ~1 ms; keys that are not strings are written as
    # json.dumps writes them.
    return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)


def _ready_write(report_id: int, ready: dict[str, object]) -> None:
    if connection.vendor == "postgresql":
        data = Jsonb(ready["data"], dumps=_report_json)
    else:
        data = Report._meta.get_field("data").get_db_prep_value(ready["data"], connection)
    with server_bound_cursor() as cursor:
        cursor.execute(READY_SQL, ready | {"data": data, "id": report_id})


def report_build(*, report_id: int) -> Report | None:
    """Build a report: pending/running/failed → running → ready (or failed with the error).

    Idempotent: a ready report is returned untouched; a report another live worker is building
    is left to it (returns None). Progress is committed step by step so it is visible meanwhile.
    """
    started = timezone.now()
    # The claim goes alone: the session's advisory lock outlives a rolled-back statement, so a read failing in the
    # claim's round trip would leave it taken.
    locked, claimed, jit = _claim(report_id, started)
    if not locked:
        return None
    try:
        report = _report_read(report_id)
        if not claimed:  # ready (under the lock, anything else was claimed)
            return report
        rows = Report.objects.filter(pk=report_id)
        last_write = time.monotonic()

        def on_step(progress: int, label: str) -> None:
            # The page polls every 2 s: a step reached sooner after the last write is never seen, so a fast
            # build writes only its start and its end.
            nonlocal last_write
            if time.monotonic() - last_write < PROGRESS_WRITE_INTERVAL:
                return
            rows.update(progress=progress, step=label, updated_at=timezone.now())
            last_write = time.monotonic()

        try:
            data = BUILDERS[report.kind](
                organization=report.organization,
                period_start=report.period_start,
                period_end=report.period_end,
                project=report.project,
                on_step=on_step,
            )
        except Exception as exc:
            rows.update(state=ReportState.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], step="Failed")
            raise
        now = timezone.now()
        ready = {"state": ReportState.READY, "data": data, "generated_at": now, "progress": 100, "step": "Ready"}
        # The ready state and the webhook endpoints' look-up go in one round trip (and BEGIN with them).
        with transaction.atomic(), pipeline():
            _ready_write(report_id, ready)
            # The row now holds exactly this (no re-read): the lock keeps every other writer out meanwhile.
            for name, value in (ready | {"error": "", "revised_at": None, "updated_at": now}).items():
                setattr(report, name, value)
            emit(report.organization, EventType.REPORT_READY, report)
        return report
    finally:
        _unlock(report_id, jit)


# Which member choice (projects.NotificationSubscription) each kind of report's digest obeys.
DIGEST_KINDS = {ReportKind.STATUS: NotificationKind.STATUS_DIGEST, ReportKind.RISK: NotificationKind.RISK_DIGEST}


def report_digest_send(*, report_id: int) -> MailCounts:
    """E-mail a ready report's digest to its organization's managers and admins, once; return what went.

    Members who unsubscribed from its kind of digest are left out.

    Only reports with `notify` (the scheduler's, and on-demand ones asked so) have a digest. The
    claim (a conditional UPDATE of `digest_sent_at`) and the sending share one transaction: a
    concurrent run waits on the row and then finds it claimed; a mail server that cannot be reached
    rolls the claim back (the hourly job retries). A message that fails for one recipient is logged
    and counted, the others still go, and the digest is not sent again.
    """
    with transaction.atomic():
        claimed = Report.objects.filter(
            pk=report_id, state=ReportState.READY, notify=True, digest_sent_at__isnull=True
        ).update(digest_sent_at=timezone.now())
        if not claimed:
            return MailCounts()
        report = Report.objects.select_related("organization", "project").get(pk=report_id)
        unsubscribed = notification_unsubscribed(organization=report.organization, kind=DIGEST_KINDS[report.kind])
        recipients = list(
            Membership.objects.filter(organization=report.organization, role__in=[Role.MANAGER, Role.ADMIN])
            .exclude(user__email="")
            .exclude(user__in=unsubscribed)
            .filter(user__is_active=True)
            .order_by("user__email")
            .values_list("user__email", "user_id")
            .distinct()
        )
        period = date_range(report.period_start, report.period_end, report.organization)
        context = {
            "report": report,
            "title": f"{report.get_kind_display()} of {report.project or report.organization}, {period}",
            "headline": report_headline(report),
            # Reports stored before budgets had thresholds have none.
            "crossings": report.data.get("budget_thresholds_crossed", []),
            "link": absolute_link(report, f"/api/v1/reports/{report.pk}/"),
        }
        subject = subject_line(f"[{report.organization.name}]", f"{context['title']} ready")
        text = render_to_string("ops/email/report_digest.txt", context)
        html = render_to_string("ops/email/report_digest.html", context)

        def send(recipient: tuple[str, int], connection: BaseEmailBackend) -> bool:
            message = EmailMultiAlternatives(
                subject, text, settings.DEFAULT_FROM_EMAIL, [recipient[0]], connection=connection
            )
            message.attach_alternative(html, "text/html")
            return bool(message.send())

        return mail_each(
            recipients, send, kind="report_digest", describe=lambda r: f"report {report_id} to user {r[1]}"
        )


def reports_schedule(*, now: dt.datetime | None = None) -> list[Report]:
    """Request every missing weekly report and re-enqueue stuck ones; return the reports enqueued.

    For each organization, the last REPORT_CATCH_UP_WEEKS weeks that ended (Monday–Sunday in its
    timezone, not before it existed) get a status and a risk report. A report pending too long,
    running longer than the task time limit, or ready without its digest is enqueued again.
    """
    now = now or timezone.now()
    weeks = settings.REPORT_CATCH_UP_WEEKS
    wanted: list[tuple[Organization, dt.date]] = []
    for organization in Organization.objects.order_by("pk"):
        last_start, _ = week_before(organization=organization, now=now)
        created = timezone.localdate(organization.created_at, organization.tzinfo)
        for n in range(weeks):
            start = last_start - dt.timedelta(days=7 * n)
            if start + dt.timedelta(days=6) < created:
                break
            wanted.append((organization, start))
    existing = set()
    if wanted:
        earliest = min(start for _, start in wanted)
        # A week someone asked for without the digest is requested again, which turns its digest on.
        existing = set(
            Report.objects.filter(project=None, period_start__gte=earliest, notify=True).values_list(
                "organization_id", "kind", "period_start", "period_end"
            )
        )
    enqueued = []
    for organization, start in wanted:
        for kind in ReportKind.values:
            end = start + dt.timedelta(days=6)
            if (organization.pk, kind, start, end) not in existing:
                enqueued.append(
                    report_request(
                        organization=organization, kind=kind, period_start=start, period_end=end, by=None, notify=True
                    )
                )
    stuck = Report.objects.filter(
        Q(state=ReportState.PENDING, updated_at__lt=now - dt.timedelta(minutes=settings.REPORT_PENDING_REQUEUE_MINUTES))
        | Q(state=ReportState.RUNNING, started_at__lt=now - dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT))
        | Q(
            state=ReportState.READY,
            notify=True,
            digest_sent_at__isnull=True,
            generated_at__lt=now - dt.timedelta(minutes=settings.REPORT_PENDING_REQUEUE_MINUTES),
        )
    )
    for report in stuck:
        logger.warning("Re-enqueueing report %s (%s since %s)", report.pk, report.state, report.updated_at)
        _enqueue_build(report.pk)
        enqueued.append(report)
    return enqueued
