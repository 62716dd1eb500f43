"""Every write of the ops app, one module per area, re-exported here."""

from ops.services.costs import budget_create, cost_entry_create, model_price_create
from ops.services.infrastructure import infrastructure_component_create, quality_metric_create
from ops.services.ingest import cost_entries_import, cost_entries_ingest, usage_ingest, usage_record
from ops.services.reminders import review_reminders_send
from ops.services.reports import (
    report_build,
    report_digest_send,
    report_period_limits,
    report_request,
    reports_schedule,
)
from ops.services.reprice import usage_reprice_apply, usage_reprice_plan
from ops.services.risks import (
    risk_accept,
    risk_close,
    risk_close_role,
    risk_create,
    risk_create_from_catalogue,
    risk_update,
)
from ops.services.signals import risk_signals_evaluate
from ops.services.snapshots import snapshots_take

__all__ = [
    "budget_create",
    "cost_entries_import",
    "cost_entries_ingest",
    "cost_entry_create",
    "infrastructure_component_create",
    "model_price_create",
    "quality_metric_create",
    "report_build",
    "report_digest_send",
    "report_period_limits",
    "report_request",
    "reports_schedule",
    "review_reminders_send",
    "risk_accept",
    "risk_close",
    "risk_close_role",
    "risk_create",
    "risk_create_from_catalogue",
    "risk_signals_evaluate",
    "risk_update",
    "snapshots_take",
    "usage_ingest",
    "usage_record",
    "usage_reprice_apply",
    "usage_reprice_plan",
]
