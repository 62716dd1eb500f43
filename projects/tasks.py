"""Celery tasks of the projects app: thin wrappers calling services."""

from celery import shared_task

from projects.auth import password_reset_mail_send
from projects.idempotency import idempotency_keys_purge


@shared_task(name="projects.password_reset_mail_send")
def password_reset_mail_send_task(email: str, domain: str, use_https: bool) -> None:
    password_reset_mail_send(email=email, domain=domain, use_https=use_https)


@shared_task(name="projects.idempotency_keys_purge", acks_late=True, reject_on_worker_lost=True)
def idempotency_keys_purge_task() -> int:
    """Delete the API idempotency keys past API_IDEMPOTENCY_KEY_HOURS; return how many went."""
    return idempotency_keys_purge()
