"""Infrastructure components and quality metrics of a project."""

import datetime as dt
import math
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from ops.models import ComponentKind, InfrastructureComponent, MetricKind, QualityMetric
from projects.models import Project, Role
from projects.services import membership_require
from tracker.exceptions import ValidationFailed, reject_unknown_fields, validate_model

COMPONENT_FIELDS = {
    "hosting",
    "region",
    "environment",
    "model_name",
    "model_version",
    "model_source",
    "frameworks",
    "gpu_type",
    "gpu_count",
    "notes",
}


def infrastructure_component_create(
    *, project: Project, by: AbstractBaseUser, name: str, kind: ComponentKind, provider: str, **fields: Any
) -> InfrastructureComponent:
    membership_require(user=by, organization=project.organization, role=Role.CONTRIBUTOR)
    reject_unknown_fields(fields, COMPONENT_FIELDS)
    frameworks = fields.get("frameworks", [])
    if not isinstance(frameworks, list) or not all(isinstance(f, str) and f.strip() for f in frameworks):
        raise ValidationFailed("Frameworks must be a list of names.", errors={"frameworks": ["A list of names."]})
    component = InfrastructureComponent(project=project, name=name, kind=kind, provider=provider, **fields)
    validate_model(component, exclude=["project"])
    component.save()
    return component


# The usual direction of each built-in metric: hallucinations, toxicity and latency are better low.
LOWER_IS_BETTER = {MetricKind.HALLUCINATION_RATE, MetricKind.TOXICITY_RATE, MetricKind.LATENCY_P95_MS}


def quality_metric_create(
    *,
    project: Project,
    by: AbstractBaseUser,
    date: dt.date,
    metric: str,
    value: float,
    threshold: float | None = None,
    higher_is_better: bool | None = None,
    name: str = "",
    notes: str = "",
) -> QualityMetric:
    """Record a quality measurement; the direction defaults to the metric's usual one."""
    membership_require(user=by, organization=project.organization, role=Role.CONTRIBUTOR)
    # NaN and infinity pass the float field but compare false with any threshold.
    errors = {
        field: ["Enter a finite number."]
        for field, number in (("value", value), ("threshold", threshold))
        if isinstance(number, float) and not math.isfinite(number)
    }
    if errors:
        raise ValidationFailed(next(iter(errors.values()))[0], errors=errors)
    if higher_is_better is None:
        higher_is_better = metric not in LOWER_IS_BETTER
    record = QualityMetric(
        project=project,
        date=date,
        metric=metric,
        value=value,
        threshold=threshold,
        higher_is_better=higher_is_better,
        name=name.strip(),
        notes=notes,
    )
    validate_model(
        record, exclude=["project"], constraint_errors={"metric_custom_named": ("name", "Name the custom metric.")}
    )
    record.save()
    return record


def infrastructure_component_update(
    *, component: InfrastructureComponent, by: AbstractBaseUser, **changes: Any
) -> InfrastructureComponent:
    membership_require(user=by, organization=component.project.organization, role=Role.CONTRIBUTOR)
    reject_unknown_fields(changes, COMPONENT_FIELDS | {"name", "kind", "provider"})
    frameworks = changes.get("frameworks", [])
    if not isinstance(frameworks, list) or not all(isinstance(f, str) and f.strip() for f in frameworks):
        raise ValidationFailed("Frameworks must be a list of names.", errors={"frameworks": ["A list of names."]})
    for field, value in changes.items():
        setattr(component, field, value)
    validate_model(component, exclude=["project"])
    component.save(update_fields=[*changes, "updated_at"])
    return component


def infrastructure_component_delete(*, component: InfrastructureComponent, by: AbstractBaseUser) -> None:
    membership_require(user=by, organization=component.project.organization, role=Role.CONTRIBUTOR)
    component.delete()


def quality_metric_update(*, record: QualityMetric, by: AbstractBaseUser, **changes: Any) -> QualityMetric:
    membership_require(user=by, organization=record.project.organization, role=Role.CONTRIBUTOR)
    reject_unknown_fields(changes, {"date", "metric", "value", "threshold", "higher_is_better", "name", "notes"})
    for field, value in changes.items():
        setattr(record, field, value.strip() if field == "name" else value)
    validate_model(record, exclude=["project"])
    record.save(update_fields=[*changes, "updated_at"])
    return record


def quality_metric_delete(*, record: QualityMetric, by: AbstractBaseUser) -> None:
    membership_require(user=by, organization=record.project.organization, role=Role.CONTRIBUTOR)
    record.delete()
