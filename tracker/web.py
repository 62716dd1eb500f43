"""Web helpers every app's views share: access decorators, htmx detection, domain errors on forms, saving a form."""

from collections.abc import Callable
from typing import Any, TypeVar

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from projects.middleware import has_role
from projects.models import Role
from tracker.exceptions import DomainError, NotPermitted

T = TypeVar("T")


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
    for field, texts in exc.errors.items():
        target = field if field in form.fields else None
        for message in texts:
            form.add_error(target, message if target else f"{field.replace('_', ' ').capitalize()}: {message}")
        placed = True
    if not placed:
        form.add_error(None, exc.message)


def form_changes(form: forms.Form) -> dict[str, Any]:
    """The cleaned values of the fields the user changed (an edit form's service takes only those)."""
    return {name: value for name, value in form.cleaned_data.items() if name in form.changed_data}


def form_save(
    request: HttpRequest, form: forms.Form, save: Callable[[], T], *, message: str | Callable[[T], str], to: str | Model
) -> HttpResponse | None:
    """Run a valid form's service: on success say `message` (or `message(result)`) and redirect to `to`
    (a URL name or an object); on a domain error put it on the form and return None, so the view
    renders the form again."""
    try:
        result = save()
    except DomainError as exc:
        form_apply_error(form, exc)
        return None
    messages.success(request, message if isinstance(message, str) else message(result))
    return redirect(to)
