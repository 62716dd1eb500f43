"""Celery tasks of the projects app: thin wrappers calling services."""

from celery import shared_task

from projects.auth import password_reset_mail_send


@shared_task(name="projects.password_reset_mail_send")
def password_reset_mail_send_task(email: str, domain: str, use_https: bool) -> None:
    password_reset_mail_send(email=email, domain=domain, use_https=use_https)
