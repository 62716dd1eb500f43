"""Every write of the ops app, one module per area, re-exported here."""

from ops.services.costs import budget_create, cost_entry_create, model_price_create
from ops.services.infrastructure import infrastructure_component_create, quality_metric_create
from ops.services.ingest import cost_entries_ingest, usage_ingest
from ops.services.reports import report_request
from ops.services.risks import risk_accept, risk_close, risk_create, risk_create_from_catalogue, risk_update

__all__ = [
    "budget_create",
    "cost_entries_ingest",
    "cost_entry_create",
    "infrastructure_component_create",
    "model_price_create",
    "quality_metric_create",
    "report_request",
    "risk_accept",
    "risk_close",
    "risk_create",
    "risk_create_from_catalogue",
    "risk_update",
    "usage_ingest",
]
