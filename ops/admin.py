"""Admin for infrastructure, budgets, costs, prices and rates, imports and bills, quality metrics, risks and reports.

Cost entries and billed costs run to millions of rows: their pages skip the full count and join what they list.
Risk scores and severities are computed by the database and only shown; assessments are history.
"""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from ops.imports.models import BilledCost, BillingMappingRule, ImportJob
from ops.models import (
    Budget,
    BudgetThresholdCrossing,
    CostEntry,
    EnergyRun,
    ExchangeRate,
    InfrastructureComponent,
    ModelPrice,
    QualityMetric,
    ReferenceRate,
    Report,
    ReviewReminder,
    Risk,
    RiskAssessment,
    RiskSnapshot,
    SpendSnapshot,
)
from ops.selectors.portfolio import review_overdue
from projects.admin import AuditedAdminMixin, InlineRowsFormSet, LatestRowsFormSet, ProjectAdmin, ReadOnlyAdminMixin


class PricedFilter(admin.SimpleListFilter):
    title = "priced"
    parameter_name = "priced"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Priced"), ("no", "Unpriced usage")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in ("yes", "no"):
            return queryset.filter(amount__isnull=self.value() == "no")
        return queryset


class OverdueReviewFilter(admin.SimpleListFilter):
    title = "review"
    parameter_name = "review"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("overdue", "Review overdue")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "overdue":
            return queryset.filter(review_overdue(timezone.localdate()))
        return queryset


@admin.register(InfrastructureComponent)
class InfrastructureComponentAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = [
        "name",
        "project",
        "kind",
        "provider",
        "hosting",
        "environment",
        "model_name",
        "gpu_type",
        "gpu_count",
    ]
    list_filter = ["kind", "provider", "hosting", "environment", "model_source"]
    search_fields = ["name", "model_name", "gpu_type", "project__name"]
    list_select_related = ["project"]
    autocomplete_fields = ["project"]


@admin.register(Budget)
class BudgetAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["project", "period_start", "period_end", "amount", "category", "tolerance_pct"]
    list_filter = ["category"]
    search_fields = ["project__name", "notes"]
    list_select_related = ["project"]
    autocomplete_fields = ["project"]
    date_hierarchy = "period_start"


@admin.register(ModelPrice)
class ModelPriceAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = [
        "model",
        "provider",
        "organization",
        "input_per_mtok",
        "cached_input_per_mtok",
        "output_per_mtok",
        "valid_from",
        "deprecation_date",
    ]
    list_filter = ["provider", "organization"]
    search_fields = ["model", "provider"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]


@admin.register(CostEntry)
class CostEntryAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = [
        "date",
        "project",
        "category",
        "amount",
        "model",
        "input_tokens",
        "output_tokens",
        "source",
        "priced",
    ]
    list_filter = ["category", "source", PricedFilter]
    search_fields = ["project__name", "description", "model", "external_id"]
    list_select_related = ["project"]
    autocomplete_fields = ["project"]
    raw_id_fields = ["price", "created_by"]
    readonly_fields = ["price"]
    date_hierarchy = "date"
    show_full_result_count = False

    @admin.display(boolean=True, description="Priced")
    def priced(self, obj: CostEntry) -> bool:
        return obj.is_priced


@admin.register(BudgetThresholdCrossing)
class BudgetThresholdCrossingAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Written once by the budget evaluation, which then notifies: history, only read."""

    list_display = ["budget", "threshold_pct", "period_start", "period_end", "spend", "amount", "crossed_on"]
    search_fields = ["budget__project__name", "budget__team__name", "budget__cost_centre__name"]
    list_select_related = ["budget__project", "budget__team", "budget__cost_centre"]
    date_hierarchy = "crossed_on"


@admin.register(ExchangeRate)
class ExchangeRateAdmin(admin.ModelAdmin):
    """An organization's own rates, typed in by operators; they win over ECB's (ops/money.py)."""

    list_display = ["organization", "currency", "quote_currency", "rate", "valid_from"]
    list_filter = ["currency", "quote_currency", "organization"]
    search_fields = ["organization__name", "currency", "quote_currency"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]
    date_hierarchy = "valid_from"


@admin.register(ReferenceRate)
class ReferenceRateAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: the ECB's rates, loaded again to change them (`manage.py fx_rates_load`)."""

    list_display = ["date", "currency", "per_euro"]
    list_filter = ["currency"]
    search_fields = ["currency"]
    date_hierarchy = "date"
    show_full_result_count = False


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: jobs are made by uploads and the import commands, and run by the workers."""

    list_display = ["created_at", "format", "filename", "organization", "status", "rows_done", "rows_total"]
    list_display += ["error_count", "created_by", "finished_at"]
    list_filter = ["status", "format"]
    search_fields = ["filename", "organization__name", "failure"]
    list_select_related = ["organization", "created_by"]
    date_hierarchy = "created_at"


@admin.register(BillingMappingRule)
class BillingMappingRuleAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["field", "value", "project", "organization", "created_by", "created_at"]
    list_filter = ["field", "organization"]
    search_fields = ["value", "project__name", "organization__name"]
    list_select_related = ["project", "organization", "created_by"]
    autocomplete_fields = ["organization", "project"]
    readonly_fields = ["created_by"]

    def save_model(self, request: HttpRequest, obj: BillingMappingRule, form, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(BilledCost)
class BilledCostAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: rows of the FOCUS bills, imported again to change them (ops/imports/focus.py)."""

    list_display = ["charge_period_start", "source", "organization", "project", "charge_category", "billed_cost"]
    list_display += ["effective_cost", "currency", "service_name"]
    list_filter = ["charge_category", ("project", admin.EmptyFieldListFilter)]
    search_fields = ["source", "service_name", "sku_id", "resource_id", "sub_account_id", "project__name"]
    list_select_related = ["organization", "project"]
    date_hierarchy = "charge_period_start"
    show_full_result_count = False


