"""Webhooks: endpoints (organization admins) and delivery of the outbox's events (webhooks/outbox.py).

Each attempt claims its delivery for a lease; the answer is recorded and the next attempt scheduled
in the database (WEBHOOK_RETRY_BASE_SECONDS × 4^(n-1)), never as a Celery countdown; beat's
`webhook_deliveries_due` enqueues what is due, what the broker lost and what a dead worker held.
"""

import datetime as dt
import json
import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from projects import audit
from projects.models import Membership, Organization, Role
from projects.services import membership_require
from projects.services_helpers import model_update
from tracker import formatting
from tracker.exceptions import ValidationFailed, validate_model
from tracker.mail import subject_line
from webhooks import signing, transport
from webhooks.models import (
    DeliveryStatus,
    EndpointKind,
    EndpointState,
    EventType,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookSecret,
)
from webhooks.outbox import enqueue_on_commit

logger = logging.getLogger(__name__)

ENDPOINT_FIELDS = {"url", "events", "description"}


# --- Endpoints (organization admins) ------------------------------------------------------------


def _endpoint_validate(endpoint: WebhookEndpoint) -> None:
    errors: dict[str, list[str]] = {}
    try:
        transport.url_check(endpoint.url)
    except transport.AddressRefused as exc:
        errors["url"] = [str(exc)]
    chosen = endpoint.events
    if not isinstance(chosen, list) or not chosen or any(e not in EventType.values for e in chosen):
        errors["events"] = [f"A non-empty list of: {', '.join(EventType.values)}."]
    if errors:
        raise ValidationFailed(next(iter(errors.values()))[0], errors=errors)
    endpoint.events = sorted(set(chosen))
    validate_model(endpoint, exclude=["organization", "created_by"])


@transaction.atomic
def webhook_endpoint_create(
    *,
    organization: Organization,
    by: AbstractBaseUser,
    url: str,
    events: list[str],
    kind: str = EndpointKind.STANDARD,
    description: str = "",
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; return it and its signing secret, which is shown this once."""
    membership_require(user=by, organization=organization, role=Role.ADMIN)
    Organization.objects.select_for_update().filter(pk=organization.pk).first()  # the cap holds under races
    limit = settings.WEBHOOK_ENDPOINTS_PER_ORGANIZATION
    if WebhookEndpoint.objects.filter(organization=organization).count() >= limit:
        raise ValidationFailed(f"At most {limit} endpoints per organization.", errors={"url": ["Too many endpoints."]})
    endpoint = WebhookEndpoint(
        organization=organization, url=url, events=events, kind=kind, description=description, created_by=by
    )
    _endpoint_validate(endpoint)
    endpoint.save()
    audit.record_created(endpoint)
    secret = WebhookSecret.objects.create(endpoint=endpoint, secret=signing.secret_generate())
    return endpoint, secret.secret


@transaction.atomic
def webhook_endpoint_update(*, endpoint: WebhookEndpoint, by: AbstractBaseUser, **changes: Any) -> WebhookEndpoint:
    """Change an endpoint's URL, events or description."""
    membership_require(user=by, organization=endpoint.organization, role=Role.ADMIN)
    model_update(instance=endpoint, data=changes, fields=ENDPOINT_FIELDS, validate=_endpoint_validate)
    return endpoint


@transaction.atomic
def webhook_endpoint_secret_rotate(*, endpoint: WebhookEndpoint, by: AbstractBaseUser) -> str:
    """Issue a new secret, shown this once; the current ones keep signing for WEBHOOK_SECRET_GRACE_HOURS."""
    membership_require(user=by, organization=endpoint.organization, role=Role.ADMIN)
    now = timezone.now()
    grace_end = now + dt.timedelta(hours=settings.WEBHOOK_SECRET_GRACE_HOURS)
    WebhookSecret.objects.filter(endpoint=endpoint).filter(Q(expires_at=None) | Q(expires_at__gt=grace_end)).update(
        expires_at=grace_end
    )
    WebhookSecret.objects.filter(endpoint=endpoint, expires_at__lte=now).delete()
    secret = WebhookSecret.objects.create(endpoint=endpoint, secret=signing.secret_generate(), created_at=now)
    # The secret itself never goes into the history, only that it changed and until when the old one signs.
    until = formatting.date(grace_end, endpoint.organization)
    audit.record_done(endpoint, what="secret", detail=f"rotated; the previous one signs until {until}")
    return secret.secret


@transaction.atomic
def webhook_endpoint_pause(*, endpoint: WebhookEndpoint, by: AbstractBaseUser) -> WebhookEndpoint:
    """Stop deliveries: new events skip the endpoint, pending deliveries wait until it is resumed."""
    membership_require(user=by, organization=endpoint.organization, role=Role.ADMIN)
    before = audit.snapshot(endpoint)
    endpoint.state = EndpointState.PAUSED
    endpoint.save(update_fields=["state", "updated_at"])
    audit.record_changed(endpoint, before=before)
    return endpoint


@transaction.atomic
def webhook_endpoint_resume(*, endpoint: WebhookEndpoint, by: AbstractBaseUser) -> WebhookEndpoint:
    """Deliver again (also after a disable): the failure count restarts and pending deliveries go now."""
    membership_require(user=by, organization=endpoint.organization, role=Role.ADMIN)
    before = audit.snapshot(endpoint)
    endpoint.state, endpoint.consecutive_failures = EndpointState.ACTIVE, 0
    endpoint.save(update_fields=["state", "consecutive_failures", "updated_at"])
    audit.record_changed(endpoint, before=before)
    pending = WebhookDelivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.PENDING)
    now = timezone.now()
    pending.update(next_attempt_at=now, enqueued_at=now, updated_at=now)
    enqueue_on_commit(list(pending.values_list("pk", flat=True)))
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, by: AbstractBaseUser) -> None:
    membership_require(user=by, organization=endpoint.organization, role=Role.ADMIN)
    audit.record_deleted(endpoint)
    endpoint.delete()


