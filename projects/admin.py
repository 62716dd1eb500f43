"""Admin for organizations, members, teams, cost centres, projects, stage history and status updates.

The admin is the operators' raw-data tool: list pages join what they show (no N+1 queries),
foreign keys use autocomplete so no page loads every user or project, and history is read-only.
"""

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from projects import audit, services
from projects.models import (
    ApiToken,
    AuditEvent,
    CostCentre,
    Invitation,
    Membership,
    NotificationSubscription,
    Organization,
    Project,
    ServiceAccount,
    StageTransition,
    StatusUpdate,
    Team,
)
from tracker.exceptions import DomainError


class ReadOnlyAdminMixin:
    """History is never edited: no add, change or delete, even for superusers."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class AuditedAdminMixin:
    """Record the admin's saves and deletions, its inlines' included, as the services record theirs.

    Operators are not members of the organizations they fix, so the admin writes rows itself; it
    writes their history through the same functions, in the same transaction, with the operator
    as the actor.
    """

    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:
        before = audit.snapshot(type(obj)._base_manager.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)
        if before is None:
            audit.record_created(obj)
        else:
            audit.record_changed(obj, before=before)

    def delete_model(self, request: HttpRequest, obj) -> None:
        audit.record_deleted(obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for obj in queryset:
            audit.record_deleted(obj)
        super().delete_queryset(request, queryset)

    def save_formset(self, request: HttpRequest, form, formset, change: bool) -> None:
        if not audit.is_audited(formset.model):
            return super().save_formset(request, form, formset, change)
        pks = [f.instance.pk for f in formset.initial_forms]
        # The forms already hold the new values: read what they replace from the database.
        stored = {obj.pk: obj for obj in formset.model._base_manager.filter(pk__in=pks)}
        for deleted in getattr(formset, "deleted_forms", []):
            if deleted.instance.pk in stored:
                audit.record_deleted(stored[deleted.instance.pk])
        super().save_formset(request, form, formset, change)
        for obj in formset.new_objects:
            audit.record_created(obj)
        for obj, _fields in formset.changed_objects:
            audit.record_changed(obj, before=audit.snapshot(stored[obj.pk]))


class InlineRowsFormSet(BaseInlineFormSet):
    """Load an inline's rows in one query, each with its parent attached (their __str__ names it)."""

    limit: int | None = None

    def get_queryset(self) -> list:
        if not hasattr(self, "_rows"):
            rows = super().get_queryset()
            self._rows = list(rows[: self.limit] if self.limit else rows)
            for row in self._rows:
                setattr(row, self.fk.name, self.instance)
        return self._rows


class LatestRowsFormSet(InlineRowsFormSet):
    """Show only the newest rows of a long inline; the full list is one click away."""

    limit = 20


class MembershipInline(ReadOnlyAdminMixin, admin.TabularInline):
    """Members at a glance; a role is changed on the membership's own page, through the service."""

    model = Membership
    fields = ["user", "role"]
    readonly_fields = fields
    show_change_link = True

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("user")


class TeamInline(admin.TabularInline):
    model = Team
    extra = 0
    fields = ["name", "slug", "description"]
    prepopulated_fields = {"slug": ["name"]}
    show_change_link = True


