"""Shapes and field validation of the ops resources; the rules live in ops.services."""

from decimal import Decimal

from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from ops.imports.prices import PriceSource
from ops.models import (
    Budget,
    CostEntry,
    InfrastructureComponent,
    ModelPrice,
    ModelProvider,
    NistGenAIRisk,
    OwaspLLMRisk,
    QualityMetric,
    Report,
    ReportKind,
    ReportState,
    Risk,
    Severity,
    SignalRule,
)
from ops.providers import known_provider
from ops.services.ingest import MAX_ROWS
from projects.api.serializers import (
    ScopedRelatedField,
    TagsField,
    cost_centre_field,
    organization_field,
    project_field,
    user_field,
)
from projects.models import Team
from projects.selectors import team_list
from tracker.api import StrictModelSerializer, StrictSerializer, creator_field


class ProviderField(serializers.ChoiceField):
    """A ModelProvider code; any spelling the vocabulary knows (ops/providers.py) is taken as its code."""

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", "Who bills the tokens, an OpenTelemetry gen_ai.provider.name value.")
        super().__init__(choices=ModelProvider.choices, **kwargs)

    def to_internal_value(self, data):
        known = known_provider(data) if isinstance(data, str) else None
        return super().to_internal_value(known.value if known else data)


NAMES = serializers.ListField(child=serializers.CharField(max_length=100), max_length=50, required=False)
TIMESTAMPS = ["created_at", "updated_at"]


class InfrastructureComponentSerializer(StrictModelSerializer):
    frameworks = serializers.ListField(
        child=serializers.CharField(max_length=100), max_length=50, required=False, help_text="e.g. LangChain, vLLM."
    )

    class Meta:
        model = InfrastructureComponent
        fields = [
            "id",
            "project",
            "name",
            "kind",
            "provider",
            "hosting",
            "region",
            "environment",
            "model_name",
            "model_version",
            "model_source",
            "frameworks",
            "gpu_type",
            "gpu_count",
            "notes",
            *TIMESTAMPS,
        ]
        read_only_fields = ["project", *TIMESTAMPS]
        extra_kwargs = {"gpu_count": {"max_value": 100_000}}


class InfrastructureComponentCreateSerializer(InfrastructureComponentSerializer):
    project = project_field()


class BudgetSerializer(StrictModelSerializer):
    thresholds = serializers.ListField(
        child=serializers.DecimalField(max_digits=6, decimal_places=2, min_value=Decimal("0.01"), max_value=1000),
        max_length=10,
        required=False,
        help_text="Alert at these % of the amount, each once per period (default 50, 80, 100); "
        "100 + tolerance_pct always alerts too.",
    )

    class Meta:
        model = Budget
        fields = [
            "id",
            "project",
            "team",
            "cost_centre",
            "period_start",
            "period_end",
            "amount",
            "category",
            "tolerance_pct",
            "thresholds",
            "recurrence",
            "notes",
            *TIMESTAMPS,
        ]
        read_only_fields = ["project", "team", "cost_centre", *TIMESTAMPS]

    def to_internal_value(self, data):
        values = super().to_internal_value(data)
        if "thresholds" in values:  # stored as JSON numbers
            values["thresholds"] = [int(t) if t == t.to_integral_value() else float(t) for t in values["thresholds"]]
        return values


class BudgetCreateSerializer(BudgetSerializer):
    """Exactly one of project, team and cost_centre owns the budget."""

    project = project_field(required=False, allow_null=True)
    team = ScopedRelatedField(Team, team_list, required=False, allow_null=True)
    cost_centre = cost_centre_field(required=False, allow_null=True)