@transaction.atomic
def webhook_delivery_redeliver(*, delivery: WebhookDelivery, by: AbstractBaseUser) -> WebhookDelivery:
    """Send a delivery again, now, with the same webhook-id; it gets a fresh retry schedule."""
    membership_require(user=by, organization=delivery.endpoint.organization, role=Role.ADMIN)
    now = timezone.now()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.PENDING,
        retries=0,
        next_attempt_at=now,
        enqueued_at=now,
        locked_until=None,
        updated_at=now,
    )
    enqueue_on_commit([delivery.pk])
    delivery.refresh_from_db()
    detail = f"delivery {delivery.pk} of event {delivery.event_id}"
    audit.record_done(delivery.endpoint, what="redelivered", detail=detail)
    return delivery


# --- Delivery -----------------------------------------------------------------------------------


def _lease() -> dt.timedelta:
    """How long an attempt holds its delivery: longer than any attempt lasts (connect, then read)."""
    return dt.timedelta(seconds=3 * settings.WEBHOOK_TIMEOUT_SECONDS + 10)


def retry_delay(retries: int) -> dt.timedelta:
    """Return the wait after the `retries`-th failed attempt (1, 2, …) of the schedule."""
    return dt.timedelta(seconds=settings.WEBHOOK_RETRY_BASE_SECONDS * 4 ** (retries - 1))


def _body(delivery: WebhookDelivery) -> bytes:
    event = delivery.event
    if delivery.endpoint.kind == EndpointKind.SLACK:
        # Slack's mrkdwn: &, < and > of the text are escaped, the link is <url|label>.
        text = event.summary.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return json.dumps({"text": f"{text}\n<{event.link}|Open in LLMOps Tracker>"}).encode()
    return json.dumps(event.payload, separators=(",", ":")).encode()


