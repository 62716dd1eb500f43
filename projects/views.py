"""Web pages of the projects app: the project page, project forms, personal tokens, invitation links.

Views stay thin: a form parses, a service acts, a template renders. The project page is made of
the sections registered in projects/panels.py (ops registers its own); each section's forms load
when opened. An htmx form on the page gets its section back (and, out of band, the header and the
stage gates that the change may have moved) instead of the whole page.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

from django import forms as django_forms
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from projects import activity, services
from projects.filters import ActivityFilter
from projects.forms import (
    ApiTokenForm,
    InvitationSignUpForm,
    ProjectForm,
    StageMoveForm,
)
from projects.gates import GateCheck, gates_explain
from projects.middleware import has_role, organization_activate
from projects.models import Project, Role, Stage
from projects.panels import FORMS, PANELS, Panel, PanelForm, panel_figures, panels
from projects.selectors import (
    activity_list,
    api_token_list,
    audit_history,
    invitation_by_key,
    project_list,
    status_update_history,
    transition_check,
)
from tracker.exceptions import DomainError, TransitionRefused
from tracker.web import form_apply_error, form_changes, form_save, is_htmx, organization_required, role_required


def project_get(request: HttpRequest, pk: int) -> Project:
    """Return one of the user's projects (404 for any other) and make its organization the current one."""
    project = get_object_or_404(project_list(user=request.user), pk=pk)
    if project.organization_id != request.organization.pk:
        organization_activate(request, project.organization_id)
    return project


@login_required
@require_POST
def organization_switch(request: HttpRequest) -> HttpResponse:
    try:
        organization = organization_activate(request, int(request.POST.get("organization", "")))
    except ValueError:
        organization = None
    if organization is None:
        raise Http404("Unknown organization.")
    messages.success(request, f"You are now working in {organization.name}.")
    target = request.POST.get("next", "")
    # A page of one organization's object makes no sense in another: go to the dashboard instead.
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}) or target.count("/") > 2:
        return redirect("projects:dashboard")
    return redirect(target)


@organization_required
@require_http_methods(["GET", "POST"])
def project_create(request: HttpRequest) -> HttpResponse:
    role_required(request, Role.CONTRIBUTOR)
    form = ProjectForm(request.POST or None, organization=request.organization)
    if request.method == "POST" and form.is_valid():
        try:
            project = services.project_create(organization=request.organization, by=request.user, **form.cleaned_data)
        except DomainError as exc:
            form_apply_error(form, exc)
        else:
            messages.success(request, f"Project “{project.name}” created.")
            return redirect(project)
    return render(request, "projects/project_form.html", {"form": form, "project": None})


@organization_required
@require_http_methods(["GET", "POST"])
def project_edit(request: HttpRequest, pk: int) -> HttpResponse:
    project = project_get(request, pk)
    role_required(request, Role.CONTRIBUTOR)
    form = ProjectForm(
        request.POST or None, initial=ProjectForm.initial_for(project), organization=project.organization
    )
    if request.method == "POST" and form.is_valid():
        save = partial(services.project_update, project=project, by=request.user, **form_changes(form))
        if done := form_save(request, form, save, message="Project saved.", to=project):
            return done
    return render(request, "projects/project_form.html", {"form": form, "project": project})


@dataclass(frozen=True)
class PageForm:
    """A section's form as the page shows it: closed (loaded when opened), or bound with its errors."""

    spec: PanelForm
    panel: Panel
    form: django_forms.Form | None
    open: bool


def project_page_context(
    request: HttpRequest,
    project: Project,
    bound: Mapping[str, django_forms.Form] | None = None,
    *,
    sections: tuple[str, ...] | None = None,
    **extra,
) -> dict:
    """Return the context of the project page (or of its `sections`): their figures and their forms' disclosures.

    Only a form being redisplayed (with its errors) is rendered; the others load when opened.
    """
    today = services.organization_today(project.organization)
    detail = panel_figures(project=project, today=today, keys=sections)
    bound = bound or {}
    page_forms = {
        spec.key: PageForm(spec, panel, bound.get(spec.key), spec.key in bound or spec.starts_open(detail))
        for panel in panels()
        if sections is None or panel.key in sections
        for spec in panel.forms
        if has_role(request, spec.role)
    }
    return {"project": project, "detail": detail, "panels": panels(), "page_forms": page_forms} | extra


@organization_required
def project_page(request: HttpRequest, pk: int) -> HttpResponse:
    project = project_get(request, pk)
    return render(request, "projects/project_detail.html", project_page_context(request, project))


