from django.urls import path, re_path
from rest_framework.routers import DefaultRouter

from ops.api import chargeback, exports, imports, views
from tracker.api import not_found

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
# JSON is the only format: `.json` suffix routes would only add URLs (and break @action signatures).
router.include_format_suffixes = False
router.register("infrastructure", views.InfrastructureComponentViewSet, basename="infrastructure")
router.register("budgets", views.BudgetViewSet, basename="budget")
router.register("costs", views.CostEntryViewSet, basename="cost")
router.register("usage", views.UsageViewSet, basename="usage")
router.register("model-prices", views.ModelPriceViewSet, basename="model-price")
router.register("metrics", views.QualityMetricViewSet, basename="metric")
router.register("risks", views.RiskViewSet, basename="risk")
router.register("reports", views.ReportViewSet, basename="report")
router.register("imports", imports.ImportJobViewSet, basename="import")
router.register("billing-rules", imports.BillingRuleViewSet, basename="billing-rule")

app_name = "api-ops"
# Included last under api/v1/: whatever no router matched is the API's JSON 404.
# Exports come before the router's routes, whose `costs/<pk>/` would take `costs/export/`.
urlpatterns = [
    path("costs/export/", exports.CostExportViewSet.as_view({"get": "list"}), name="cost-export"),
    path("usage/export/", exports.UsageExportViewSet.as_view({"get": "list"}), name="usage-export"),
    path("risks/export/", exports.RiskExportViewSet.as_view({"get": "list"}), name="risk-export"),
    path("chargeback/", chargeback.ChargebackViewSet.as_view({"get": "show"}), name="chargeback"),
    path("chargeback/export/", chargeback.ChargebackExportViewSet.as_view({"get": "list"}), name="chargeback-export"),
    *router.urls,
    re_path(r"^.*$", not_found),
]
