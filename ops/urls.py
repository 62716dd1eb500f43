from django.urls import path

from ops import views
from ops.imports import views as imports

app_name = "ops"

# Pages of the projects namespace that ops renders (tracker/urls.py puts them under "projects:").
project_pages = [
    path("", views.dashboard, name="dashboard"),
    path("projects/", views.project_index, name="list"),
    path("projects/export.csv", views.project_index_csv, name="list-csv"),
    path("projects/mine/", views.project_mine, name="mine"),
    path("projects/<int:pk>/check-in/", views.status_checkin, name="checkin"),
]

urlpatterns = [
    path("projects/<int:pk>/costs/", views.cost_create, name="cost-create"),
    path("projects/<int:pk>/usage/", views.usage_create, name="usage-create"),
    path("analytics/costs/", views.cost_analytics, name="cost-analytics"),
    path("prices/", views.price_index, name="prices"),
    path("chargeback/", views.chargeback_index, name="chargeback"),
    path("prices/import/", views.price_import, name="prices-import"),
    path("projects/<int:pk>/budgets/", views.budget_create, name="budget-create"),
    path("projects/<int:pk>/risks/", views.risk_create, name="risk-create"),
    path("projects/<int:pk>/risks/catalogue/", views.risk_create_from_catalogue, name="risk-catalogue"),
    path("projects/<int:pk>/infrastructure/", views.infrastructure_create, name="infrastructure-create"),
    path("projects/<int:pk>/metrics/", views.metric_create, name="metric-create"),
    path("risks/", views.risk_index, name="risks"),
    path("risks/export.csv", views.risk_index_csv, name="risks-csv"),
    path("risks/<int:pk>/", views.risk_detail, name="risk-detail"),
    path("risks/<int:pk>/edit/", views.risk_edit, name="risk-edit"),
    path("risks/<int:pk>/accept/", views.risk_accept, name="risk-accept"),
    path("risks/<int:pk>/close/", views.risk_close, name="risk-close"),
    path("imports/", imports.import_index, name="imports"),
    path("imports/csv/", imports.csv_import, name="import-csv"),
    path("imports/<int:pk>/", imports.import_detail, name="import-detail"),
    path("imports/<int:pk>/progress/", imports.import_progress, name="import-progress"),
    path("imports/rules/", imports.billing_rule_add, name="billing-rule-add"),
    path("imports/rules/<int:pk>/delete/", imports.billing_rule_remove, name="billing-rule-delete"),
    path("reports/", views.report_index, name="reports"),
    path("reports/new/", views.report_create, name="report-create"),
    path("reports/<int:pk>/", views.report_detail, name="report-detail"),
    path("reports/<int:pk>/progress/", views.report_progress, name="report-progress"),
    path("reports/<int:pk>/download.<str:fmt>", views.report_download, name="report-download"),
]