@organization_required
@require_GET
def project_form(request: HttpRequest, pk: int, key: str) -> HttpResponse:
    """One form of the project page, blank: the fragment its disclosure loads, or a page of its own without script."""
    project = project_get(request, pk)
    if key not in FORMS:
        raise Http404("No such form.")
    panel, spec = FORMS[key]
    role_required(request, spec.role)
    today = services.organization_today(project.organization)
    build = spec.copy_last if spec.copy_last and request.GET.get("copy") == "last" else spec.build
    context = {"project": project, "form": build(project=project, today=today), "spec": spec, "panel": panel}
    if is_htmx(request):
        return render(request, spec.template, context)
    return render(request, "projects/project_form_page.html", context | {"standalone": True})


def project_section_response(
    request: HttpRequest,
    project: Project,
    section: str,
    *,
    bound: Mapping[str, django_forms.Form] | None = None,
    notice: str = "",
    **extra,
) -> HttpResponse:
    """Answer a project-page form: its section for htmx, else the page (errors) or a redirect (success)."""
    failed = any(form.errors for form in (bound or {}).values())
    if not is_htmx(request):
        if not failed:
            messages.success(request, notice)
            return redirect(project)
        return render(request, "projects/project_detail.html", project_page_context(request, project, bound, **extra))
    if failed:
        notice = ""
    else:
        project.refresh_from_db()
        bound = None
    # The change may have moved the health, the stage or a gate: refresh the header and the gates too.
    sections = (section,) if failed else (section, "stage")
    context = project_page_context(request, project, bound, sections=sections, notice=notice, section=section, **extra)
    parts = [render_to_string(PANELS[section].template, context, request)]
    if not failed:
        parts.append(render_to_string("projects/includes/project_header.html", context | {"oob": True}, request))
        if section != "stage":
            parts.append(render_to_string(PANELS["stage"].template, context | {"oob": True}, request))
    return HttpResponse("".join(parts))


def project_form_view(spec: PanelForm, notice: str):
    """Build a POST view for one project-page form that calls `act(project, request, form)`.

    The role is checked before the input, so a refusal never depends on what was typed (the
    service checks it again). The form is built as its fragment builds it, bound to the input.
    """

    def decorator(act: Callable[[Project, HttpRequest, django_forms.Form], None]) -> Callable:
        @organization_required
        @require_POST
        def view(request: HttpRequest, pk: int) -> HttpResponse:
            project = project_get(request, pk)
            role_required(request, spec.role)
            today = services.organization_today(project.organization)
            form = spec.build(project=project, today=today, data=request.POST)
            if form.is_valid():
                try:
                    act(project, request, form)
                except DomainError as exc:
                    form_apply_error(form, exc)
            section = FORMS[spec.key][0].key
            return project_section_response(request, project, section, bound={spec.key: form}, notice=notice)

        view.__name__, view.__doc__ = act.__name__, act.__doc__
        return view

    return decorator


@project_form_view(FORMS["status"][1], "Status update logged.")
def status_update_create(project: Project, request: HttpRequest, form: django_forms.Form) -> None:
    """Log a status update; the newest sets the project's health."""
    services.status_update_create(project=project, by=request.user, **form.cleaned_data)


@organization_required
@require_POST
def project_transition(request: HttpRequest, pk: int) -> HttpResponse:
    """Move the stage; a refusal lists the unmet gates (and a manager may retry with a justification)."""
    project = project_get(request, pk)
    role_required(request, Role.CONTRIBUTOR)
    form = StageMoveForm(request.POST)
    missing: list[GateCheck] = []
    if form.is_valid():
        try:
            services.project_transition(project=project, by=request.user, **form.cleaned_data)
        except TransitionRefused as exc:
            missing = gates_explain(project=project, missing=exc.missing)
            form.add_error(None, exc.message)
        except DomainError as exc:
            form_apply_error(form, exc)
    return project_section_response(
        request, project, "stage", bound={"stage": form}, notice="Stage moved.", refused_gates=missing
    )


@organization_required
@require_GET
def transition_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """What the stage form's move will meet, shown when its target changes: a refusal says so before it is tried."""
    project = project_get(request, pk)
    role_required(request, Role.CONTRIBUTOR)
    to_stage = request.GET.get("to_stage", "")
    if to_stage not in Stage.values:
        return HttpResponse('<div id="stage-preview" aria-live="polite"></div>')
    check = transition_check(project=project, to_stage=to_stage, note=request.GET.get("note", ""))
    context = {"project": project, "check": check, "to_stage_label": Stage(to_stage).label}
    return render(request, "projects/includes/stage_preview.html", context)