def webhook_delivery_attempt(*, delivery_id: int) -> WebhookAttempt | None:
    """Make one attempt of a due delivery; return it, or None when it is not due (done, held, not yet).

    Safe to run twice at once or again after a crash: the claim lets one attempt through per lease.
    """
    now = timezone.now()
    claimed = (
        WebhookDelivery.objects.filter(
            pk=delivery_id,
            status=DeliveryStatus.PENDING,
            next_attempt_at__lte=now,
            endpoint__state=EndpointState.ACTIVE,
        )
        .filter(Q(locked_until=None) | Q(locked_until__lt=now))
        .update(locked_until=now + _lease(), attempts=F("attempts") + 1, retries=F("retries") + 1)
    )
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("event", "endpoint__organization").get(pk=delivery_id)
    body = _body(delivery)
    request_headers = {}
    if delivery.endpoint.kind == EndpointKind.STANDARD:
        valid = WebhookSecret.objects.filter(endpoint=delivery.endpoint).filter(
            Q(expires_at=None) | Q(expires_at__gt=now)
        )
        request_headers = signing.headers(
            secrets_=list(valid.values_list("secret", flat=True)),
            msg_id=delivery.event.msg_id,
            timestamp=int(now.timestamp()),
            body=body,
        )
    answer = transport.post(delivery.endpoint.url, body=body, headers=request_headers)
    return _attempt_record(delivery, answer, at=now)


@transaction.atomic
def _attempt_record(delivery: WebhookDelivery, answer: transport.Answer, *, at: dt.datetime) -> WebhookAttempt:
    attempt = WebhookAttempt.objects.create(
        delivery=delivery,
        number=delivery.attempts,
        at=at,
        duration_ms=answer.duration_ms,
        response_code=answer.status,
        response_excerpt=answer.body[:1000].decode(errors="replace"),
        error=answer.error,
        succeeded=answer.ok,
    )
    now = timezone.now()
    rows = WebhookDelivery.objects.filter(pk=delivery.pk)
    endpoint_rows = WebhookEndpoint.objects.filter(pk=delivery.endpoint_id)
    if answer.ok:
        rows.update(status=DeliveryStatus.DELIVERED, delivered_at=now, locked_until=None, updated_at=now)
        endpoint_rows.filter(consecutive_failures__gt=0).update(consecutive_failures=0)
        return attempt
    if delivery.retries >= settings.WEBHOOK_MAX_ATTEMPTS:
        rows.update(status=DeliveryStatus.FAILED, next_attempt_at=None, locked_until=None, updated_at=now)
    else:
        rows.update(next_attempt_at=now + retry_delay(delivery.retries), locked_until=None, updated_at=now)
    endpoint_rows.update(consecutive_failures=F("consecutive_failures") + 1)
    disabled = endpoint_rows.filter(
        state=EndpointState.ACTIVE, consecutive_failures__gte=settings.WEBHOOK_DISABLE_AFTER_FAILURES
    ).update(state=EndpointState.DISABLED, updated_at=now)
    if disabled:
        _disabled_mail(delivery.endpoint, answer)
    return attempt


def _disabled_mail(endpoint: WebhookEndpoint, answer: transport.Answer) -> None:
    """Tell the organization's admins, once the disable is committed."""
    admins = list(
        Membership.objects.filter(organization=endpoint.organization, role=Role.ADMIN, user__is_active=True)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )
    if not admins:
        return
    context = {
        "endpoint": endpoint,
        "failures": settings.WEBHOOK_DISABLE_AFTER_FAILURES,
        "last": answer.error or f"HTTP {answer.status}",
        "link": settings.SITE_URL.rstrip("/") + reverse("webhooks:endpoints"),
    }
    subject = subject_line("Webhook endpoint disabled in", endpoint.organization.name)
    body = render_to_string("webhooks/email/endpoint_disabled.txt", context)
    transaction.on_commit(
        lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, admins, fail_silently=False), robust=True
    )


# A message sent this recently is the broker's to deliver; older and still due, it was lost.
ENQUEUED_HOLD = dt.timedelta(seconds=60)


@transaction.atomic
def webhook_deliveries_due(*, now: dt.datetime | None = None, limit: int = 1000) -> list[int]:
    """Enqueue the deliveries whose attempt is due and not held: retries, messages the broker lost,
    attempts whose worker died (their lease lapsed). Return their ids."""
    now = now or timezone.now()
    due = list(
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lte=now, endpoint__state=EndpointState.ACTIVE
        )
        .filter(Q(locked_until=None) | Q(locked_until__lt=now))
        .filter(Q(enqueued_at=None) | Q(enqueued_at__lt=now - ENQUEUED_HOLD) | Q(enqueued_at__lt=F("next_attempt_at")))
        .select_for_update(skip_locked=True, of=("self",))
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    WebhookDelivery.objects.filter(pk__in=due).update(enqueued_at=now)
    enqueue_on_commit(due)
    return due