class CostEntrySerializer(StrictModelSerializer):
    tags = TagsField(required=False)
    amount = serializers.DecimalField(
        max_digits=14,
        decimal_places=4,
        min_value=0,
        allow_null=True,
        help_text="In the organization's currency (converted from `original_amount`); null for usage no price "
        "covered (see `priced`). Required when you record a cost: then in `currency`.",
    )
    provider = serializers.ChoiceField(
        choices=ModelProvider.choices,
        allow_blank=True,
        read_only=True,
        help_text="Who billed the usage; blank otherwise.",
    )
    priced = serializers.BooleanField(
        source="is_priced", read_only=True, help_text="False: unpriced usage, waiting for a price (figures incomplete)."
    )
    currency = serializers.CharField(
        min_length=3,
        max_length=3,
        write_only=True,
        required=False,
        help_text="ISO 4217 code of the `amount` you send; default: the organization's currency.",
    )

    class Meta:
        model = CostEntry
        fields = [
            "id",
            "project",
            "date",
            "category",
            "amount",
            "currency",
            "original_amount",
            "original_currency",
            "exchange_rate",
            "exchange_rate_date",
            "description",
            "model",
            "provider",
            "input_tokens",
            "cached_input_tokens",
            "output_tokens",
            "requests",
            "gpu_hours",
            "energy_kwh",
            "source",
            "price",
            "priced",
            "external_id",
            "tags",
            "created_by",
            *TIMESTAMPS,
        ]
        read_only_fields = [
            "project",
            "provider",
            "source",
            "price",
            "created_by",
            "original_amount",
            "original_currency",
            "exchange_rate",
            "exchange_rate_date",
            *TIMESTAMPS,
        ]
        extra_kwargs = {
            "original_amount": {"help_text": "The amount as sent, in `original_currency`."},
            "original_currency": {"help_text": "ISO 4217 code of the amount as sent."},
            "exchange_rate": {"help_text": "1 original_currency = exchange_rate of the organization's currency."},
            "exchange_rate_date": {
                "help_text": "The day of the rate: before `date` when none was published that day (weekend, holiday)."
            },
        }


class CostEntryCreateSerializer(CostEntrySerializer):
    project = project_field()


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Two invoices",
            value={
                "entries": [
                    {
                        "project": 1,
                        "date": "2026-03-01",
                        "category": "inference",
                        "amount": "1250.00",
                        "currency": "EUR",
                        "external_id": "inv-2026-03-001",
                    },
                    {"project": 1, "date": "2026-03-01", "category": "storage", "amount": "80.50"},
                ]
            },
            request_only=True,
        )
    ]
)
class CostBulkSerializer(StrictSerializer):
    """Up to 10,000 costs; all are recorded or none."""

    entries = CostEntryCreateSerializer(many=True, max_length=MAX_ROWS, min_length=1)


class UsageRowSerializer(StrictSerializer):
    project = serializers.IntegerField(min_value=1)
    date = serializers.DateField()
    model = serializers.CharField(max_length=200, help_text="As named in the organization's model prices.")
    provider = ProviderField(
        required=False, help_text="Who billed it; leave out when one provider alone prices the model."
    )
    input_tokens = serializers.IntegerField(min_value=0, help_text="Input tokens, not counting cached ones.")
    output_tokens = serializers.IntegerField(min_value=0)
    cached_input_tokens = serializers.IntegerField(min_value=0, required=False)
    requests = serializers.IntegerField(min_value=0, required=False)
    description = serializers.CharField(max_length=500, required=False)
    external_id = serializers.CharField(max_length=200, required=False, help_text="Resending it is a no-op.")


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A night of gateway traffic",
            value={
                "entries": [
                    {
                        "project": 1,
                        "date": "2026-03-01",
                        "model": "gpt-4o",
                        "input_tokens": 1_200_000,
                        "output_tokens": 300_000,
                        "requests": 5400,
                        "external_id": "gw-2026-03-01-support",
                    }
                ]
            },
            request_only=True,
        )
    ]
)
class UsageBulkSerializer(StrictSerializer):
    """Up to 10,000 usage rows; all are priced and recorded, or none."""

    entries = UsageRowSerializer(many=True, max_length=MAX_ROWS, min_length=1)


class ExistingRowSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The row's position in the request.")
    external_id = serializers.CharField()
    id = serializers.IntegerField(help_text="The cost entry already recorded.")