@admin.register(Organization)
class OrganizationAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["name", "slug", "currency", "timezone", "locale", "created_at"]
    search_fields = ["name", "slug"]
    list_filter = ["currency"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [TeamInline, MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    """Memberships change through the services, so the admin site keeps the rules (one admin at least).

    A refusal rolls the whole request back (the change form runs in a transaction) and shows as an
    error message on the page the operator came from.
    """

    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", "organization"]
    search_fields = ["user__username", "user__email", "organization__name"]
    list_select_related = ["user", "organization"]
    autocomplete_fields = ["user", "organization"]

    def get_readonly_fields(self, request: HttpRequest, obj: Membership | None = None) -> list[str]:
        # Moving a membership to another user or organization is a removal and an addition.
        return ["user", "organization"] if obj is not None else []

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # one at a time, through membership_delete
        return actions

    def save_model(self, request: HttpRequest, obj: Membership, form, change: bool) -> None:
        if change:
            services.membership_role_set(membership=obj, role=obj.role, by=request.user, as_operator=True)
        else:
            created = services.membership_create(
                organization=obj.organization, user=obj.user, role=obj.role, by=request.user
            )
            obj.pk = created.pk

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        services.membership_delete(membership=obj, by=request.user, as_operator=True)

    def changeform_view(self, request: HttpRequest, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_view(self, request: HttpRequest, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:projects_membership_change", args=[object_id]))


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Invitations are sent, resent and revoked by organization admins in the app; here they are read."""

    list_display = ["email", "organization", "role", "invited_by", "created_at", "expires_at", "accepted_at"]
    list_display += ["revoked_at"]
    list_filter = ["role", ("accepted_at", admin.EmptyFieldListFilter), ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["email", "organization__name"]
    list_select_related = ["organization", "invited_by"]
    exclude = ["key_hash"]


@admin.register(Team)
class TeamAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["name", "organization", "slug"]
    list_filter = ["organization"]
    search_fields = ["name", "slug", "organization__name"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(CostCentre)
class CostCentreAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["code", "name", "organization", "owner"]
    list_filter = ["organization"]
    search_fields = ["code", "name", "organization__name"]
    list_select_related = ["organization", "owner"]
    autocomplete_fields = ["organization", "owner"]


class StageTransitionInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = StageTransition
    formset = InlineRowsFormSet
    fields = ["at", "from_stage", "to_stage", "by", "note", "overridden_gates", "override_reason"]
    readonly_fields = fields
    ordering = ["-at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("by")


class StatusUpdateInline(admin.StackedInline):
    model = StatusUpdate
    formset = LatestRowsFormSet
    extra = 0
    fields = ["date", "health", "progress", "author", "summary", "blockers"]
    readonly_fields = ["author"]
    ordering = ["-date", "-created_at"]
    show_change_link = True
    classes = ["collapse"]
    verbose_name_plural = f"status updates (newest {LatestRowsFormSet.limit})"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("author")


@admin.register(Project)
class ProjectAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = [
        "name",
        "organization",
        "team",
        "stage",
        "health",
        "progress",
        "industry",
        "use_case",
        "ai_act_tier",
        "last_status_date",
        "archived",
    ]
    list_filter = ["stage", "health", "industry", "use_case", "data_classification", "ai_act_tier", "archived"]
    search_fields = ["name", "slug", "summary", "organization__name"]
    list_select_related = ["organization", "team"]
    autocomplete_fields = ["organization", "team", "business_owner", "technical_lead", "human_oversight_owner"]
    prepopulated_fields = {"slug": ["name"]}
    # The stage moves only through project_transition (gates, history); health follows status updates.
    readonly_fields = ["stage", "stage_entered_at", "health", "progress", "last_status_date", "all_costs"]
    # ops adds its risk and cost-entry inlines (ops/admin.py).
    inlines = [StageTransitionInline, StatusUpdateInline]
    show_full_result_count = False
    fieldsets = [
        (None, {"fields": ["organization", "team", "name", "slug", "summary", "industry", "use_case"]}),
        ("People", {"fields": ["business_owner", "technical_lead", "human_oversight_owner"]}),
        ("Plan", {"fields": ["start_date", "target_date", "data_classification", "ai_act_tier", "archived"]}),
        ("State", {"fields": ["stage", "stage_entered_at", "health", "progress", "last_status_date", "all_costs"]}),
    ]

    @admin.display(description="Costs")
    def all_costs(self, obj: Project) -> str:
        if obj.pk is None:
            return "—"
        url = reverse("admin:ops_costentry_changelist") + f"?project__id__exact={obj.pk}"
        return format_html('<a href="{}">All cost entries of this project</a>', url)

    def save_model(self, request: HttpRequest, obj: Project, form, change: bool) -> None:
        if not change:
            obj.stage_entered_at = timezone.now()
        super().save_model(request, obj, form, change)


@admin.register(StageTransition)
class StageTransitionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["project", "from_stage", "to_stage", "at", "by", "overridden"]
    list_filter = ["to_stage", "from_stage"]
    search_fields = ["project__name", "note", "override_reason"]
    list_select_related = ["project", "by"]
    date_hierarchy = "at"

    @admin.display(boolean=True, description="Gates overridden")
    def overridden(self, obj: StageTransition) -> bool:
        return bool(obj.overridden_gates)


@admin.register(StatusUpdate)
class StatusUpdateAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["project", "date", "health", "progress", "author"]
    list_filter = ["health"]
    search_fields = ["project__name", "summary", "blockers"]
    list_select_related = ["project", "author"]
    autocomplete_fields = ["project", "author"]
    date_hierarchy = "date"
    show_full_result_count = False


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Personal tokens can be created here for a user (the raw key is shown once); never edited.

    Only the hash is stored, so the admin form asks just for the user and a name and the service
    makes the key (expiring after API_TOKEN_LIFETIME_DAYS, within the user's cap). Service tokens
    are made by their organization's admins on the tokens page or the API.
    """

    list_display = ["name", "user", "organization", "scope", "prefix", "created_at", "expires_at", "last_used_at"]
    list_display += ["revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), ("organization", admin.EmptyFieldListFilter), "scope"]
    search_fields = ["name", "prefix", "user__username"]
    list_select_related = ["user", "organization"]
    exclude = ["key_hash"]
    fields = ["user", "name", "your_password"]
    raw_id_fields = ["user"]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.has_perm("projects.add_apitoken")

    def get_form(self, request: HttpRequest, obj: ApiToken | None = None, change: bool = False, **kwargs):
        """The add form asks for the operator's own password: a stolen admin session mints no token."""

        class TokenAddForm(forms.ModelForm):
            your_password = forms.CharField(
                widget=forms.PasswordInput, strip=False, help_text="Your own password, to confirm it is you."
            )

            def clean_your_password(self) -> str:
                password = self.cleaned_data["your_password"]
                try:
                    services.user_password_confirm(user=request.user, password=password, request=request)
                except DomainError as exc:
                    raise forms.ValidationError(exc.message) from exc
                return password

        kwargs["form"] = TokenAddForm
        return super().get_form(request, obj, change, **kwargs)

    def save_model(self, request: HttpRequest, obj: ApiToken, form, change: bool) -> None:
        token, raw_key = services.api_token_create(
            user=form.cleaned_data["user"], name=form.cleaned_data["name"], created_by=request.user
        )
        obj.pk = token.pk
        messages.warning(
            request, f"API token “{token.name}” for {token.user}: {raw_key} — copy it now, it is not shown again."
        )


@admin.register(ServiceAccount)
class ServiceAccountAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The users service tokens act as: made by `service_token_create`, never edited by hand."""

    list_display = ["organization", "scope", "user"]
    list_filter = ["scope"]
    search_fields = ["organization__name", "user__username"]
    list_select_related = ["organization", "user"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["at", "actor_repr", "action", "object_type", "object_repr", "project"]
    list_filter = ["action", "object_type"]
    search_fields = ["actor_repr", "object_repr", "object_id"]
    list_select_related = ["project"]
    date_hierarchy = "at"
    show_full_result_count = False


@admin.register(NotificationSubscription)
class NotificationSubscriptionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Each member makes their own e-mail choices (their E-mail choices page): operators read them."""

    list_display = ["user", "organization", "kind", "enabled", "updated_at"]
    list_filter = ["kind", "enabled"]
    list_select_related = ["user", "organization"]
    search_fields = ["user__username", "organization__name"]
