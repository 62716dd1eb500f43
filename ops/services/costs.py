"""Budgets, cost entries and model prices."""

import datetime as dt
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from ops.models import Budget, CostEntry, CostSource, ModelPrice
from projects.models import Organization, Project, Role
from projects.services import membership_require
from tracker.exceptions import Conflict, ValidationFailed, reject_unknown_fields, validate_model

COST_FIELDS = {
    "description",
    "model",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "requests",
    "gpu_hours",
    "energy_kwh",
    "external_id",
    "source",
}


def budget_create(
    *,
    project: Project,
    by: AbstractBaseUser,
    period_start: dt.date,
    period_end: dt.date,
    amount: Decimal,
    category: str = "",
    tolerance_pct: Decimal = Decimal(10),
    notes: str = "",
) -> Budget:
    """Set a budget for a period (managers only)."""
    membership_require(user=by, organization=project.organization, role=Role.MANAGER)
    budget = Budget(
        project=project,
        period_start=period_start,
        period_end=period_end,
        amount=amount,
        category=category,
        tolerance_pct=tolerance_pct,
        notes=notes,
    )
    validate_model(budget, exclude=["project"])
    budget.save()
    return budget


def cost_entry_create(
    *, project: Project, by: AbstractBaseUser, date: dt.date, category: str, amount: Decimal, **fields: Any
) -> CostEntry:
    """Record a cost. A repeated non-empty `external_id` is refused as a conflict, never stored twice."""
    membership_require(user=by, organization=project.organization, role=Role.CONTRIBUTOR)
    reject_unknown_fields(fields, COST_FIELDS)
    fields.setdefault("source", CostSource.MANUAL)
    entry = CostEntry(project=project, date=date, category=category, amount=amount, created_by=by, **fields)
    validate_model(entry, exclude=["project", "created_by", "price"])
    if entry.amount is None:
        raise ValidationFailed("A cost needs an amount.", errors={"amount": ["This field is required."]})
    try:
        with transaction.atomic():
            entry.save()
    except IntegrityError as exc:
        raise Conflict(
            f"A cost with external id “{entry.external_id}” is already recorded for this project.",
            errors={"external_id": ["Already recorded."]},
        ) from exc
    return entry


def model_price_create(
    *,
    organization: Organization,
    by: AbstractBaseUser,
    provider: str,
    model: str,
    input_per_mtok: Decimal,
    output_per_mtok: Decimal,
    valid_from: dt.date,
    **fields: Any,
) -> ModelPrice:
    """Add a price for a model from a date on (managers only); earlier costs keep their price."""
    membership_require(user=by, organization=organization, role=Role.MANAGER)
    reject_unknown_fields(fields, {"cached_input_per_mtok", "deprecation_date", "regions"})
    price = ModelPrice(
        organization=organization,
        provider=provider,
        model=model,
        input_per_mtok=input_per_mtok,
        output_per_mtok=output_per_mtok,
        valid_from=valid_from,
        **fields,
    )
    validate_model(price, exclude=["organization"])
    price.save()
    return price
