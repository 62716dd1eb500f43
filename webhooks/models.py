"""Webhook endpoints of an organization, their secrets, the outbox of events and each delivery's log."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from projects.models import Organization
from tracker.models import TimeStampedModel


class EventType(models.TextChoices):
    RISK_CREATED = "risk.created", "Risk created"
    RISK_UPDATED = "risk.updated", "Risk updated"
    RISK_ESCALATED = "risk.escalated", "Risk escalated"
    RISK_ACCEPTED = "risk.accepted", "Risk accepted"
    RISK_CLOSED = "risk.closed", "Risk closed"
    SIGNAL_RAISED = "signal.raised", "Signal raised"
    SIGNAL_CLEARED = "signal.cleared", "Signal cleared"
    BUDGET_THRESHOLD_CROSSED = "budget.threshold_crossed", "Budget threshold crossed"
    PROJECT_STAGE_CHANGED = "project.stage_changed", "Project stage changed"
    REPORT_READY = "report.ready", "Report ready"
    STATUS_UPDATE_CREATED = "status_update.created", "Status update created"


class EndpointKind(models.TextChoices):
    STANDARD = "standard", "Standard Webhooks (signed JSON event)"
    SLACK = "slack", "Slack incoming webhook (readable message)"


class EndpointState(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    DISABLED = "disabled", "Disabled after failures"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class WebhookEndpoint(TimeStampedModel):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    kind = models.CharField(max_length=16, choices=EndpointKind.choices, default=EndpointKind.STANDARD)
    description = models.CharField(max_length=300, blank=True)
    # Event types (EventType values) the endpoint receives.
    events = models.JSONField(default=list)
    state = models.CharField(max_length=16, choices=EndpointState.choices, default=EndpointState.ACTIVE)
    consecutive_failures = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=EndpointKind.values), name="webhook_endpoint_kind_valid"),
            models.CheckConstraint(condition=Q(state__in=EndpointState.values), name="webhook_endpoint_state_valid"),
            models.CheckConstraint(
                condition=Q(url__startswith="http://") | Q(url__startswith="https://"),
                name="webhook_endpoint_url_http",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.url} ({self.organization})"

    def event_labels(self) -> list[str]:
        return [EventType(e).label for e in self.events if e in EventType.values]


class WebhookSecret(models.Model):
    """A signing secret (`whsec_…`); after a rotation the old one signs too until `expires_at`."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="secrets")
    secret = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"secret {self.pk} of endpoint {self.endpoint_id}"


class WebhookEvent(models.Model):
    """The outbox: one row per event, written in the transaction of the change it tells about."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="webhook_events")
    msg_id = models.CharField(max_length=40, unique=True, help_text="webhook-id: the same on every attempt.")
    type = models.CharField(max_length=40, choices=EventType.choices)
    # The body as sent: {"type", "timestamp", "data"}; `data` is the object as the API returns it.
    payload = models.JSONField()
    summary = models.CharField(max_length=500, help_text="One line for people (the Slack message).")
    link = models.CharField(max_length=2000, blank=True)
    # Events that happen once (a budget threshold crossed in a period) carry a key; one event per key.
    dedupe_key = models.CharField(max_length=200, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "dedupe_key"], name="webhook_event_once_per_key"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.msg_id}"


class WebhookDelivery(TimeStampedModel):
    """One event to one endpoint; its retry schedule lives here, driven by beat."""

    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0, help_text="Attempts made, ever.")
    retries = models.PositiveIntegerField(default=0, help_text="Attempts of this schedule (a redelivery restarts it).")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # When a message was last sent for it: the beat sweep leaves fresh ones to the broker.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    # An attempt in flight holds the delivery until then; a worker killed mid-attempt lets it lapse.
    locked_until = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="webhook_delivery_one_per_endpoint"),
            models.CheckConstraint(condition=Q(status__in=DeliveryStatus.values), name="webhook_delivery_status_valid"),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], name="webhook_delivery_due", condition=Q(status=DeliveryStatus.PENDING)
            ),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} of {self.event_id} to {self.endpoint_id}"


class WebhookAttempt(models.Model):
    """The delivery log: what one attempt sent back."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    response_code = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.CharField(max_length=500, blank=True)
    succeeded = models.BooleanField()

    class Meta:
        ordering = ["-at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="webhook_attempt_number_unique"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}"
