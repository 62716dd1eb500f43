"""The Celery app, configured from Django settings (the `CELERY_` prefix)."""

import os

from celery import Celery
from celery.schedules import crontab

import tracker.logging  # noqa: F401 - connects the signal handlers: task logs and metrics, request ids

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracker.settings")

app = Celery("tracker")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    # A task is acknowledged only once it finished: a worker killed mid-task means redelivery,
    # which every task tolerates because each one is idempotent.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    # Publishing (a web request enqueueing a report) gives up within seconds when the broker is down,
    # instead of hanging the request: 2 s per connection attempt, 3 attempts 0.2–0.5 s apart.
    broker_connection_timeout=2,
    task_publish_retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.3, "interval_max": 0.5},
    timezone="UTC",
)
app.autodiscover_tasks()

# Every periodic job, in one place. Beat runs in UTC; the jobs compute each organization's local
# dates themselves, so running hourly means "shortly after local midnight" everywhere.
app.conf.beat_schedule = {
    # Hourly at :05. Each organization whose week (Monday–Sunday, its timezone) has ended gets that
    # week's status and risk reports, plus any of the last REPORT_CATCH_UP_WEEKS weeks it missed;
    # reports stuck pending/running (longer than the task time limit) are re-enqueued.
    "reports-weekly": {"task": "ops.reports_schedule", "schedule": crontab(minute=5)},
    # Hourly at :15. Trend snapshot of each organization's local yesterday, taken once that day is over.
    "snapshots-daily": {"task": "ops.snapshots_schedule", "schedule": crontab(minute=15)},
    # Daily at 05:00 UTC. Risk signals, one task per organization.
    "risk-signals-daily": {"task": "ops.risk_signals_schedule", "schedule": crontab(minute=0, hour=5)},
    # Daily at 07:00 UTC. Review reminders (7 days, 1 day before, overdue), one task per organization.
    "review-reminders-daily": {"task": "ops.review_reminders_schedule", "schedule": crontab(minute=0, hour=7)},
    # Daily at 06:30 UTC. A week's notice to owners of personal API tokens about to expire, once per token.
    "token-expiry-warnings": {"task": "ops.api_token_expiry_warnings_send", "schedule": crontab(minute=30, hour=6)},
    # Every 15 s. Webhook deliveries whose retry is due, or whose attempt's worker died, are enqueued again.
    "webhook-deliveries-due": {"task": "webhooks.deliveries_due", "schedule": 15.0},
    # Daily at 04:30 UTC. OTLP span keys older than OTLP_SPAN_KEY_RETENTION_DAYS go.
    "otlp-span-keys-purge": {"task": "ops.otlp_span_keys_purge", "schedule": crontab(minute=30, hour=4)},
    # Hourly at :45. API idempotency keys claimed more than API_IDEMPOTENCY_KEY_HOURS ago go.
    "idempotency-keys-purge": {"task": "projects.idempotency_keys_purge", "schedule": crontab(minute=45)},
}


@app.task(name="tracker.ping")
def ping() -> str:
    """Answer "pong": proves a worker consumes from the broker."""
    return "pong"
