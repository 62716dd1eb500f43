"""Celery tasks of the ops app: thin wrappers taking ids and dates, calling services.

Every task is idempotent (unique constraints, state checks, claims), so `acks_late` and
redelivery after a lost worker are safe. Transient database and broker errors are retried with
exponential backoff; anything else fails the task (and, for reports, the report, with its error).
"""

import datetime as dt

from celery import shared_task
from django.db import InterfaceError, OperationalError

from ops.imports.jobs import import_job_run
from ops.services.budgets import budget_thresholds_evaluate
from ops.services.otlp import otlp_span_keys_purge
from ops.services.reminders import review_reminders_send
from ops.services.reports import report_build, report_digest_send, reports_schedule
from ops.services.signals import risk_signals_evaluate
from ops.services.snapshots import snapshots_due, snapshots_take
from projects.models import Organization
from projects.services import api_token_expiry_warnings_send, organization_today

RELIABLE = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (OperationalError, InterfaceError, ConnectionError),
    "retry_backoff": True,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 5,
}


@shared_task(name="ops.report_build", bind=True, **RELIABLE)
def report_build_task(self, report_id: int) -> None:
    """Build the report, then send its digest (each step is a no-op when already done).

    A report whose build lock is taken is checked again later rather than dropped: the holder may
    be a pool process killed mid-build whose database session has not ended yet (its message is
    requeued at once), and then nobody else would build it.
    """
    report = report_build(report_id=report_id)
    if report is None:
        raise self.retry(countdown=min(2**self.request.retries * 5, 300))
    report_digest_send(report_id=report_id)


@shared_task(name="ops.reports_schedule", **RELIABLE)
def reports_schedule_task() -> int:
    """Request last week's reports (and missed ones) everywhere; re-enqueue stuck ones."""
    return len(reports_schedule())


@shared_task(name="ops.risk_signals_evaluate", **RELIABLE)
def risk_signals_evaluate_task(organization_id: int) -> None:
    organization = Organization.objects.get(pk=organization_id)
    risk_signals_evaluate(organization=organization)
    # The budget thresholds reached by today: each recorded and told once (ops/services/budgets.py).
    budget_thresholds_evaluate(organization=organization, as_of=organization_today(organization))


@shared_task(name="ops.risk_signals_schedule", **RELIABLE)
def risk_signals_schedule_task() -> None:
    """Fan out: one evaluation per organization."""
    for organization_id in Organization.objects.values_list("pk", flat=True):
        risk_signals_evaluate_task.delay(organization_id)


@shared_task(name="ops.review_reminders_send", **RELIABLE)
def review_reminders_send_task(organization_id: int) -> None:
    review_reminders_send(organization=Organization.objects.get(pk=organization_id))


@shared_task(name="ops.review_reminders_schedule", **RELIABLE)
def review_reminders_schedule_task() -> None:
    """Fan out: one reminder run per organization."""
    for organization_id in Organization.objects.values_list("pk", flat=True):
        review_reminders_send_task.delay(organization_id)


@shared_task(name="ops.snapshots_take", **RELIABLE)
def snapshots_take_task(organization_id: int, date: str) -> None:
    snapshots_take(organization=Organization.objects.get(pk=organization_id), date=dt.date.fromisoformat(date))


@shared_task(name="ops.snapshots_schedule", **RELIABLE)
def snapshots_schedule_task() -> None:
    """Fan out: each organization's snapshot of its local yesterday, once that day is over."""
    for organization, date in snapshots_due():
        snapshots_take_task.delay(organization.pk, date.isoformat())


@shared_task(name="ops.api_token_expiry_warnings_send", **RELIABLE)
def api_token_expiry_warnings_send_task() -> int:
    """E-mail owners whose personal API tokens expire within the week (each token once)."""
    return api_token_expiry_warnings_send()


@shared_task(name="ops.otlp_span_keys_purge", **RELIABLE)
def otlp_span_keys_purge_task() -> int:
    """Delete the OTLP span keys past their retention; return how many went."""
    return otlp_span_keys_purge()


@shared_task(name="ops.import_job_run", **RELIABLE)
def import_job_run_task(import_job_id: int) -> None:
    """Import a stored file (a job claimed once: a redelivered message finds it taken and does nothing)."""
    import_job_run(job_id=import_job_id)