@admin.register(QualityMetric)
class QualityMetricAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["project", "date", "metric", "name", "value", "threshold", "higher_is_better", "breached"]
    list_filter = ["metric", "higher_is_better"]
    search_fields = ["project__name", "name", "notes"]
    list_select_related = ["project"]
    autocomplete_fields = ["project"]
    date_hierarchy = "date"

    @admin.display(boolean=True, description="Breached")
    def breached(self, obj: QualityMetric) -> bool:
        return obj.breached


class RiskAssessmentInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = RiskAssessment
    fields = ["assessed_at", "likelihood", "impact", "score", "by", "note"]
    readonly_fields = fields
    ordering = ["-assessed_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("by")


@admin.register(Risk)
class RiskAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = [
        "title",
        "project",
        "category",
        "score",
        "severity",
        "status",
        "treatment",
        "owner",
        "next_review_date",
        "source",
    ]
    list_filter = ["severity", "status", "category", "treatment", "source", OverdueReviewFilter, "organization"]
    search_fields = ["title", "description", "project__name", "signal_key"]
    list_select_related = ["project", "owner"]
    autocomplete_fields = ["organization", "project", "owner", "accepted_by"]
    # Score and severity are generated by the database; the rest are set by the risk services.
    readonly_fields = ["score", "severity", "last_reviewed_at", "closed_at", "source", "signal_rule", "signal_key"]
    inlines = [RiskAssessmentInline]
    fieldsets = [
        (None, {"fields": ["organization", "project", "title", "description", "category", "owner"]}),
        ("Rating", {"fields": ["likelihood", "impact", "score", "severity", "residual_likelihood", "residual_impact"]}),
        ("Treatment", {"fields": ["status", "treatment", "mitigation_plan", "next_review_date", "last_reviewed_at"]}),
        ("References", {"fields": ["nist_refs", "owasp_refs"]}),
        (
            "Decisions",
            {"fields": ["accepted_by", "acceptance_justification", "acceptance_expires", "closed_at", "status_note"]},
        ),
        ("Origin", {"fields": ["source", "signal_rule", "signal_key"]}),
    ]


@admin.register(RiskAssessment)
class RiskAssessmentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["risk", "assessed_at", "likelihood", "impact", "score", "by"]
    search_fields = ["risk__title", "note"]
    list_select_related = ["risk", "by"]
    date_hierarchy = "assessed_at"


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = ["kind", "organization", "project", "period_start", "period_end", "state", "generated_at"]
    list_filter = ["kind", "state", "organization"]
    search_fields = ["organization__name", "project__name", "error"]
    list_select_related = ["organization", "project"]
    autocomplete_fields = ["organization", "project", "requested_by"]
    # Reports are built by the Celery jobs: their state and content are only shown.
    readonly_fields = [
        "state",
        "progress",
        "step",
        "attempts",
        "started_at",
        "generated_at",
        "digest_sent_at",
        "error",
        "data",
    ]
    date_hierarchy = "period_start"


@admin.register(RiskSnapshot)
class RiskSnapshotAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["organization", "date", "low", "medium", "high", "critical"]
    list_filter = ["organization"]
    list_select_related = ["organization"]
    date_hierarchy = "date"


@admin.register(SpendSnapshot)
class SpendSnapshotAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["project", "date", "spend_day", "spend_to_date", "unpriced_entries"]
    search_fields = ["project__name"]
    list_select_related = ["project"]
    date_hierarchy = "date"
    show_full_result_count = False


@admin.register(EnergyRun)
class EnergyRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: runs come from CodeCarbon files, imported again to change them (ops/imports/codecarbon.py)."""

    list_display = ["run_id", "project", "recorded_at", "energy_kwh", "emissions_kg", "cloud_provider"]
    search_fields = ["run_id", "project__name"]
    list_select_related = ["project"]
    date_hierarchy = "recorded_at"


@admin.register(ReviewReminder)
class ReviewReminderAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["risk", "kind", "review_date", "recipient", "sent_at"]
    list_filter = ["kind"]
    search_fields = ["risk__title", "recipient"]
    list_select_related = ["risk"]
    date_hierarchy = "sent_at"


class RiskInlineFormSet(InlineRowsFormSet):
    def save_new(self, form, commit=True):
        # A risk added on a project's page belongs to the project's organization.
        form.instance.organization_id = self.instance.organization_id
        return super().save_new(form, commit=commit)


class RiskInline(admin.TabularInline):
    model = Risk
    formset = RiskInlineFormSet
    extra = 0
    fields = ["title", "category", "likelihood", "impact", "score", "severity", "status", "next_review_date"]
    readonly_fields = ["score", "severity"]
    show_change_link = True


class CostEntryInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The newest cost entries only: a project has hundreds, the cost changelist has them all."""

    model = CostEntry
    formset = LatestRowsFormSet
    fields = ["date", "category", "amount", "model", "input_tokens", "output_tokens", "source"]
    readonly_fields = fields
    ordering = ["-date", "-id"]
    show_change_link = True
    classes = ["collapse"]
    verbose_name_plural = f"cost entries (newest {LatestRowsFormSet.limit})"


# The project's page in the admin lists its risks and newest costs; projects/ knows nothing of ops.
ProjectAdmin.inlines = [*ProjectAdmin.inlines, RiskInline, CostEntryInline]
