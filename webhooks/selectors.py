"""Reads of webhooks: endpoints and deliveries, scoped to the caller's organizations."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Prefetch, QuerySet

from projects.models import Membership, Organization, Role
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

# Attempts shown per delivery in its log (the newest); the count of all of them is `attempts`.
ATTEMPTS_SHOWN = 10


def webhook_organizations_administered(*, user: AbstractBaseUser) -> QuerySet[Organization]:
    if not user.is_authenticated:
        return Organization.objects.none()
    return Organization.objects.filter(
        pk__in=Membership.objects.filter(user=user, role=Role.ADMIN).values("organization")
    )


def webhook_endpoint_list(*, user: AbstractBaseUser) -> QuerySet[WebhookEndpoint]:
    """Return the endpoints of every organization the user belongs to (managing them needs the admin role)."""
    if not user.is_authenticated:
        return WebhookEndpoint.objects.none()
    member_of = Membership.objects.filter(user=user).values("organization")
    return WebhookEndpoint.objects.filter(organization__in=member_of).select_related("organization")


def webhook_delivery_list(*, endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    """Return an endpoint's deliveries, newest first, each with its event and its latest attempts."""
    return (
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .select_related("event")
        .prefetch_related(Prefetch("attempt_log", queryset=WebhookAttempt.objects.order_by("-number")))
    )
