"""The organization's settings area (/settings/): its details, members and invitations, teams, cost centres,
service tokens.

Admins change everything here; managers read the details, members and teams, and add and change cost centres
(admins delete them); everyone else is refused
(403). Every page is of the current organization: a row of another one answers 404. The role is
checked before anything is looked up or parsed, so a refusal never depends on the input; each
service checks it again and writes the history. A member's own notification choices are under the
account (`notifications`), for every member.
"""

from collections.abc import Callable, Mapping
from functools import partial

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from projects import services
from projects.forms import (
    CostCentreForm,
    InvitationForm,
    MemberRoleForm,
    NotificationPreferencesForm,
    OrganizationSettingsForm,
    ServiceTokenForm,
    TeamEditForm,
    TeamForm,
)
from projects.middleware import has_role
from projects.models import Role
from projects.selectors import (
    cost_centre_list_with_counts,
    invitation_list,
    membership_list,
    notification_choices,
    service_token_list,
    team_list_with_counts,
)
from tracker.exceptions import DomainError
from tracker.web import form_apply_error, form_changes, form_save, organization_required, role_required


def _render(request: HttpRequest, template: str, context: dict) -> HttpResponse:
    """Render a settings page with what every one shows: whether the visitor may change it."""
    context = {"administers": has_role(request, Role.ADMIN)} | context
    return render(request, f"projects/settings/{template}", context)


@organization_required
@require_http_methods(["GET", "POST"])
def organization_settings(request: HttpRequest) -> HttpResponse:
    """The organization's name, time zone, locale and currency (managers read, admins change)."""
    role_required(request, Role.ADMIN if request.method == "POST" else Role.MANAGER)
    organization = request.organization
    initial = {name: getattr(organization, name) for name in OrganizationSettingsForm.base_fields}
    form = OrganizationSettingsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        save = partial(services.organization_update, organization=organization, by=request.user, **form_changes(form))
        if done := form_save(request, form, save, message="Organization settings saved.", to="settings:organization"):
            return done
    return _render(request, "organization.html", {"form": form})


def _members_page(
    request: HttpRequest, *, form: InvitationForm, refused: Mapping[int, str] | None = None
) -> HttpResponse:
    organization = request.organization
    context = {
        "form": form,
        "members": membership_list(user=request.user).filter(organization=organization).order_by("user__username"),
        "invitations": invitation_list(user=request.user).filter(organization=organization),
        "roles": Role.choices,
        "refused": refused or {},
    }
    return _render(request, "members.html", context)


@organization_required
@require_http_methods(["GET", "POST"])
def members(request: HttpRequest) -> HttpResponse:
    """The members and pending invitations (managers read the members; admins invite, change roles, remove)."""
    role_required(request, Role.ADMIN if request.method == "POST" else Role.MANAGER)
    form = InvitationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        save = partial(
            services.invitation_create, organization=request.organization, by=request.user, **form.cleaned_data
        )
        if done := form_save(
            request, form, save, message=lambda i: f"Invitation sent to {i.email}.", to="settings:members"
        ):
            return done
    return _members_page(request, form=form)


def _member_get(request: HttpRequest, pk: int):
    role_required(request, Role.ADMIN)
    return get_object_or_404(membership_list(user=request.user), organization=request.organization, pk=pk)