def _tokens_page(request: HttpRequest, *, form: ApiTokenForm | None = None, created_key: str = "") -> HttpResponse:
    """Render the user's personal tokens (the organization's service tokens are in its settings)."""
    context = {
        "form": form or ApiTokenForm(),
        "tokens": api_token_list(user=request.user),
        "administers": request.organization is not None and has_role(request, Role.ADMIN),
        "created_key": created_key,
        "now": timezone.now(),
    }
    return render(request, "projects/api_tokens.html", context)


@never_cache  # the page may hold a key shown once
@login_required
@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    """The user's personal API tokens: create one (password asked again; key shown once), list, revoke."""
    form = ApiTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.user_password_confirm(user=request.user, password=data["password"], request=request)
            token, key = services.api_token_create(user=request.user, name=data["name"], expires_at=data["expires_at"])
        except DomainError as exc:
            form_apply_error(form, exc)
        else:
            messages.success(request, f"Token “{token.name}” created. Copy its key now: it is not shown again.")
            return _tokens_page(request, created_key=key)
    return _tokens_page(request, form=form)


@login_required
@require_POST
def api_token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(api_token_list(user=request.user), pk=pk)
    services.api_token_revoke(token=token, by=request.user)
    messages.success(request, f"Token “{token.name}” revoked: requests using it are refused from now on.")
    return redirect("projects:tokens")


HISTORY_PAGE_SIZE = 50


@organization_required
def project_history(request: HttpRequest, pk: int) -> HttpResponse:
    """Every recorded change of the project and of what belongs to it, newest first. Read-only."""
    project = project_get(request, pk)
    page = Paginator(audit_history(project=project), HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "projects/project_history.html", {"project": project, "page": page})


ACTIVITY_PAGE_SIZE = 50


def _activity_page(request: HttpRequest, project: Project | None) -> HttpResponse:
    organization = request.organization
    events = activity_list(user=request.user, organization=organization, project=project)
    filters = ActivityFilter(request.GET, queryset=events, organization=organization)
    page = Paginator(filters.qs, ACTIVITY_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "project": project,
        "filters": filters,
        "page": page,
        "items": [(event, activity.sentence(event, organization)) for event in page],
        "query": query.urlencode(),
    }
    return render(request, "projects/activity.html", context)


@organization_required
def organization_activity(request: HttpRequest) -> HttpResponse:
    """What happened in the organization, newest first, as sentences; by person, kind and dates."""
    return _activity_page(request, None)


@organization_required
def project_activity(request: HttpRequest, pk: int) -> HttpResponse:
    """What happened in one project, newest first, as sentences; by person, kind and dates."""
    return _activity_page(request, project_get(request, pk))


STATUS_PAGE_SIZE = 25


@organization_required
def status_history(request: HttpRequest, pk: int) -> HttpResponse:
    """Every status update of the project, newest first, a page at a time (the project page shows the newest)."""
    project = project_get(request, pk)
    page = Paginator(status_update_history(project=project), STATUS_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "projects/status_history.html", {"project": project, "page": page})


@login_required
@require_POST
def sign_out_everywhere(request: HttpRequest) -> HttpResponse:
    """End every session of the user, on every device, this one included, and revoke their personal tokens."""
    count = services.user_sessions_revoke(user=request.user)
    logout(request)
    messages.success(
        request,
        f"Signed out of {count} session{'s' if count != 1 else ''}. Your personal API tokens are revoked too;"
        " your organizations' service tokens keep working.",
    )
    return redirect("login")


@never_cache  # the page's address is the invitation's key
@require_http_methods(["GET", "POST"])
def invitation_accept(request: HttpRequest, key: str) -> HttpResponse:
    """The link of an invitation: a signed-in person joins; a new one picks a username and a password."""
    invitation = invitation_by_key(key=key)
    if invitation is None:
        raise Http404("This invitation link is not valid.")
    signed_in = request.user.is_authenticated
    form = InvitationSignUpForm(request.POST or None) if not signed_in else None
    error = ""
    if request.method == "POST" and (signed_in or form.is_valid()):
        try:
            if signed_in:
                membership = services.invitation_accept(key=key, user=request.user)
            else:
                membership = services.invitation_accept_new_user(
                    key=key, username=form.cleaned_data["username"], password=form.cleaned_data["password"]
                )
                login(request, membership.user, backend="projects.auth.SignInBackend")
        except DomainError as exc:
            if form is None:
                error = exc.message
            else:
                form_apply_error(form, exc)
        else:
            request.memberships.append(membership)
            organization_activate(request, membership.organization_id)
            messages.success(request, f"Welcome to {membership.organization.name}.")
            return redirect("projects:dashboard")
    return render(request, "projects/invitation_accept.html", {"invitation": invitation, "form": form, "error": error})
