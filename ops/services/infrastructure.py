"""Infrastructure components and quality metrics of a project."""

import datetime as dt
import math
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from ops.models import ComponentKind, InfrastructureComponent, MetricKind, QualityMetric
from projects import audit
from projects.models import Project, Role
from projects.services import membership_require
from projects.services_helpers import model_update
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


def _component_validate(component: InfrastructureComponent) -> None:
    frameworks = component.frameworks
    if not isinstance(frameworks, list) or not all(isinstance(f, str) and f.strip() for f in frameworks):
        raise ValidationFailed("Frameworks must be a list of names.", errors={"frameworks": ["A list of names."]})
    validate_model(component, exclude=["project"])


@transaction.atomic
def infrastructure_component_create(
    *, project: Project, by: AbstractBaseUser, name: str, kind: ComponentKind, provider: str, **fields: Any
) -> InfrastructureComponent:
    membership_require(user=by, organization=project.organization, role=Role.CONTRIBUTOR)
    reject_unknown_fields(fields, COMPONENT_FIELDS)
    component = InfrastructureComponent(project=project, name=name, kind=kind, provider=provider, **fields)
    _component_validate(component)
    component.save()
    audit.record_created(component)
    return component


# The usual direction of each built-in metric: hallucinations, toxicity and latency are better low.
LOWER_IS_BETTER = {MetricKind.HALLUCINATION_RATE, MetricKind.TOXICITY_RATE, MetricKind.LATENCY_P95_MS}


def _quality_metric_validate(record: QualityMetric) -> None:
    # NaN and infinity pass the float field but compare false with any threshold.
    errors = {
        field: ["Enter a finite number."]
        for field in ("value", "threshold")
        if isinstance(number := getattr(record, field), float) and not math.isfinite(number)
    }
    if errors:
        raise ValidationFailed(next(iter(errors.values()))[0], errors=errors)
    validate_model(
        record, exclude=["project"], constraint_errors={"metric_custom_named": ("name", "Name the custom metric.")}
    )


@transaction.atomic
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
    _quality_metric_validate(record)
    record.save()
    audit.record_created(record)
    return record


@transaction.atomic
def infrastructure_component_update(
    *, component: InfrastructureComponent, by: AbstractBaseUser, **changes: Any
) -> InfrastructureComponent:
    membership_require(user=by, organization=component.project.organization, role=Role.CONTRIBUTOR)
    model_update(
        instance=component,
        data=changes,
        fields=COMPONENT_FIELDS | {"name", "kind", "provider"},
        validate=_component_validate,
    )
    return component


@transaction.atomic
def infrastructure_component_delete(*, component: InfrastructureComponent, by: AbstractBaseUser) -> None:
    membership_require(user=by, organization=component.project.organization, role=Role.CONTRIBUTOR)
    audit.record_deleted(component)
    component.delete()


METRIC_FIELDS = {"date", "metric", "value", "threshold", "higher_is_better", "name", "notes"}


@transaction.atomic
def quality_metric_update(*, record: QualityMetric, by: AbstractBaseUser, **changes: Any) -> QualityMetric:
    membership_require(user=by, organization=record.project.organization, role=Role.CONTRIBUTOR)
    if isinstance(changes.get("name"), str):
        changes["name"] = changes["name"].strip()
    model_update(instance=record, data=changes, fields=METRIC_FIELDS, validate=_quality_metric_validate)
    return record


@transaction.atomic
def quality_metric_delete(*, record: QualityMetric, by: AbstractBaseUser) -> None:
    membership_require(user=by, organization=record.project.organization, role=Role.CONTRIBUTOR)
    audit.record_deleted(record)
    record.delete()
