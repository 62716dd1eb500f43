"""The outbox: `emit`, which the services that change things call inside their transaction.

It writes the event and one delivery per subscribed endpoint in the caller's transaction, and
enqueues the deliveries by task name once it commits: a rolled-back change sends nothing, a
committed one is never lost (the beat sweep finds what the broker dropped). Imported by projects and
ops services, so it depends on models only.
"""

import functools
import json
import uuid
from collections.abc import Iterable
from typing import Any

from celery import current_app
from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from projects.models import Organization
from tracker.db import CompiledValues, instance_from_values
from webhooks import events
from webhooks.models import EndpointState, EventType, WebhookDelivery, WebhookEndpoint, WebhookEvent

DELIVER_TASK = "webhooks.deliver"


@functools.cache
def _endpoints_statement() -> CompiledValues:
    probe = -7_301_051  # no organization's id
    endpoints = WebhookEndpoint.objects.filter(organization_id=probe, state=EndpointState.ACTIVE)
    return CompiledValues(endpoints.values("id", "events"), {"organization_id": probe})


def _subscribed(organization: Organization, type: str) -> list[WebhookEndpoint]:
    # Every change a service makes asks this, most often to hear "none": the statement is compiled once.
    rows = _endpoints_statement()(organization_id=organization.pk)
    return [instance_from_values(WebhookEndpoint, row) for row in rows if type in row["events"]]


def emit(
    organization: Organization,
    type: str,
    instance: Model,
    *,
    extra: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
) -> WebhookEvent | None:
    """Write event `type` about `instance` for the organization's subscribed endpoints; call it inside the
    change's transaction. Return the event, or None when no active endpoint wants it (nothing is written).

    `extra` adds fields to `data`; with `dedupe_key` the event is written once per key, ever.
    """
    written = emit_many(organization, type, [instance], extra=extra, dedupe_key=dedupe_key)
    return written[0] if written else None


def emit_many(
    organization: Organization,
    type: str,
    instances: Iterable[Model],
    *,
    extra: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
) -> list[WebhookEvent]:
    """`emit` for several objects (a bulk path): one look-up of the endpoints, events and deliveries in bulk."""
    endpoints = _subscribed(organization, type)
    if not endpoints:
        return []
    if dedupe_key and WebhookEvent.objects.filter(organization=organization, dedupe_key=dedupe_key).exists():
        return []
    instances = list(instances)
    if not instances:
        return []
    now, extra = timezone.now(), extra or {}
    label = EventType(type).label
    added = json.loads(json.dumps(extra, default=str))
    data = events.shape_of(instances[0]).data(instances)
    written = WebhookEvent.objects.bulk_create(
        WebhookEvent(
            organization=organization,
            msg_id=f"msg_{uuid.uuid4().hex}",
            type=type,
            payload={"type": type, "timestamp": now.isoformat(), "data": fields | added},
            summary=events.summary(label, instance, extra),
            link=events.link(instance),
            dedupe_key=dedupe_key,
            created_at=now,
        )
        for instance, fields in zip(instances, data, strict=True)
    )
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(event=event, endpoint=endpoint, next_attempt_at=now, enqueued_at=now)
        for event in written
        for endpoint in endpoints
    )
    enqueue_on_commit([d.pk for d in deliveries])
    return written


def enqueue_on_commit(delivery_ids: list[int]) -> None:
    """Send one delivery task per id once the transaction commits (by name: services never import tasks)."""
    if not delivery_ids:
        return

    def send() -> None:
        for pk in delivery_ids:
            current_app.send_task(DELIVER_TASK, args=[pk])

    # robust: a broker that is down must not fail the committed change; the beat sweep sends them later.
    transaction.on_commit(send, robust=True)