class IngestResultSerializer(serializers.Serializer):
    created = serializers.IntegerField(help_text="How many entries were recorded.")
    created_ids = serializers.ListField(child=serializers.IntegerField(), help_text="Their ids, in request order.")
    existing = ExistingRowSerializer(many=True, help_text="Rows whose external id was already recorded: skipped.")


class ModelPriceSerializer(StrictModelSerializer):
    provider = ProviderField()
    regions = NAMES

    class Meta:
        model = ModelPrice
        fields = [
            "id",
            "organization",
            "provider",
            "model",
            "input_per_mtok",
            "cached_input_per_mtok",
            "output_per_mtok",
            "valid_from",
            "deprecation_date",
            "regions",
            "currency",
            *TIMESTAMPS,
        ]
        read_only_fields = ["organization", *TIMESTAMPS]
        extra_kwargs = {
            "currency": {
                "required": False,
                "help_text": "ISO 4217 code the prices are in; default: the organization's. "
                "Usage priced with it is converted to the organization's currency.",
            }
        }


class ModelPriceCreateSerializer(ModelPriceSerializer):
    organization = organization_field(
        required=False, help_text="Required when you belong to more than one organization."
    )


class QualityMetricSerializer(StrictModelSerializer):
    class Meta:
        model = QualityMetric
        fields = [
            "id",
            "project",
            "date",
            "metric",
            "name",
            "value",
            "threshold",
            "higher_is_better",
            "notes",
            *TIMESTAMPS,
        ]
        read_only_fields = ["project", *TIMESTAMPS]
        extra_kwargs = {"higher_is_better": {"help_text": "Defaults to the metric's usual direction."}}


class QualityMetricCreateSerializer(QualityMetricSerializer):
    project = project_field()


RISK_READ_ONLY = [
    "organization",
    "score",
    "severity",
    "status",
    "source",
    "signal_rule",
    "last_reviewed_at",
    "accepted_by",
    "acceptance_justification",
    "acceptance_expires",
    "closed_at",
    "status_note",
    *TIMESTAMPS,
]


class RiskSerializer(StrictModelSerializer):
    owner = user_field(allow_null=True, required=False)
    # Computed by the database (generated columns): their codes, read-only.
    severity = serializers.ChoiceField(choices=Severity.choices, read_only=True)
    signal_rule = serializers.ChoiceField(
        choices=SignalRule.choices,
        allow_blank=True,
        read_only=True,
        help_text="The rule that raised it (signals only).",
    )
    nist_refs = serializers.ListField(
        child=serializers.ChoiceField(choices=NistGenAIRisk.choices), required=False, max_length=20
    )
    owasp_refs = serializers.ListField(
        child=serializers.ChoiceField(choices=OwaspLLMRisk.choices), required=False, max_length=10
    )
    note = serializers.CharField(
        write_only=True, required=False, allow_blank=True, max_length=5000, help_text="Why it was reassessed."
    )

    class Meta:
        model = Risk
        fields = [
            "id",
            "organization",
            "project",
            "title",
            "description",
            "category",
            "likelihood",
            "impact",
            "score",
            "severity",
            "status",
            "treatment",
            "owner",
            "mitigation_plan",
            "residual_likelihood",
            "residual_impact",
            "next_review_date",
            "last_reviewed_at",
            "nist_refs",
            "owasp_refs",
            "source",
            "signal_rule",
            "accepted_by",
            "acceptance_justification",
            "acceptance_expires",
            "closed_at",
            "status_note",
            "note",
            *TIMESTAMPS,
        ]
        read_only_fields = [*[f for f in RISK_READ_ONLY if f != "status"], "project"]
        extra_kwargs = {"status": {"help_text": "Open or mitigating here: accept and close have their own actions."}}


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Hallucinated refunds",
            value={
                "project": 1,
                "title": "The assistant promises refunds policy does not allow",
                "category": "reliability",
                "likelihood": 4,
                "impact": 4,
                "owasp_refs": ["LLM09"],
                "nist_refs": ["confabulation"],
            },
            request_only=True,
        )
    ]
)
class RiskCreateSerializer(RiskSerializer):
    project = project_field(required=False, allow_null=True, help_text="Leave out for a portfolio-wide risk.")
    organization = organization_field(required=False, help_text="For a portfolio-wide risk (no project).")
    note = None

    class Meta(RiskSerializer.Meta):
        fields = [f for f in RiskSerializer.Meta.fields if f != "note"]
        read_only_fields = [f for f in RISK_READ_ONLY if f != "organization"]