@organization_required
@require_POST
def member_role(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a member's role; refusing to leave the organization without an admin shows on the member's row."""
    membership = _member_get(request, pk)
    form = MemberRoleForm(request.POST)
    if form.is_valid():
        try:
            services.membership_role_set(membership=membership, role=form.cleaned_data["role"], by=request.user)
        except DomainError as exc:
            return _members_page(request, form=InvitationForm(), refused={membership.pk: exc.message})
        messages.success(request, f"{membership.user.get_username()} is now {membership.get_role_display().lower()}.")
        return redirect("settings:members")
    return _members_page(request, form=InvitationForm(), refused={membership.pk: "Choose a role."})


@organization_required
@require_POST
def member_remove(request: HttpRequest, pk: int) -> HttpResponse:
    """Remove a member (not the last admin): they lose access at once; what they wrote and own stays."""
    membership = _member_get(request, pk)
    try:
        services.membership_delete(membership=membership, by=request.user)
    except DomainError as exc:
        return _members_page(request, form=InvitationForm(), refused={membership.pk: exc.message})
    messages.success(request, f"{membership.user.get_username()} no longer belongs to {request.organization.name}.")
    return redirect("settings:members")


def _invitation_action(act: Callable, done: str) -> Callable:
    """Build a POST view that applies `act` to one of the current organization's pending invitations."""

    @organization_required
    @require_POST
    def view(request: HttpRequest, pk: int) -> HttpResponse:
        role_required(request, Role.ADMIN)
        invitation = get_object_or_404(invitation_list(user=request.user), organization=request.organization, pk=pk)
        try:
            act(invitation=invitation, by=request.user)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, done.format(email=invitation.email))
        return redirect("settings:members")

    view.__name__ = view.__qualname__ = act.__name__
    return view


invitation_revoke = _invitation_action(
    services.invitation_revoke, "Invitation to {email} revoked: its link no longer works."
)
invitation_resend = _invitation_action(services.invitation_resend, "Invitation sent to {email} again, with a new link.")


@organization_required
@require_http_methods(["GET", "POST"])
def teams(request: HttpRequest) -> HttpResponse:
    """The teams with their lead and projects (managers read; admins create)."""
    role_required(request, Role.ADMIN if request.method == "POST" else Role.MANAGER)
    organization = request.organization
    form = TeamForm(request.POST or None, organization=organization)
    if request.method == "POST" and form.is_valid():
        save = partial(services.team_create, organization=organization, by=request.user, **form.cleaned_data)
        if done := form_save(request, form, save, message=lambda t: f"Team “{t.name}” created.", to="settings:teams"):
            return done
    context = {"form": form, "teams": team_list_with_counts(organization=organization)}
    return _render(request, "teams.html", context)


def _team_get(request: HttpRequest, pk: int):
    role_required(request, Role.ADMIN)
    return get_object_or_404(team_list_with_counts(organization=request.organization), pk=pk)


@organization_required
@require_http_methods(["GET", "POST"])
def team_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Rename a team, describe it, name its lead, archive or restore it; or delete it (admins)."""
    team = _team_get(request, pk)
    initial = {"name": team.name, "description": team.description, "lead": team.lead, "archived": team.archived}
    form = TeamEditForm(request.POST or None, initial=initial, organization=request.organization)
    if request.method == "POST" and form.is_valid():
        save = partial(services.team_update, team=team, by=request.user, **form_changes(form))
        if done := form_save(request, form, save, message=lambda _: f"Team “{team.name}” saved.", to="settings:teams"):
            return done
    return _render(request, "team_edit.html", {"form": form, "team": team})


@organization_required
@require_POST
def team_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete a team: its projects stay, without a team (each change recorded)."""
    team = _team_get(request, pk)
    services.team_delete(team=team, by=request.user)
    count = team.project_count
    messages.success(
        request,
        f"Team “{team.name}” deleted. {count} project{'s' if count != 1 else ''} now {'have' if count != 1 else 'has'}"
        " no team.",
    )
    return redirect("settings:teams")


@organization_required
@require_http_methods(["GET", "POST"])
def cost_centres(request: HttpRequest) -> HttpResponse:
    """The cost centres with their owner, projects and budgets (managers read and add them)."""
    role_required(request, Role.MANAGER)
    organization = request.organization
    form = CostCentreForm(request.POST or None, organization=organization)
    if request.method == "POST" and form.is_valid():
        save = partial(services.cost_centre_create, organization=organization, by=request.user, **form.cleaned_data)
        if done := form_save(
            request, form, save, message=lambda c: f"Cost centre “{c}” added.", to="settings:cost-centres"
        ):
            return done
    context = {"form": form, "cost_centres": cost_centre_list_with_counts(organization=organization)}
    return _render(request, "cost_centres.html", context)


