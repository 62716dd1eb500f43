"""Web helpers every app's views share: access decorators, htmx detection, domain errors on forms."""

from collections.abc import Callable

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from projects.middleware import has_role
from projects.models import Role
from tracker.exceptions import DomainError, NotPermitted


def organization_required(view: Callable) -> Callable:
    """Require a signed-in user with a current organization; without one, say how to get one."""

    @login_required
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.organization is None:
            return render(request, "projects/no_organization.html", status=403)
        return view(request, *args, **kwargs)

    wrapped.__name__, wrapped.__doc__ = view.__name__, view.__doc__
    return wrapped


def role_required(request: HttpRequest, role: Role) -> None:
    """Refuse with a 403 when the user's role in the current organization is below `role`."""
    if not has_role(request, role):
        raise PermissionDenied(f"This needs the {Role(role).label.lower()} role in {request.organization.name}.")


def is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def form_apply_error(form: forms.Form, exc: DomainError) -> None:
    """Put a domain error's messages on the form's fields (or the form itself)."""
    # A refusal of role is a 403, unless it is about a field the user filled in (a value only a manager may set).
    if isinstance(exc, NotPermitted) and not set(exc.errors) & set(form.fields):
        raise PermissionDenied(exc.message)
    placed = False
    for field, messages in exc.errors.items():
        target = field if field in form.fields else None
        for message in messages:
            form.add_error(target, message if target else f"{field.replace('_', ' ').capitalize()}: {message}")
        placed = True
    if not placed:
        form.add_error(None, exc.message)
