"""What an event says: the object as the API returns it, a one-line summary and a link, per model.

The serializers belong to the apps that own the objects; they are named here by path and imported
when an event is written, so the apps that emit (projects, ops) never import webhooks' views.
"""

import json
from dataclasses import dataclass
from typing import Any

from django.db.models import Model
from django.utils.module_loading import import_string
from rest_framework.utils.encoders import JSONEncoder

from tracker.mail import absolute_link


@dataclass(frozen=True)
class Shape:
    serializer: str
    api_path: str  # the API resource, for the link of an object with no page of its own

    def data(self, instances: list[Model]) -> list[dict[str, Any]]:
        """Return each object as the API renders it (decimals and dates as text); one serializer for all."""
        data = import_string(self.serializer)(instances, many=True).data
        return json.loads(json.dumps(data, cls=JSONEncoder))


SHAPES = {
    "ops.risk": Shape("ops.api.serializers.RiskSerializer", "/api/v1/risks/{pk}/"),
    "ops.budget": Shape("ops.api.serializers.BudgetSerializer", "/api/v1/budgets/{pk}/"),
    # Without the report's content: receivers fetch it (it can be large).
    "ops.report": Shape("ops.api.serializers.ReportListSerializer", "/api/v1/reports/{pk}/"),
    "projects.stagetransition": Shape("projects.api.serializers.TransitionSerializer", "/api/v1/stage-transitions/"),
    "projects.statusupdate": Shape("projects.api.serializers.StatusUpdateSerializer", "/api/v1/status-updates/{pk}/"),
}


def shape_of(instance: Model) -> Shape:
    return SHAPES[instance._meta.label_lower]


def link(instance: Model) -> str:
    """Return the page that shows the object, or its project's page for what has none of its own."""
    # A budget's page is its owner's (a project's; a team or cost centre has none: the API resource).
    target = instance if hasattr(instance, "get_absolute_url") else getattr(instance, "owner", None) or instance.project
    return absolute_link(target, shape_of(instance).api_path.format(pk=instance.pk))


def summary(event_label: str, instance: Model, extra: dict[str, Any]) -> str:
    """Return one line saying what changed, for people (the Slack message)."""
    project = getattr(instance, "project", None)
    where = f" ({project.name})" if project is not None else ""
    label = instance._meta.label_lower
    if label == "ops.risk":
        state = f"{instance.severity}, {instance.get_status_display()}".lower()
        text = f"{instance.title}{where}: {state}"
    elif label == "ops.budget":
        spent = f"{extra['spend']} of {instance.amount} {extra.get('currency', '')}".rstrip()
        text = f"{instance.owner} spent {spent} ({extra['threshold_pct']}% threshold)"
    elif label == "projects.stagetransition":
        text = f"{project.name} moved from {instance.get_from_stage_display()} to {instance.get_to_stage_display()}"
    elif label == "ops.report":
        scope = project.name if project else instance.organization.name
        text = f"{instance.get_kind_display()} report for {scope}, {instance.period_start} – {instance.period_end}"
    else:  # projects.statusupdate
        text = f"{project.name} is {instance.get_health_display().lower()}: {instance.summary}"
    return f"{event_label}: {text}"[:500]
