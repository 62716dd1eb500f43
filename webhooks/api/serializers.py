"""API shapes of webhook endpoints and their deliveries; the services validate."""

from rest_framework import serializers

from projects.api.serializers import organization_field
from tracker.api import StrictModelSerializer, StrictSerializer
from webhooks.models import EventType, WebhookAttempt, WebhookDelivery, WebhookEndpoint


class WebhookEndpointSerializer(StrictModelSerializer):
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.choices), min_length=1, max_length=20
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "organization",
            "url",
            "kind",
            "description",
            "events",
            "state",
            "consecutive_failures",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["organization", "kind", "state", "consecutive_failures", "created_at", "updated_at"]


class WebhookEndpointCreateSerializer(WebhookEndpointSerializer):
    organization = organization_field(
        required=False, help_text="Required when you administer more than one organization."
    )

    class Meta(WebhookEndpointSerializer.Meta):
        read_only_fields = ["state", "consecutive_failures", "created_at", "updated_at"]


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(
        required=False,
        help_text="The signing secret (whsec_…), shown this once (absent from an Idempotency-Key replay).",
    )

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]


class WebhookSecretSerializer(StrictSerializer):
    secret = serializers.CharField(
        required=False,
        help_text="The new signing secret, shown this once (absent from an Idempotency-Key replay); the old one"
        " signs too until…",
    )
    previous_valid_until = serializers.DateTimeField()


class WebhookAttemptSerializer(StrictModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["number", "at", "duration_ms", "response_code", "response_excerpt", "error", "succeeded"]
        read_only_fields = fields


class WebhookDeliverySerializer(StrictModelSerializer):
    webhook_id = serializers.CharField(source="event.msg_id", read_only=True, help_text="The same on every attempt.")
    event_type = serializers.CharField(source="event.type", read_only=True)
    summary = serializers.CharField(source="event.summary", read_only=True)
    attempt_log = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "webhook_id",
            "event_type",
            "summary",
            "status",
            "attempts",
            "next_attempt_at",
            "delivered_at",
            "created_at",
            "attempt_log",
        ]
        read_only_fields = fields


class NoInputSerializer(StrictSerializer):
    """Rotate, pause, resume and redeliver take no input: an empty body (anything in it is refused)."""
