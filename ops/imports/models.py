"""The records imports write: import jobs, billed costs (FOCUS bills) and the rules that map bills to projects.

ops/models.py imports this module so Django finds the models (app `ops`); nothing here imports services.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.urls import reverse

from projects.models import Organization, Project
from tracker.models import TimeStampedModel


class ImportStatus(models.TextChoices):
    PENDING = "pending", "Waiting for a worker"
    RUNNING = "running", "Importing"
    DONE = "done", "Imported"
    FAILED = "failed", "Failed"


class ImportFormat(models.TextChoices):
    """The formats the import machinery reads (`ops.imports.jobs.FORMATS` names each one's importer)."""

    FOCUS = "focus", "FOCUS bill"
    CODECARBON = "codecarbon", "CodeCarbon emissions.csv"
    CSV = "csv", "Cost entries (CSV)"


class SummaryFigure(models.TextChoices):
    """The per-project figures an import's summary holds (`Summary.by_project`), as the pages name them."""

    ROWS = "rows", "Rows"
    BILLED_COST = "billed_cost", "Billed"
    EFFECTIVE_COST = "effective_cost", "Effective"
    ENTRIES = "entries", "Entries"
    AMOUNT = "amount", "Amount"
    RUNS = "runs", "Runs"
    ENERGY_KWH = "energy_kwh", "Energy (kWh)"
    EMISSIONS_KG = "emissions_kg", "Emissions (kg CO₂eq)"
    LINKED_ENTRIES = "linked_entries", "Linked cost entries"


def _upload_to(job: "ImportJob", filename: str) -> str:
    # The stored name never comes from the client (its own name is kept in `filename`).
    return f"imports/{job.organization_id}/{uuid.uuid4().hex}"


class ImportJob(TimeStampedModel):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="import_jobs")
    format = models.CharField(max_length=20, choices=ImportFormat.choices)
    # Blank for a command-line import, which reads the local file in-process.
    file = models.FileField(upload_to=_upload_to, max_length=300, blank=True)
    filename = models.CharField(max_length=255, blank=True, help_text="The uploaded file's own name.")
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=ImportStatus.choices, default=ImportStatus.PENDING)
    rows_done = models.PositiveIntegerField(default=0)
    rows_total = models.PositiveIntegerField(default=0)
    summary = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(default=list, blank=True, help_text="The first refused lines, in detail.")
    error_count = models.PositiveIntegerField(default=0)
    failure = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")

    class Meta:
        app_label = "ops"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="import_job_org_created")]
        constraints = [models.CheckConstraint(condition=Q(rows_done__lte=F("rows_total")), name="import_done_le_total")]

    def __str__(self) -> str:
        return f"{self.format} import {self.filename or self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("ops:import-detail", args=[self.pk])

    @property
    def finished(self) -> bool:
        return self.status in (ImportStatus.DONE, ImportStatus.FAILED)

    MONEY_FIGURES = frozenset({SummaryFigure.BILLED_COST, SummaryFigure.EFFECTIVE_COST, SummaryFigure.AMOUNT})

    @property
    def summary_columns(self) -> list[str]:
        """The figures the summary gives per project, in the order the first project has them."""
        projects = self.summary.get("by_project") or {}
        first = next(iter(projects.values()), {})
        return [name for name in first if name in SummaryFigure.values]

    @property
    def summary_projects(self) -> list[tuple[str, list[tuple[str, object]]]]:
        """Each project's slug and its figures, in `summary_columns`' order."""
        columns = self.summary_columns
        return [
            (slug, [(name, figures.get(name)) for name in columns])
            for slug, figures in (self.summary.get("by_project") or {}).items()
        ]

    @property
    def progress_pct(self) -> int:
        if self.status == ImportStatus.DONE:
            return 100
        return min(99, self.rows_done * 100 // self.rows_total) if self.rows_total else 0


class ChargeCategory(models.TextChoices):
    """FOCUS ChargeCategory, spelled as the standard does (1.0 and 1.2 allowed values)."""

    USAGE = "Usage", "Usage"
    PURCHASE = "Purchase", "Purchase"
    TAX = "Tax", "Tax"
    CREDIT = "Credit", "Credit"
    ADJUSTMENT = "Adjustment", "Adjustment"


class MappingField(models.TextChoices):
    """The FOCUS columns a mapping rule can match, most specific first: the first matching rule wins."""

    RESOURCE_ID = "ResourceId", "Resource id"
    SUB_ACCOUNT_ID = "SubAccountId", "Sub-account id"
    SUB_ACCOUNT_NAME = "SubAccountName", "Sub-account name"
    SKU_ID = "SkuId", "SKU id"
    SERVICE_NAME = "ServiceName", "Service name"
    PROVIDER_NAME = "ProviderName", "Provider name"


class BillingMappingRule(TimeStampedModel):
    """A bill row whose `field` equals `value` belongs to `project` (when its Tags name no project)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="billing_rules")
    field = models.CharField(max_length=20, choices=MappingField.choices)
    value = models.CharField(max_length=300)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="billing_rules")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")

    class Meta:
        app_label = "ops"
        ordering = ["field", "value"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "field", "value"], name="billing_rule_unique"),
            models.CheckConstraint(condition=~Q(value=""), name="billing_rule_value_set"),
        ]

    def __str__(self) -> str:
        return f"{self.get_field_display()} = {self.value} → {self.project}"


class BilledCost(models.Model):
    """One row of a FOCUS bill: what the provider billed, kept apart from the tracker's cost entries.

    Rows with no project are the bill's unmapped rows: kept and reported, never dropped. A re-import
    of a billing period and source replaces that period's rows from that source; `row_hash` (the
    row's stored values and project) and `occurrence` (its rank among identical rows) let it keep
    the rows that did not change.
    """

    # No index of their own: each is the first column of a composite index below (an import pays every index per row).
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="billed_costs", db_index=False
    )
    project = models.ForeignKey(
        Project, on_delete=models.SET_NULL, null=True, blank=True, related_name="billed_costs", db_index=False
    )
    import_job = models.ForeignKey(ImportJob, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    source = models.CharField(max_length=200, help_text="Who issued the bill (ProviderName, or the import's source).")
    line = models.PositiveIntegerField(help_text="The row's line in the file it came from.")
    billing_period_start = models.DateTimeField()
    billing_period_end = models.DateTimeField()
    charge_period_start = models.DateTimeField()
    charge_period_end = models.DateTimeField()
    charge_category = models.CharField(max_length=12, choices=ChargeCategory.choices)
    charge_class = models.CharField(max_length=20, blank=True)
    # Credits and refunds are negative: no sign constraint, as FOCUS allows.
    billed_cost = models.DecimalField(max_digits=20, decimal_places=8)
    effective_cost = models.DecimalField(max_digits=20, decimal_places=8, null=True, blank=True)
    list_cost = models.DecimalField(max_digits=20, decimal_places=8, null=True, blank=True)
    currency = models.CharField(max_length=3, help_text="The organization's: the three costs above are in it.")
    # A row billed in another currency: its costs as billed, and the rate that turned them into the
    # organization's currency (ops/money.py). Blank/1 for a row billed in it. Database defaults keep the
    # release before able to insert.
    original_currency = models.CharField(max_length=3, blank=True, default="", db_default="")
    original_billed_cost = models.DecimalField(max_digits=20, decimal_places=8, null=True, blank=True)
    original_effective_cost = models.DecimalField(max_digits=20, decimal_places=8, null=True, blank=True)
    original_list_cost = models.DecimalField(max_digits=20, decimal_places=8, null=True, blank=True)
    exchange_rate = models.DecimalField(max_digits=18, decimal_places=6, default=1, db_default=1)
    exchange_rate_date = models.DateField(null=True, blank=True)
    service_name = models.CharField(max_length=300, blank=True)
    sku_id = models.CharField(max_length=300, blank=True)
    resource_id = models.CharField(max_length=500, blank=True)
    consumed_quantity = models.DecimalField(max_digits=24, decimal_places=8, null=True, blank=True)
    consumed_unit = models.CharField(max_length=100, blank=True)
    sub_account_id = models.CharField(max_length=300, blank=True)
    # The row's FOCUS `Tags` as our tags (`ops.focus.tags_from_focus`); the `tracker_` keys left out.
    tags = models.JSONField(default=dict, blank=True)
    row_hash = models.CharField(max_length=32)
    occurrence = models.PositiveIntegerField(default=1)

    class Meta:
        app_label = "ops"
        ordering = ["billing_period_start", "line"]
        indexes = [
            models.Index(fields=["project", "charge_period_start"], name="billed_project_charge"),
            models.Index(fields=["organization", "charge_period_start"], name="billed_org_charge"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "source", "billing_period_start", "row_hash", "occurrence"],
                name="billed_cost_row_unique",
            ),
            models.CheckConstraint(
                condition=Q(billing_period_end__gt=F("billing_period_start"))
                & Q(charge_period_end__gte=F("charge_period_start")),
                name="billed_cost_periods_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.charge_category} {self.billed_cost} {self.currency}"