class RiskAcceptSerializer(StrictSerializer):
    justification = serializers.CharField(max_length=5000)
    expires = serializers.DateField(help_text="When the acceptance lapses and the risk needs a new decision.")


class RiskCloseSerializer(StrictSerializer):
    note = serializers.CharField(max_length=5000, help_text="Why the risk no longer applies.")


@extend_schema_serializer(deprecate_fields=["requested_by"])
class ReportSerializer(StrictModelSerializer):
    created_by = creator_field("requested_by_id")
    data = serializers.SerializerMethodField(help_text="The report's content, once its state is ready; else null.")

    class Meta:
        model = Report
        fields = [
            "id",
            "organization",
            "project",
            "kind",
            "period_start",
            "period_end",
            "state",
            "created_by",
            "requested_by",
            "notify",
            "started_at",
            "generated_at",
            "revised_at",
            "error",
            "data",
            *TIMESTAMPS,
        ]
        read_only_fields = fields
        extra_kwargs = {"requested_by": {"help_text": "Deprecated: use created_by."}}

    def get_data(self, report: Report) -> dict | None:
        return report.data if report.state == ReportState.READY else None


class ReportListSerializer(ReportSerializer):
    """Reports without their content: fetch one to read it."""

    class Meta(ReportSerializer.Meta):
        fields = [f for f in ReportSerializer.Meta.fields if f != "data"]
        read_only_fields = fields


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Last week's risk report",
            value={"kind": "risk", "period_start": "2026-03-02", "period_end": "2026-03-08"},
            request_only=True,
        )
    ]
)
class ReportRequestSerializer(StrictSerializer):
    kind = serializers.ChoiceField(choices=ReportKind.choices)
    organization = organization_field(required=False, help_text="Defaults to the project's, or your only one.")
    project = project_field(required=False, allow_null=True)
    period_start = serializers.DateField(help_text="A Monday, or the first day of a month.")
    period_end = serializers.DateField(help_text="Inclusive: the Sunday of that week, or the last day of that month.")
    notify = serializers.BooleanField(
        default=False, help_text="E-mail the digest to the organization's managers once the report is ready."
    )


class RepriceRequestSerializer(StrictSerializer):
    organization = organization_field(required=False, help_text="Required when you belong to more than one.")
    dry_run = serializers.BooleanField(default=True, help_text="List what would change; write nothing.")
    include_priced = serializers.BooleanField(
        default=False, help_text="Reprice already priced usage too (its price or amount differs from today's prices)."
    )
    model = serializers.CharField(max_length=200, required=False, help_text="Only this model (dry run).")
    entries = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        max_length=10_000,
        required=False,
        help_text="To apply: the entry ids a dry run listed. Exactly these are repriced.",
    )


class RepriceChangeSerializer(serializers.Serializer):
    entry = serializers.IntegerField()
    project = serializers.IntegerField()
    project_name = serializers.CharField()
    date = serializers.DateField()
    provider = serializers.CharField()
    model = serializers.CharField()
    old_amount = serializers.CharField(allow_null=True, help_text="Null: it waited unpriced.")
    new_amount = serializers.CharField()
    price = serializers.IntegerField()


class RepriceTotalSerializer(serializers.Serializer):
    project = serializers.IntegerField()
    project_name = serializers.CharField()
    entries = serializers.IntegerField()
    old_total = serializers.CharField()
    new_total = serializers.CharField()
    difference = serializers.CharField()


