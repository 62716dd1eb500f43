"""Web forms of the projects app: they parse input; the services decide."""

import datetime as dt
import zoneinfo

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone

from projects.models import (
    AIActTier,
    CostCentre,
    DataClassification,
    Health,
    Industry,
    NotificationKind,
    Organization,
    Project,
    Role,
    Stage,
    StatusUpdate,
    Team,
    TokenScope,
    UseCase,
)
from projects.tags import tags_format, tags_parse

User = get_user_model()


def members_of(organization: Organization):
    return User.objects.filter(memberships__organization=organization, service_account=None).order_by("username")


class DateInput(forms.DateInput):
    input_type = "date"


class PageForm(forms.Form):
    """A form that shares its page with others: its field ids carry `id_prefix` so they stay unique."""

    id_prefix = ""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", f"id_{self.id_prefix}_%s")
        super().__init__(*args, **kwargs)


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=200)
    summary = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    team = forms.ModelChoiceField(queryset=Team.objects.none(), required=False)
    industry = forms.ChoiceField(choices=Industry.choices, initial=Industry.OTHER)
    use_case = forms.ChoiceField(choices=UseCase.choices, initial=UseCase.OTHER)
    business_owner = forms.ModelChoiceField(queryset=User.objects.none(), required=False)
    technical_lead = forms.ModelChoiceField(queryset=User.objects.none(), required=False)
    human_oversight_owner = forms.ModelChoiceField(
        queryset=User.objects.none(),
        required=False,
        help_text=Project._meta.get_field("human_oversight_owner").help_text,
    )
    start_date = forms.DateField(widget=DateInput, required=False)
    target_date = forms.DateField(widget=DateInput, required=False)
    data_classification = forms.ChoiceField(
        choices=[("", "Not classified yet"), *DataClassification.choices], required=False
    )
    ai_act_tier = forms.ChoiceField(choices=AIActTier.choices, initial=AIActTier.UNASSESSED, label="EU AI Act tier")
    otel_service_names = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        label=Project._meta.get_field("otel_service_names").verbose_name,
        help_text="One per line: the service.name of each app whose OpenTelemetry GenAI spans are its usage.",
    )
    cost_centre = forms.ModelChoiceField(
        queryset=CostCentre.objects.none(),
        required=False,
        empty_label="No cost centre",
        help_text="Where finance charges its spend back to (chargeback groups by it).",
    )
    tags = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="One key=value per line, e.g. env=prod; keys are lower-case letters, digits and _ . : / -.",
    )

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        # An archived team is offered only to the project already in it.
        current = self.initial.get("team")
        self.fields["team"].queryset = organization.teams.filter(Q(archived=False) | Q(pk=getattr(current, "pk", None)))
        self.fields["cost_centre"].queryset = organization.cost_centres.all()
        for name in ("business_owner", "technical_lead", "human_oversight_owner"):
            self.fields[name].queryset = members_of(organization)

    def clean_otel_service_names(self) -> list[str]:
        return [name.strip() for name in self.cleaned_data["otel_service_names"].splitlines() if name.strip()]

    def clean_tags(self) -> dict[str, str]:
        return tags_parse(self.cleaned_data["tags"])  # the one tag rule (projects/tags.py); errors on the field

    @classmethod
    def initial_for(cls, project: Project) -> dict:
        initial = {name: getattr(project, name) for name in cls.base_fields}
        initial["otel_service_names"] = "\n".join(project.otel_service_names)
        initial["tags"] = tags_format(project.tags)
        return initial


class StatusUpdateForm(PageForm):
    id_prefix = "status"

    date = forms.DateField(widget=DateInput)
    health = forms.ChoiceField(choices=Health.choices, widget=forms.RadioSelect)
    progress = forms.IntegerField(min_value=0, max_value=100, label="Progress %")
    summary = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))
    accomplishments = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    blockers = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    next_steps = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)

    COPIED = ("health", "progress", "summary", "accomplishments", "blockers", "next_steps")

    @classmethod
    def initial_for(cls, *, project: Project, today: dt.date, last: StatusUpdate | None = None) -> dict:
        """Return a new update's starting point: today, the project's health and progress, or a copy of `last`."""
        initial = {"date": today, "health": project.health or Health.GREEN, "progress": project.progress}
        if last is not None:
            initial |= {name: getattr(last, name) for name in cls.COPIED}
        return initial


class StageMoveForm(PageForm):
    id_prefix = "stage"

    to_stage = forms.ChoiceField(choices=Stage.choices, label="Move to")
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, help_text="Required when moving back."
    )
    override_reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        label="Override justification",
        help_text="Managers only: moves past unmet gates and is recorded.",
    )


