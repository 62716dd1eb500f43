"""Celery tasks of webhooks: thin, by id. The schedule lives in the database, so no task retries a delivery.

Both are idempotent: an attempt claims its delivery first (a duplicate message finds it held or done).
"""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from webhooks.services import webhook_deliveries_due, webhook_delivery_attempt

RELIABLE = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "max_retries": 3,
}


@shared_task(name="webhooks.deliver", **RELIABLE)
def deliver_task(delivery_id: int) -> None:
    """Make one attempt of the delivery if it is due."""
    webhook_delivery_attempt(delivery_id=delivery_id)


@shared_task(name="webhooks.deliveries_due", **RELIABLE)
def deliveries_due_task() -> int:
    """Enqueue due retries and deliveries the broker lost (beat, every 15 s)."""
    return len(webhook_deliveries_due())
