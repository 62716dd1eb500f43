"""Web pages of webhooks for organization admins: register, rotate, pause, delete; the delivery log."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from projects.models import Role
from tracker.exceptions import DomainError
from tracker.web import form_apply_error, organization_required, role_required
from webhooks import selectors, services
from webhooks.forms import WebhookEndpointForm
from webhooks.models import WebhookEndpoint


def _endpoint(request: HttpRequest, pk: int) -> WebhookEndpoint:
    role_required(request, Role.ADMIN)
    return get_object_or_404(
        selectors.webhook_endpoint_list(user=request.user), organization=request.organization, pk=pk
    )


@never_cache  # the page may show a new secret, once
@organization_required
@require_http_methods(["GET", "POST"])
def endpoints(request: HttpRequest) -> HttpResponse:
    """The current organization's webhook endpoints (admins); a new one's secret is shown once."""
    role_required(request, Role.ADMIN)
    form = WebhookEndpointForm(request.POST or None)
    secret = ""
    if request.method == "POST" and form.is_valid():
        try:
            endpoint, secret = services.webhook_endpoint_create(
                organization=request.organization, by=request.user, **form.cleaned_data
            )
        except DomainError as exc:
            form_apply_error(form, exc)
        else:
            messages.success(
                request, f"Endpoint {endpoint.url} registered. Copy its secret now: it is not shown again."
            )
            form = WebhookEndpointForm()
    context = {
        "form": form,
        "endpoints": selectors.webhook_endpoint_list(user=request.user).filter(organization=request.organization),
        "secret": secret,
    }
    return render(request, "webhooks/endpoints.html", context)


@organization_required
@require_http_methods(["GET"])
def endpoint_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One endpoint and its delivery log, newest first."""
    endpoint = _endpoint(request, pk)
    page = Paginator(selectors.webhook_delivery_list(endpoint=endpoint), 25).get_page(request.GET.get("page"))
    return render(request, "webhooks/endpoint_detail.html", {"endpoint": endpoint, "page": page})


CHANGES = {
    "rotate": services.webhook_endpoint_secret_rotate,
    "pause": services.webhook_endpoint_pause,
    "resume": services.webhook_endpoint_resume,
    "delete": services.webhook_endpoint_delete,
}


@never_cache  # a rotation shows the new secret, once
@organization_required
@require_POST
def endpoint_change(request: HttpRequest, pk: int, change: str) -> HttpResponse:
    """Rotate the secret (shown once), pause, resume or delete an endpoint."""
    if change not in CHANGES:
        raise Http404
    endpoint = _endpoint(request, pk)
    result = CHANGES[change](endpoint=endpoint, by=request.user)
    if change == "rotate":
        messages.success(request, "New secret issued; the previous one keeps working during the grace period.")
        context = {
            "form": WebhookEndpointForm(),
            "endpoints": selectors.webhook_endpoint_list(user=request.user).filter(organization=request.organization),
            "secret": result,
        }
        return render(request, "webhooks/endpoints.html", context)
    done = {"pause": "paused", "resume": "resumed", "delete": "deleted"}[change]
    messages.success(request, f"Endpoint {endpoint.url} {done}.")
    return redirect("webhooks:endpoints")


@organization_required
@require_POST
def redeliver(request: HttpRequest, pk: int, delivery_id: int) -> HttpResponse:
    endpoint = _endpoint(request, pk)
    delivery = get_object_or_404(selectors.webhook_delivery_list(endpoint=endpoint), pk=delivery_id)
    services.webhook_delivery_redeliver(delivery=delivery, by=request.user)
    messages.success(request, f"Delivery of {delivery.event.type} queued again (same webhook-id).")
    return redirect("webhooks:endpoint-detail", pk=endpoint.pk)
