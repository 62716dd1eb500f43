"""Query-string filters of the ops resources."""

import django_filters as filters

from ops.models import Budget, CostEntry, InfrastructureComponent, ModelPrice, QualityMetric, Report, Risk, Severity
from projects.api.filters import id_filter
from tracker.api import SyncFilterSet


class InfrastructureComponentFilter(SyncFilterSet):
    project = id_filter("project")

    class Meta:
        model = InfrastructureComponent
        fields = ["project", "kind", "provider", "hosting", "environment", "model_source"]


class BudgetFilter(SyncFilterSet):
    project = id_filter("project")
    active_on = filters.DateFilter(method="filter_active_on", label="Budgets whose period covers this date.")

    class Meta:
        model = Budget
        fields = ["project", "category"]

    def filter_active_on(self, queryset, name, value):
        return queryset.filter(period_start__lte=value, period_end__gte=value)


class CostEntryFilter(SyncFilterSet):
    project = id_filter("project")
    date_after = filters.DateFilter(field_name="date", lookup_expr="gte")
    date_before = filters.DateFilter(field_name="date", lookup_expr="lte")
    priced = filters.BooleanFilter(field_name="amount", lookup_expr="isnull", exclude=True)

    class Meta:
        model = CostEntry
        fields = ["project", "category", "source", "model", "external_id"]


class ModelPriceFilter(SyncFilterSet):
    organization = id_filter("organization")
    valid_on = filters.DateFilter(field_name="valid_from", lookup_expr="lte", label="Prices valid from this date.")

    class Meta:
        model = ModelPrice
        fields = ["organization", "provider", "model"]


class QualityMetricFilter(SyncFilterSet):
    project = id_filter("project")
    date_after = filters.DateFilter(field_name="date", lookup_expr="gte")
    date_before = filters.DateFilter(field_name="date", lookup_expr="lte")

    class Meta:
        model = QualityMetric
        fields = ["project", "metric"]


class RiskFilter(SyncFilterSet):
    organization = id_filter("organization")
    project = id_filter("project")
    owner = id_filter("owner")
    next_review_before = filters.DateFilter(field_name="next_review_date", lookup_expr="lte")
    severity = filters.ChoiceFilter(choices=Severity.choices)
    score_min = filters.NumberFilter(field_name="score", lookup_expr="gte")

    class Meta:
        model = Risk
        fields = [
            "organization",
            "project",
            "owner",
            "category",
            "status",
            "treatment",
            "source",
            "likelihood",
            "impact",
        ]


class ReportFilter(SyncFilterSet):
    organization = id_filter("organization")
    project = id_filter("project")
    period_after = filters.DateFilter(field_name="period_start", lookup_expr="gte")
    period_before = filters.DateFilter(field_name="period_end", lookup_expr="lte")

    class Meta:
        model = Report
        fields = ["organization", "project", "kind", "state"]
