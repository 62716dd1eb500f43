"""Budgets, cost entries and model prices."""

import datetime as dt
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from ops.models import Budget, CostEntry, CostSource, ModelPrice
from ops.services.snapshots import CostSpend, spend_snapshots_adjust
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
    validate_model(
        budget,
        exclude=["project"],
        constraint_errors={"budget_end_after_start": ("period_end", "The period must end after it starts.")},
    )
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
    validate_model(
        entry,
        exclude=["project", "created_by", "price"],
        constraint_errors={"cost_unpriced_only_usage": ("amount", "A cost needs an amount.")},
    )
    if entry.amount is None:
        raise ValidationFailed("A cost needs an amount.", errors={"amount": ["This field is required."]})
    try:
        with transaction.atomic():
            entry.save()
            spend_snapshots_adjust(added=[CostSpend.of(entry)])
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
    try:
        with transaction.atomic():
            price.save()
    except IntegrityError as exc:
        raise Conflict(
            f"{model} already has a price from {valid_from}.", errors={"valid_from": ["A price from this date exists."]}
        ) from exc
    return price


BUDGET_FIELDS = {"period_start", "period_end", "amount", "category", "tolerance_pct", "notes"}


def budget_update(*, budget: Budget, by: AbstractBaseUser, **changes: Any) -> Budget:
    """Change a budget (managers only)."""
    membership_require(user=by, organization=budget.project.organization, role=Role.MANAGER)
    reject_unknown_fields(changes, BUDGET_FIELDS)
    for field, value in changes.items():
        setattr(budget, field, value)
    validate_model(budget, exclude=["project"])
    budget.save(update_fields=[*changes, "updated_at"])
    return budget


def budget_delete(*, budget: Budget, by: AbstractBaseUser) -> None:
    membership_require(user=by, organization=budget.project.organization, role=Role.MANAGER)
    budget.delete()


def cost_entry_update(*, entry: CostEntry, by: AbstractBaseUser, **changes: Any) -> CostEntry:
    """Correct a cost (contributors and up). Usage costs are priced, not typed: resend the usage instead."""
    membership_require(user=by, organization=entry.project.organization, role=Role.CONTRIBUTOR)
    reject_unknown_fields(changes, (COST_FIELDS - {"source"}) | {"date", "category", "amount"})
    if entry.source == CostSource.USAGE and changes.keys() - {"description"}:
        raise ValidationFailed(
            "A cost priced from token usage only takes a new description.",
            errors={field: ["Priced from usage."] for field in sorted(changes.keys() - {"description"})},
        )
    before = CostSpend.of(entry)
    for field, value in changes.items():
        setattr(entry, field, value)
    validate_model(entry, exclude=["project", "created_by", "price"])
    if entry.amount is None:
        raise ValidationFailed("A cost needs an amount.", errors={"amount": ["This field is required."]})
    try:
        with transaction.atomic():
            entry.save(update_fields=[*changes, "updated_at"])
            spend_snapshots_adjust(added=[CostSpend.of(entry)], removed=[before])
    except IntegrityError as exc:
        raise Conflict(
            f"A cost with external id “{entry.external_id}” is already recorded for this project.",
            errors={"external_id": ["Already recorded."]},
        ) from exc
    return entry


def cost_entry_delete(*, entry: CostEntry, by: AbstractBaseUser) -> None:
    membership_require(user=by, organization=entry.project.organization, role=Role.CONTRIBUTOR)
    with transaction.atomic():
        entry.delete()
        spend_snapshots_adjust(removed=[CostSpend.of(entry)])


def _model_price_unused(price: ModelPrice) -> None:
    if price.cost_entries.exists():
        raise Conflict(
            "Costs were priced with this price; add a new price from a later date instead.",
            errors={"valid_from": ["In use by recorded costs."]},
        )


def model_price_update(*, price: ModelPrice, by: AbstractBaseUser, **changes: Any) -> ModelPrice:
    """Correct a price no cost has used yet (managers only): recorded costs never change price."""
    membership_require(user=by, organization=price.organization, role=Role.MANAGER)
    reject_unknown_fields(
        changes,
        {"provider", "model", "input_per_mtok", "output_per_mtok", "valid_from"}
        | {"cached_input_per_mtok", "deprecation_date", "regions"},
    )
    # Only the deprecation date may change on a price in use: it says nothing about past costs.
    if changes.keys() - {"deprecation_date"}:
        _model_price_unused(price)
    for field, value in changes.items():
        setattr(price, field, value)
    validate_model(price, exclude=["organization"])
    try:
        with transaction.atomic():
            price.save(update_fields=[*changes, "updated_at"])
    except IntegrityError as exc:
        raise Conflict(
            "This model already has a price from that date.", errors={"valid_from": ["Already priced."]}
        ) from exc
    return price


def model_price_delete(*, price: ModelPrice, by: AbstractBaseUser) -> None:
    membership_require(user=by, organization=price.organization, role=Role.MANAGER)
    _model_price_unused(price)
    price.delete()
