from rest_framework.routers import DefaultRouter

from ops.api import views

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("infrastructure", views.InfrastructureComponentViewSet, basename="infrastructure")
router.register("budgets", views.BudgetViewSet, basename="budget")
router.register("costs", views.CostEntryViewSet, basename="cost")
router.register("usage", views.UsageViewSet, basename="usage")
router.register("model-prices", views.ModelPriceViewSet, basename="model-price")
router.register("metrics", views.QualityMetricViewSet, basename="metric")
router.register("risks", views.RiskViewSet, basename="risk")
router.register("reports", views.ReportViewSet, basename="report")

app_name = "api-ops"
urlpatterns = router.urls
