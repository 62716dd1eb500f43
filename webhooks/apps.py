from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Signed webhooks (Standard Webhooks): endpoints, the outbox of events, deliveries and their log."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "webhooks"
