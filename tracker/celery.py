"""The Celery app, configured from Django settings (the `CELERY_` prefix)."""

import os

from celery import Celery

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
    timezone="UTC",
)
app.autodiscover_tasks()


@app.task(name="tracker.ping")
def ping() -> str:
    """Answer "pong": proves a worker consumes from the broker."""
    return "pong"