def _cost_centre_get(request: HttpRequest, pk: int, *, role: Role = Role.MANAGER):
    role_required(request, role)
    return get_object_or_404(cost_centre_list_with_counts(organization=request.organization), pk=pk)


@organization_required
@require_http_methods(["GET", "POST"])
def cost_centre_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a cost centre's code, name or owner (managers); or delete it (admins)."""
    centre = _cost_centre_get(request, pk)
    initial = {"code": centre.code, "name": centre.name, "owner": centre.owner}
    form = CostCentreForm(request.POST or None, initial=initial, organization=request.organization)
    if request.method == "POST" and form.is_valid():
        save = partial(services.cost_centre_update, cost_centre=centre, by=request.user, **form_changes(form))
        if done := form_save(
            request, form, save, message=lambda _: f"Cost centre “{centre}” saved.", to="settings:cost-centres"
        ):
            return done
    return _render(request, "cost_centre_edit.html", {"form": form, "centre": centre})


@organization_required
@require_POST
def cost_centre_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete a cost centre (admins): its projects stay, without one; its budgets go with it (each recorded)."""
    centre = _cost_centre_get(request, pk, role=Role.ADMIN)
    services.cost_centre_delete(cost_centre=centre, by=request.user)
    budgets, projects = centre.budget_count, centre.project_count
    messages.success(
        request,
        f"Cost centre “{centre}” deleted, with its {budgets} budget{'s' if budgets != 1 else ''};"
        f" {projects} project{'s' if projects != 1 else ''} now without one.",
    )
    return redirect("settings:cost-centres")


def _service_tokens_page(
    request: HttpRequest, *, form: ServiceTokenForm | None = None, created_key: str = ""
) -> HttpResponse:
    context = {
        "form": form or ServiceTokenForm(),
        "tokens": service_token_list(user=request.user).filter(organization=request.organization),
        "created_key": created_key,
        "now": timezone.now(),
    }
    return _render(request, "service_tokens.html", context)


@never_cache  # the page may hold a key shown once
@organization_required
@require_http_methods(["GET", "POST"])
def service_tokens(request: HttpRequest) -> HttpResponse:
    """The organization's service tokens (admins): create one (password asked again; key shown once), revoke."""
    role_required(request, Role.ADMIN)
    if request.method == "GET":
        return _service_tokens_page(request)
    form = ServiceTokenForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.user_password_confirm(user=request.user, password=data["password"], request=request)
            token, key = services.service_token_create(
                organization=request.organization,
                by=request.user,
                name=data["name"],
                scope=data["scope"],
                expires_at=data["expires_at"],
            )
        except DomainError as exc:
            form_apply_error(form, exc)
        else:
            messages.success(request, f"Service token “{token.name}” created. Copy its key now: it is not shown again.")
            return _service_tokens_page(request, created_key=key)
    return _service_tokens_page(request, form=form)


@organization_required
@require_POST
def service_token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    role_required(request, Role.ADMIN)
    token = get_object_or_404(service_token_list(user=request.user), organization=request.organization, pk=pk)
    services.api_token_revoke(token=token, by=request.user)
    messages.success(request, f"Service token “{token.name}” revoked: requests using it are refused from now on.")
    return redirect("settings:service-tokens")


@organization_required
@require_http_methods(["GET", "POST"])
def notifications(request: HttpRequest) -> HttpResponse:
    """The member's choice of the current organization's digests and reminders (every member, for themselves)."""
    choices = notification_choices(user=request.user, organization=request.organization)
    form = NotificationPreferencesForm(request.POST or None, initial=choices)
    if request.method == "POST" and form.is_valid():
        services.notification_subscriptions_set(
            user=request.user, organization=request.organization, choices=form.cleaned_data
        )
        messages.success(request, f"Your e-mail choices for {request.organization.name} are saved.")
        return redirect("projects:notifications")
    return render(request, "projects/notifications.html", {"form": form})
