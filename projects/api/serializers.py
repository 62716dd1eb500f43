"""Shapes and field validation of the projects resources; the rules live in projects.services."""

from collections.abc import Callable
from decimal import ROUND_HALF_UP

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Model, QuerySet
from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from projects import selectors
from projects.figures import figures_complete
from projects.models import (
    ApiToken,
    CostCentre,
    Health,
    Invitation,
    Membership,
    Organization,
    Project,
    Stage,
    StageTransition,
    StatusUpdate,
    Team,
    TokenScope,
)
from projects.tags import tags_validate
from tracker.api import StrictModelSerializer, StrictSerializer, creator_field

User = get_user_model()


class ScopedRelatedField(serializers.PrimaryKeyRelatedField):
    """A primary key looked up only among the caller's rows: others' ids are "does not exist"."""

    def __init__(self, model: type[Model], selector: Callable[..., QuerySet], **kwargs):
        self.selector = selector
        kwargs.setdefault("queryset", model.objects.none())
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet:
        request = self.context.get("request")
        return self.selector(user=request.user) if request else super().get_queryset()

    def to_internal_value(self, data):
        # A float id would be truncated (3.5 → 3) or, when infinite, overflow into a 500.
        if isinstance(data, float) and not data.is_integer():
            self.fail("incorrect_type", data_type=type(data).__name__)
        return super().to_internal_value(data)


def colleagues(*, user) -> QuerySet:
    """Return the users who share an organization with `user`."""
    return User.objects.filter(
        memberships__organization__in=selectors.organization_list(user=user), service_account=None
    ).distinct()


def organization_field(**kwargs) -> ScopedRelatedField:
    return ScopedRelatedField(Organization, selectors.organization_list, **kwargs)


def project_field(**kwargs) -> ScopedRelatedField:
    return ScopedRelatedField(Project, selectors.project_list, **kwargs)


def user_field(**kwargs) -> ScopedRelatedField:
    return ScopedRelatedField(User, colleagues, **kwargs)


def cost_centre_field(**kwargs) -> ScopedRelatedField:
    return ScopedRelatedField(CostCentre, selectors.cost_centre_list, **kwargs)