class RepricePlanSerializer(serializers.Serializer):
    applied = serializers.BooleanField()
    entries = serializers.ListField(child=serializers.IntegerField(), help_text="Send these back to apply.")
    changes = RepriceChangeSerializer(many=True)
    totals = RepriceTotalSerializer(many=True, help_text="Per project.")
    still_unpriced = serializers.IntegerField(help_text="Waiting entries no price covers yet.")
    more = serializers.BooleanField(help_text="More than 10,000 entries qualify: apply, then run again.")


class PriceImportRequestSerializer(StrictSerializer):
    organization = organization_field(required=False, help_text="Required when you belong to more than one.")
    source = serializers.ChoiceField(choices=PriceSource.choices)
    book = serializers.JSONField(
        required=False, help_text="LiteLLM: the content of model_prices_and_context_window.json (genai-prices: none)."
    )
    dry_run = serializers.BooleanField(default=True, help_text="Show the diff; write nothing.")
    digest = serializers.CharField(
        max_length=64, required=False, help_text="To apply: a dry run's digest; 409 if the plan changed since."
    )


class PriceRatesSerializer(serializers.Serializer):
    input_per_mtok = serializers.CharField()
    cached_input_per_mtok = serializers.CharField(allow_null=True)
    output_per_mtok = serializers.CharField()


# Inline, not a nullable reference to the component: OpenAPI 3.0 ignores `nullable` beside a `$ref`.
_RATES_OR_NULL = {
    "type": "object",
    "nullable": True,
    "properties": {
        "input_per_mtok": {"type": "string"},
        "cached_input_per_mtok": {"type": "string", "nullable": True},
        "output_per_mtok": {"type": "string"},
    },
    "required": ["input_per_mtok", "cached_input_per_mtok", "output_per_mtok"],
}


@extend_schema_field(_RATES_OR_NULL)
class _RatesOrNullField(serializers.JSONField):
    pass


class PriceImportChangeSerializer(PriceRatesSerializer):
    provider = serializers.CharField()
    model = serializers.CharField()
    valid_from = serializers.DateField()
    old = _RatesOrNullField(allow_null=True, help_text="The price in effect before (changed prices); null for new.")
    deprecation_date = serializers.DateField(allow_null=True)


class PriceImportDeprecationSerializer(serializers.Serializer):
    price = serializers.IntegerField()
    provider = serializers.CharField()
    model = serializers.CharField()
    valid_from = serializers.DateField()
    old = serializers.DateField(allow_null=True)
    new = serializers.DateField()


class PriceImportKeptSerializer(serializers.Serializer):
    provider = serializers.CharField()
    model = serializers.CharField()
    valid_from = serializers.DateField()


class PriceImportRepriceSerializer(serializers.Serializer):
    entries = serializers.IntegerField(help_text="Waiting usage entries the new prices price.")
    totals = RepriceTotalSerializer(many=True)
    still_unpriced = serializers.IntegerField()


class PriceImportSerializer(serializers.Serializer):
    applied = serializers.BooleanField()
    source = serializers.CharField()
    version = serializers.CharField()
    models_read = serializers.IntegerField()
    digest = serializers.CharField(help_text="Send it back with dry_run false to apply exactly this diff.")
    new = PriceImportChangeSerializer(many=True, help_text="Prices of models the organization had none for.")
    changed = PriceImportChangeSerializer(many=True, help_text="New prices of priced models, from valid_from.")
    deprecations = PriceImportDeprecationSerializer(many=True)
    unchanged = serializers.IntegerField()
    kept = PriceImportKeptSerializer(many=True, help_text="Book prices not applied: the organization's own stay.")
    not_imported = serializers.DictField(child=serializers.IntegerField(), help_text="What the book holds, unpriced.")
    unknown_providers = serializers.DictField(child=serializers.IntegerField())
    reprice = PriceImportRepriceSerializer(
        help_text="Waiting usage the prices would price: apply it with POST /api/v1/model-prices/reprice/."
    )
