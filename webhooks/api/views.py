"""API of webhook endpoints (organization admins): thin, the services decide."""

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from projects.models import Membership, Organization, Role
from tracker.api_views import ScopedViewSet
from tracker.exceptions import NotPermitted, ValidationFailed
from webhooks import selectors, services
from webhooks.api.serializers import (
    NoInputSerializer,
    WebhookDeliverySerializer,
    WebhookEndpointCreatedSerializer,
    WebhookEndpointCreateSerializer,
    WebhookEndpointSerializer,
    WebhookSecretSerializer,
)
from webhooks.models import WebhookEndpoint, WebhookSecret

ADMINS_ONLY = "Webhook endpoints need the admin role in their organization."


@extend_schema_view(
    list=extend_schema(summary="List the webhook endpoints of the organizations you administer"),
    create=extend_schema(
        summary="Register a webhook endpoint (admins); the answer carries its secret, shown once",
        responses={201: WebhookEndpointCreatedSerializer},
    ),
    update=extend_schema(summary="Change an endpoint's URL, events or description (admins)"),
    partial_update=extend_schema(summary="Change an endpoint's URL, events or description (admins)"),
    destroy=extend_schema(summary="Delete an endpoint and its delivery log (admins)"),
    rotate=extend_schema(
        summary="Issue a new secret, shown once; the old one keeps signing during the grace period",
        request=None,
        responses={200: WebhookSecretSerializer},
    ),
    pause=extend_schema(summary="Pause deliveries to the endpoint", request=None),
    resume=extend_schema(summary="Resume a paused or disabled endpoint; pending deliveries go now", request=None),
    deliveries=extend_schema(
        summary="The endpoint's delivery log, newest first", responses=WebhookDeliverySerializer(many=True)
    ),
    redeliver=extend_schema(
        summary="Send a delivery again now, with the same webhook-id", request=None, responses=WebhookDeliverySerializer
    ),
)
class WebhookEndpointViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    ScopedViewSet,
):
    """Where the tracker pushes signed events (docs/webhooks.md). Other members see nothing here (403)."""

    selector = selectors.webhook_endpoint_list
    serializer_class = WebhookEndpointSerializer
    create_serializer_class = WebhookEndpointCreateSerializer
    search_fields = ["url", "description"]
    ordering_fields = ["created_at", "url", "state"]
    service_tokens_refused = True
    idempotency_withheld_fields = frozenset({"secret"})  # shown once: a replayed create or rotation omits it

    def get_queryset(self) -> QuerySet[WebhookEndpoint]:
        queryset = super().get_queryset()
        if self.action == "list" and not getattr(self, "swagger_fake_view", False):
            administered = selectors.webhook_organizations_administered(user=self.request.user)
            if not administered.exists():
                raise NotPermitted(ADMINS_ONLY)
            queryset = queryset.filter(organization__in=administered)
        return queryset

    def get_object(self) -> WebhookEndpoint:
        endpoint = super().get_object()
        if not Membership.objects.filter(
            user=self.request.user, organization=endpoint.organization, role=Role.ADMIN
        ).exists():
            raise NotPermitted(ADMINS_ONLY)
        return endpoint

    def _organization(self, chosen: Organization | None) -> Organization:
        if chosen is not None:
            return chosen
        administered = list(selectors.webhook_organizations_administered(user=self.request.user)[:2])
        if len(administered) != 1:
            raise ValidationFailed(
                "Say which organization the endpoint is for.", errors={"organization": ["This field is required."]}
            )
        return administered[0]

    def create(self, request: Request, *args, **kwargs) -> Response:
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        endpoint, secret = services.webhook_endpoint_create(
            organization=self._organization(data.pop("organization", None)), by=request.user, **data
        )
        endpoint.secret = secret
        return Response(WebhookEndpointCreatedSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        serializer.instance = services.webhook_endpoint_update(
            endpoint=serializer.instance, by=self.request.user, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.webhook_endpoint_delete(endpoint=instance, by=self.request.user)

    @action(detail=True, methods=["post"])
    def rotate(self, request: Request, pk: str) -> Response:
        NoInputSerializer(data=request.data).is_valid(raise_exception=True)
        endpoint = self.get_object()
        secret = services.webhook_endpoint_secret_rotate(endpoint=endpoint, by=request.user)
        previous = WebhookSecret.objects.filter(endpoint=endpoint).exclude(secret=secret).order_by("-expires_at")
        until = previous.values_list("expires_at", flat=True).first()
        return Response(WebhookSecretSerializer({"secret": secret, "previous_valid_until": until}).data)

    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str) -> Response:
        NoInputSerializer(data=request.data).is_valid(raise_exception=True)
        endpoint = services.webhook_endpoint_pause(endpoint=self.get_object(), by=request.user)
        return Response(WebhookEndpointSerializer(endpoint).data)

    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str) -> Response:
        NoInputSerializer(data=request.data).is_valid(raise_exception=True)
        endpoint = services.webhook_endpoint_resume(endpoint=self.get_object(), by=request.user)
        return Response(WebhookEndpointSerializer(endpoint).data)

    @action(detail=True, methods=["get"], ordering_fields=[], search_fields=[])
    def deliveries(self, request: Request, pk: str) -> Response:
        page = self.paginate_queryset(selectors.webhook_delivery_list(endpoint=self.get_object()))
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)

    @action(detail=True, methods=["post"], url_path=r"deliveries/(?P<delivery_id>[0-9]+)/redeliver")
    def redeliver(self, request: Request, pk: str, delivery_id: str) -> Response:
        NoInputSerializer(data=request.data).is_valid(raise_exception=True)
        endpoint = self.get_object()
        delivery = get_object_or_404(selectors.webhook_delivery_list(endpoint=endpoint), pk=delivery_id)
        delivery = services.webhook_delivery_redeliver(delivery=delivery, by=request.user)
        return Response(
            WebhookDeliverySerializer(selectors.webhook_delivery_list(endpoint=endpoint).get(pk=delivery.pk)).data
        )