@extend_schema_field(
    {"type": "object", "additionalProperties": {"type": "string", "maxLength": 256}, "maxProperties": 50}
)
class TagsField(serializers.JSONField):
    """Tags as an object of key: value (projects/tags.py: keys lower-case letters, digits and _ . : / -)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", 'key: value labels, e.g. {"env": "prod", "owner": "search"}.')
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        try:
            tags_validate(data)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc
        return data


class OrganizationSerializer(StrictModelSerializer):
    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "currency", "timezone", "locale", "created_at", "updated_at"]
        read_only_fields = ["slug", "created_at", "updated_at"]


class TeamSerializer(StrictModelSerializer):
    class Meta:
        model = Team
        fields = ["id", "organization", "name", "slug", "description", "created_at", "updated_at"]
        read_only_fields = ["organization", "slug", "created_at", "updated_at"]


class TeamCreateSerializer(TeamSerializer):
    organization = organization_field()

    class Meta(TeamSerializer.Meta):
        read_only_fields = ["slug", "created_at", "updated_at"]


class CostCentreSerializer(StrictModelSerializer):
    owner = user_field(allow_null=True, required=False, help_text="A member: hears of its budgets' thresholds.")

    class Meta:
        model = CostCentre
        fields = ["id", "organization", "code", "name", "owner", "created_at", "updated_at"]
        read_only_fields = ["organization", "created_at", "updated_at"]


class CostCentreCreateSerializer(CostCentreSerializer):
    organization = organization_field(
        required=False, help_text="Required when you belong to more than one organization."
    )

    class Meta(CostCentreSerializer.Meta):
        read_only_fields = ["created_at", "updated_at"]


class MembershipSerializer(StrictModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "organization", "user", "username", "role", "created_at", "updated_at"]
        read_only_fields = ["organization", "user", "created_at", "updated_at"]


@extend_schema_serializer(deprecate_fields=["invited_by"])
class InvitationSerializer(StrictModelSerializer):
    """A pending invitation; the link itself is only ever in the e-mail sent to the address."""

    expired = serializers.BooleanField(source="is_expired", read_only=True)
    created_by = creator_field("invited_by_id")
    invited_by = serializers.CharField(
        source="invited_by.username",
        read_only=True,
        allow_null=True,
        default=None,
        help_text="Deprecated: the inviter's username; use created_by (their id).",
    )

    class Meta:
        model = Invitation
        fields = ["id", "organization", "email", "role", "created_by", "invited_by", "created_at", "expires_at"]
        fields += ["expired"]
        fields += ["last_sent_at", "send_count"]
        read_only_fields = ["organization", "email", "role", "created_at", "expires_at", "last_sent_at", "send_count"]


class InvitationResendSerializer(StrictSerializer):
    """Resending takes no input: an empty body (anything in it is refused)."""


class InvitationCreateSerializer(InvitationSerializer):
    organization = organization_field()

    class Meta(InvitationSerializer.Meta):
        read_only_fields = ["created_at", "expires_at", "last_sent_at", "send_count"]


PROJECT_FIELDS = [
    "id",
    "organization",
    "team",
    "name",
    "slug",
    "summary",
    "industry",
    "use_case",
    "business_owner",
    "technical_lead",
    "human_oversight_owner",
    "start_date",
    "target_date",
    "data_classification",
    "ai_act_tier",
    "stage",
    "stage_entered_at",
    "health",
    "progress",
    "last_status_date",
    "archived",
    "otel_service_names",
    "cost_centre",
    "tags",
    "spend_to_date",
    "spend_incomplete",
    "budget_period_start",
    "budget_period_end",
    "budget_amount",
    "budget_spend",
    "budget_spend_incomplete",
    "budget_used_pct",
    "budget_forecast",
    "budget_forecast_low",
    "budget_forecast_high",
    "budget_runs_out_on",
    "over_budget",
    "over_tolerance",
    "open_risks",
    "critical_risks",
    "created_at",
    "updated_at",
]


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A support chatbot",
            value={
                "organization": 1,
                "name": "Support assistant",
                "industry": "retail",
                "use_case": "customer_support",
                "data_classification": "personal",
            },
            request_only=True,
        )
    ]
)
class ProjectSerializer(StrictModelSerializer):
    organization = serializers.PrimaryKeyRelatedField(read_only=True)
    team = ScopedRelatedField(Team, selectors.team_list, allow_null=True, required=False)
    cost_centre = cost_centre_field(allow_null=True, required=False)
    tags = TagsField(required=False)
    business_owner = user_field(allow_null=True, required=False)
    technical_lead = user_field(allow_null=True, required=False)
    human_oversight_owner = user_field(allow_null=True, required=False)
    otel_service_names = serializers.ListField(
        child=serializers.CharField(max_length=200),
        max_length=20,
        required=False,
        help_text="The OpenTelemetry service.name values whose GenAI spans are this project's usage (docs/otlp.md).",
    )
    spend_to_date = serializers.DecimalField(
        max_digits=16,
        decimal_places=2,
        rounding=ROUND_HALF_UP,
        read_only=True,
        help_text="Priced spend up to today; unpriced usage excluded.",
    )
    spend_incomplete = serializers.BooleanField(
        read_only=True, help_text="True: spend_to_date leaves out unpriced usage (incomplete: unpriced usage)."
    )
    # The overall budget covering today and its status (docs/reports.md, "Budget status"); null without one.
    budget_period_start = serializers.DateField(read_only=True, allow_null=True)
    budget_period_end = serializers.DateField(read_only=True, allow_null=True)
    budget_amount = serializers.DecimalField(max_digits=14, decimal_places=2, read_only=True, allow_null=True)
    budget_spend = serializers.DecimalField(
        max_digits=16, decimal_places=2, read_only=True, allow_null=True, help_text="Spend in the budget period so far."
    )
    budget_spend_incomplete = serializers.BooleanField(
        read_only=True, help_text="True: budget_spend leaves out unpriced usage in the budget period."
    )
    budget_used_pct = serializers.DecimalField(max_digits=8, decimal_places=1, read_only=True, allow_null=True)
    budget_forecast = serializers.DecimalField(
        max_digits=16,
        decimal_places=2,
        read_only=True,
        allow_null=True,
        help_text="Spend at period end: a linear trend of the last 14 days' daily spend (docs/money.md).",
    )
    budget_forecast_low = serializers.DecimalField(
        max_digits=16,
        decimal_places=2,
        read_only=True,
        allow_null=True,
        help_text="Low end of the forecast's 90 % band (never below the spend so far).",
    )
    budget_forecast_high = serializers.DecimalField(
        max_digits=16, decimal_places=2, read_only=True, allow_null=True, help_text="High end of the forecast's band."
    )
    budget_runs_out_on = serializers.DateField(
        read_only=True,
        allow_null=True,
        help_text="The day the forecast spend passes the budget amount (today when it already has); "
        "null when it stays within it this period.",
    )
    over_budget = serializers.BooleanField(read_only=True)
    over_tolerance = serializers.BooleanField(read_only=True, help_text="Spend is over the amount plus its tolerance.")
    open_risks = serializers.IntegerField(read_only=True, help_text="Open or mitigating risks.")
    critical_risks = serializers.IntegerField(read_only=True, help_text="Open or mitigating critical risks.")
    health = serializers.ChoiceField(
        choices=Health.choices,
        allow_blank=True,
        read_only=True,
        help_text="From the newest status update; blank before one.",
    )

    class Meta:
        model = Project
        fields = PROJECT_FIELDS
        read_only_fields = ["stage", "stage_entered_at", "progress", "last_status_date"]
        extra_kwargs = {"slug": {"required": False}}

    def to_representation(self, instance: Project) -> dict:
        figures_complete(instance)
        return super().to_representation(instance)


class ProjectCreateSerializer(ProjectSerializer):
    organization = organization_field(
        required=False, help_text="Required when you belong to more than one organization."
    )


@extend_schema_serializer(deprecate_fields=["by"])
class TransitionSerializer(StrictModelSerializer):
    created_by = creator_field("by_id")

    class Meta:
        model = StageTransition
        fields = ["id", "project", "from_stage", "to_stage", "at", "created_by", "by", "note", "overridden_gates"]
        fields += ["override_reason"]
        read_only_fields = fields
        extra_kwargs = {"by": {"help_text": "Deprecated: use created_by."}}


@extend_schema_serializer(
    examples=[
        OpenApiExample("Move on", value={"to_stage": "evaluation", "note": "Prompting done."}, request_only=True),
        OpenApiExample(
            "Manager override",
            value={"to_stage": "pilot", "override_reason": "Budget signed off by the CFO, entry pending."},
            request_only=True,
        ),
    ]
)
class TransitionRequestSerializer(StrictSerializer):
    to_stage = serializers.ChoiceField(choices=Stage.choices)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    override_reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


@extend_schema_serializer(deprecate_fields=["author"])
class StatusUpdateSerializer(StrictModelSerializer):
    project = project_field()
    created_by = creator_field("author_id")

    class Meta:
        model = StatusUpdate
        fields = [
            "id",
            "project",
            "created_by",
            "author",
            "date",
            "health",
            "progress",
            "summary",
            "accomplishments",
            "blockers",
            "next_steps",
            "created_at",
        ]
        read_only_fields = ["author", "created_at"]
        extra_kwargs = {"author": {"help_text": "Deprecated: use created_by."}}


class ApiTokenSerializer(StrictModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]
        read_only_fields = ["prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]


class ApiTokenCreateSerializer(ApiTokenSerializer):
    password = serializers.CharField(
        write_only=True,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Your current password: minting a token re-authenticates you.",
    )
    expires_at = serializers.DateTimeField(
        required=False, help_text="When it stops working; API_TOKEN_LIFETIME_DAYS (90) from now by default."
    )

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "password"]


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    # Not read-only, so that the schema can say it may be absent: an answer only, never a body.
    key = serializers.CharField(
        required=False,
        help_text="The token itself: shown this once, never again (absent from an Idempotency-Key replay).",
    )

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "key"]


class ServiceTokenSerializer(StrictModelSerializer):
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True, default=None)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "organization",
            "name",
            "scope",
            "prefix",
            "created_by",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
        ]
        read_only_fields = fields


class ServiceTokenCreateSerializer(StrictSerializer):
    organization = organization_field()
    name = serializers.CharField(max_length=100)
    scope = serializers.ChoiceField(choices=TokenScope.choices)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, help_text="Empty: until revoked.")
    password = serializers.CharField(
        write_only=True,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Your current password: minting a token re-authenticates you.",
    )


class ServiceTokenCreatedSerializer(ServiceTokenSerializer):
    # Not read-only, so that the schema can say it may be absent: an answer only, never a body.
    key = serializers.CharField(
        required=False,
        help_text="The token itself: shown this once, never again (absent from an Idempotency-Key replay).",
    )

    class Meta(ServiceTokenSerializer.Meta):
        fields = [*ServiceTokenSerializer.Meta.fields, "key"]
        read_only_fields = fields