def _expires_at(day: dt.date | None) -> dt.datetime | None:
    """A token "expiring on" a day stops working when that day begins, in UTC."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC) if day else None


class ApiTokenForm(PageForm):
    id_prefix = "token"

    name = forms.CharField(max_length=100, help_text="Say what will use it, e.g. “LLM gateway nightly usage push”.")
    expires_at = forms.DateField(
        widget=DateInput, label="Expires on", help_text="It stops working when this day begins (UTC)."
    )
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        strip=False,
        label="Your current password",
        help_text="Asked again because a token acts as you.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["expires_at"].initial = timezone.localdate() + dt.timedelta(days=settings.API_TOKEN_LIFETIME_DAYS)
        self.fields["expires_at"].help_text += f" At most {settings.API_TOKEN_MAX_LIFETIME_DAYS} days ahead."

    def clean_expires_at(self) -> dt.datetime | None:
        return _expires_at(self.cleaned_data["expires_at"])


class ServiceTokenForm(PageForm):
    id_prefix = "service"

    name = forms.CharField(max_length=100, help_text="Say what will use it, e.g. “OTLP collector, production”.")
    scope = forms.ChoiceField(
        choices=TokenScope.choices,
        initial=TokenScope.INGEST,
        help_text="Read: reads like a viewer. Read and ingest: also pushes costs and usage, nothing else.",
    )
    expires_at = forms.DateField(
        widget=DateInput,
        required=False,
        label="Expires on",
        help_text="Empty: it works until revoked. It stops working when this day begins (UTC).",
    )
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        strip=False,
        label="Your current password",
        help_text="Asked again because the token outlives your session and your password.",
    )

    def clean_expires_at(self) -> dt.datetime | None:
        return _expires_at(self.cleaned_data.get("expires_at"))


class InvitationForm(forms.Form):
    email = forms.EmailField(label="E-mail address", help_text="They get a link to join; it works for a week.")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class InvitationSignUpForm(forms.Form):
    """A new person's account, made when they accept an invitation (the service checks the password's strength)."""

    username = forms.CharField(max_length=150, help_text="Letters, digits and @ . + - _ only.")
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    password_again = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), label="Password (again)"
    )

    def clean(self) -> dict:
        data = super().clean()
        if data.get("password") and data.get("password") != data.get("password_again"):
            self.add_error("password_again", "The two passwords differ.")
        return data


class OrganizationSettingsForm(forms.Form):
    name = forms.CharField(max_length=200)
    timezone = forms.ChoiceField(
        label="Time zone", help_text="Reports' weeks, due dates and “today” follow it (IANA name, e.g. Europe/Berlin)."
    )
    locale = forms.CharField(max_length=16, help_text=Organization._meta.get_field("locale").help_text)
    currency = forms.CharField(
        max_length=3,
        help_text="ISO 4217 code, e.g. USD, EUR. A change converts every cost again from its original amount.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["timezone"].choices = [(name, name) for name in sorted(zoneinfo.available_timezones())]

    def clean_currency(self) -> str:
        return self.cleaned_data["currency"].strip().upper()


class TeamForm(PageForm):
    id_prefix = "team"

    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    lead = forms.ModelChoiceField(
        queryset=User.objects.none(), required=False, help_text=Team._meta.get_field("lead").help_text
    )

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["lead"].queryset = members_of(organization)


class TeamEditForm(TeamForm):
    archived = forms.BooleanField(
        required=False,
        help_text="Its projects stay in it and keep their history; it is offered for no other project until restored.",
    )


class CostCentreForm(PageForm):
    id_prefix = "cost_centre"

    code = forms.CharField(max_length=40, help_text=CostCentre._meta.get_field("code").help_text)
    name = forms.CharField(max_length=200)
    owner = forms.ModelChoiceField(
        queryset=User.objects.none(), required=False, help_text="Hears of its budgets' thresholds."
    )

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = members_of(organization)


class NotificationPreferencesForm(forms.Form):
    """One checkbox per kind of e-mail, ticked: received."""

    HELP = {
        NotificationKind.STATUS_DIGEST: "Sent to managers and admins when the week's status summary is ready.",
        NotificationKind.RISK_DIGEST: "Sent to managers and admins when the week's risk report is ready.",
        NotificationKind.REVIEW_REMINDER: (
            "Sent to a risk's owner 7 days and 1 day before its review is due, then when overdue."
        ),
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for kind in NotificationKind:
            self.fields[kind.value] = forms.BooleanField(required=False, label=kind.label, help_text=self.HELP[kind])
