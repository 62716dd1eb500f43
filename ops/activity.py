"""The activity feed's sentences of ops's models, registered into projects.activity by `OpsConfig.ready()`."""

from ops.models import CostCategory, RiskStatus
from projects.activity import new, on, register
from projects.models import AuditAction, AuditEvent
from tracker import formatting


@register("ops.costentry", AuditAction.CREATE)
def _cost(event: AuditEvent, organization: formatting.Localized) -> str:
    amount = new(event, "amount")
    category = formatting.label(CostCategory, new(event, "category")).lower()
    if amount is None:
        return f"{event.actor_repr} logged unpriced usage{on(event)}"
    return f"{event.actor_repr} logged a cost of {formatting.money(amount, organization)} ({category}){on(event)}"


@register("ops.budget", AuditAction.CREATE)
def _budget(event: AuditEvent, organization: formatting.Localized) -> str:
    period = formatting.date_range(new(event, "period_start"), new(event, "period_end"), organization)
    amount = formatting.money(new(event, "amount"), organization)
    return f"{event.actor_repr} set a budget of {amount} for {period}{on(event)}"


@register("ops.risk", AuditAction.CREATE, AuditAction.UPDATE)
def _risk(event: AuditEvent, organization: formatting.Localized) -> str:
    if event.action == AuditAction.CREATE:
        return f"{event.actor_repr} added the risk “{event.object_repr}”{on(event)}"
    status = new(event, "status")
    verb = {RiskStatus.CLOSED: "closed", RiskStatus.ACCEPTED: "accepted"}.get(status, "updated")
    return f"{event.actor_repr} {verb} the risk “{event.object_repr}”{on(event)}"


@register("ops.qualitymetric", AuditAction.CREATE)
def _metric(event: AuditEvent, organization: formatting.Localized) -> str:
    return f"{event.actor_repr} recorded the quality metric {event.object_repr}{on(event)}"


@register("ops.infrastructurecomponent", AuditAction.CREATE)
def _infrastructure(event: AuditEvent, organization: formatting.Localized) -> str:
    return f"{event.actor_repr} recorded the infrastructure component {event.object_repr}{on(event)}"
