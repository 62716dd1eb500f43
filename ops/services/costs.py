"""Budgets, cost entries and model prices."""

import datetime as dt
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from ops import money
from ops.models import DEFAULT_THRESHOLDS, Budget, CostEntry, CostSource, ModelPrice, Recurrence
from ops.providers import known_provider
from ops.selectors.portfolio import calendar_period
from ops.services.snapshots import CostSpend, spend_snapshots_adjust
from projects import audit
from projects.models import CostCentre, Organization, Project, Role, Team
from projects.services import membership_require
from projects.services_helpers import model_update
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
    "tags",
}


def _budget_validate(budget: Budget) -> None:
    validate_model(
        budget,
        exclude=["project", "team", "cost_centre"],
        constraint_errors={
            "budget_end_after_start": ("period_end", "The period must end after it starts."),
            "budget_exactly_one_owner": ("project", "A budget belongs to exactly one project, team or cost centre."),
        },
    )
    if budget.recurrence:
        first = calendar_period(recurrence=budget.recurrence, on=budget.period_start)
        if (budget.period_start, budget.period_end) != first:
            raise ValidationFailed(
                f"A {budget.get_recurrence_display().lower()} budget's first period is a whole calendar one: "
                f"{first[0]} – {first[1]}.",
                errors={"period_start": [f"Use {first[0]} – {first[1]}."]},
            )


@transaction.atomic
def budget_create(
    *,
    by: AbstractBaseUser,
    period_start: dt.date,
    period_end: dt.date,
    amount: Decimal,
    project: Project | None = None,
    team: Team | None = None,
    cost_centre: CostCentre | None = None,
    category: str = "",
    tolerance_pct: Decimal = Decimal(10),
    thresholds: list[int | float] | None = None,
    recurrence: str = Recurrence.NONE,
    notes: str = "",
) -> Budget:
    """Set a budget for a project, a team or a cost centre (exactly one; managers only)."""
    owners = [o for o in (project, team, cost_centre) if o is not None]
    if len(owners) != 1:
        raise ValidationFailed(
            "A budget belongs to exactly one project, team or cost centre.",
            errors={"project": ["Name exactly one of project, team and cost_centre."]},
        )
    membership_require(user=by, organization=owners[0].organization, role=Role.MANAGER)
    budget = Budget(
        project=project,
        team=team,
        cost_centre=cost_centre,
        period_start=period_start,
        period_end=period_end,
        amount=amount,
        category=category,
        tolerance_pct=tolerance_pct,
        thresholds=list(DEFAULT_THRESHOLDS) if thresholds is None else thresholds,
        recurrence=recurrence,
        notes=notes,
    )
    _budget_validate(budget)
    budget.save()
    audit.record_created(budget)
    return budget


def _cost_entry_validate(entry: CostEntry) -> None:
    validate_model(
        entry,
        # The conversion columns follow from `amount` and the rate: its errors name `amount`.
        exclude=["project", "created_by", "price", "original_amount", "exchange_rate"],
        constraint_errors={"cost_unpriced_only_usage": ("amount", "A cost needs an amount.")},
    )
    if entry.amount is None:
        raise ValidationFailed("A cost needs an amount.", errors={"amount": ["This field is required."]})


def _external_id_taken(entry: CostEntry) -> Conflict:
    return Conflict(
        f"A cost with external id “{entry.external_id}” is already recorded for this project.",
        errors={"external_id": ["Already recorded."]},
    )


def _conversion(*, organization: Organization, amount: Decimal | None, currency: str, day: object) -> dict[str, Any]:
    """Return a cost's amount of `currency` on `day` as its columns in the organization's currency (`ops.money`)."""
    if not money.currency_valid(currency):
        raise ValidationFailed(
            "Use an ISO 4217 currency code in capitals, e.g. EUR.", errors={"currency": ["Unknown currency."]}
        )
    if not isinstance(day, dt.date):  # left to the model's validation, which names the field
        return {"amount": amount}
    return money.convert(amount=amount, currency=currency, day=day, organization=organization).fields()


def cost_entry_create(
    *,
    project: Project,
    by: AbstractBaseUser,
    date: dt.date,
    category: str,
    amount: Decimal,
    currency: str | None = None,
    **fields: Any,
) -> CostEntry:
    """Record a cost of `amount` in `currency` (default: the organization's), stored converted beside the original.

    A repeated non-empty `external_id` is refused as a conflict, never stored twice.
    """
    membership_require(user=by, organization=project.organization, role=Role.CONTRIBUTOR)
    reject_unknown_fields(fields, COST_FIELDS)
    fields.setdefault("source", CostSource.MANUAL)
    organization = project.organization
    converted = _conversion(
        organization=organization, amount=amount, currency=currency or organization.currency, day=date
    )
    entry = CostEntry(project=project, date=date, category=category, created_by=by, **converted, **fields)
    _cost_entry_validate(entry)
    try:
        with transaction.atomic():
            entry.save()
            audit.record_created(entry)
            spend_snapshots_adjust(added=[CostSpend.of(entry)])
    except IntegrityError as exc:
        raise _external_id_taken(entry) from exc
    return entry


MODEL_PRICE_FIELDS = {"provider", "model", "input_per_mtok", "output_per_mtok", "valid_from"} | {
    "cached_input_per_mtok",
    "deprecation_date",
    "regions",
    "currency",
}


def _model_price_validate(price: ModelPrice) -> None:
    # Any spelling the vocabulary knows ("OpenAI", "azure", "bedrock") is stored as its code.
    price.provider = known_provider(price.provider) or price.provider
    validate_model(price, exclude=["organization"])
    if price.currency and not money.currency_valid(price.currency):  # blank: written before currencies
        raise ValidationFailed(
            "Use an ISO 4217 currency code in capitals, e.g. USD.", errors={"currency": ["Unknown currency."]}
        )


def _already_priced(price: ModelPrice) -> Conflict:
    return Conflict(
        f"{price.model} from {price.get_provider_display()} already has a price from {price.valid_from}.",
        errors={"valid_from": ["A price from this date exists."]},
    )


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
    reject_unknown_fields(fields, MODEL_PRICE_FIELDS)
    fields["currency"] = fields.get("currency") or organization.currency
    price = ModelPrice(
        organization=organization,
        provider=provider,
        model=model,
        input_per_mtok=input_per_mtok,
        output_per_mtok=output_per_mtok,
        valid_from=valid_from,
        **fields,
    )
    _model_price_validate(price)
    try:
        with transaction.atomic():
            price.save()
            audit.record_created(price)
    except IntegrityError as exc:
        raise _already_priced(price) from exc
    return price


COST_UPDATE_FIELDS = (COST_FIELDS - {"source"}) | {"date", "category", "amount", "currency"}
CONVERSION_FIELDS = {"original_amount", "original_currency", "exchange_rate", "exchange_rate_date"}
# The owner stays: a budget moved to another project, team or cost centre is a new budget.
BUDGET_FIELDS = {
    "period_start",
    "period_end",
    "amount",
    "category",
    "tolerance_pct",
    "thresholds",
    "recurrence",
    "notes",
}


@transaction.atomic
def budget_update(*, budget: Budget, by: AbstractBaseUser, **changes: Any) -> Budget:
    """Change a budget (managers only)."""
    membership_require(user=by, organization=budget.owner.organization, role=Role.MANAGER)
    model_update(instance=budget, data=changes, fields=BUDGET_FIELDS, validate=_budget_validate)
    return budget


@transaction.atomic
def budget_delete(*, budget: Budget, by: AbstractBaseUser) -> None:
    membership_require(user=by, organization=budget.owner.organization, role=Role.MANAGER)
    audit.record_deleted(budget)
    budget.delete()


@transaction.atomic
def cost_entry_update(*, entry: CostEntry, by: AbstractBaseUser, **changes: Any) -> CostEntry:
    """Correct a cost (contributors and up). Usage costs are priced, not typed: resend the usage instead."""
    membership_require(user=by, organization=entry.project.organization, role=Role.CONTRIBUTOR)
    reject_unknown_fields(changes, COST_UPDATE_FIELDS)
    if entry.source == CostSource.USAGE and changes.keys() - {"description"}:
        raise ValidationFailed(
            "A cost priced from token usage only takes a new description.",
            errors={field: ["Priced from usage."] for field in sorted(changes.keys() - {"description"})},
        )
    before = CostSpend.of(entry)
    organization = entry.project.organization
    current = entry.original_currency or organization.currency  # a row the release before wrote has none
    currency = changes.pop("currency", None) or current
    if entry.source != CostSource.USAGE and (changes.keys() & {"amount", "date"} or currency != current):
        # A new amount is in the entry's currency (or the one sent with it), converted at its date's rate.
        amount = changes.get("amount", entry.amount if entry.original_amount is None else entry.original_amount)
        day = changes.get("date", entry.date)
        changes |= _conversion(organization=organization, amount=amount, currency=currency, day=day)
    model_update(
        instance=entry,
        data=changes,
        fields=COST_UPDATE_FIELDS | CONVERSION_FIELDS,
        validate=_cost_entry_validate,
        conflict=_external_id_taken(entry) if "external_id" in changes else None,
    )
    spend_snapshots_adjust(added=[CostSpend.of(entry)], removed=[before])
    return entry


@transaction.atomic
def cost_entry_delete(*, entry: CostEntry, by: AbstractBaseUser) -> None:
    membership_require(user=by, organization=entry.project.organization, role=Role.CONTRIBUTOR)
    audit.record_deleted(entry)
    removed = CostSpend.of(entry)
    entry.delete()
    spend_snapshots_adjust(removed=[removed])


def _model_price_unused(price: ModelPrice) -> None:
    if price.cost_entries.exists():
        raise Conflict(
            "Costs were priced with this price; add a new price from a later date instead.",
            errors={"valid_from": ["In use by recorded costs."]},
        )


@transaction.atomic
def model_price_update(*, price: ModelPrice, by: AbstractBaseUser, **changes: Any) -> ModelPrice:
    """Correct a price no cost has used yet (managers only): recorded costs never change price."""
    membership_require(user=by, organization=price.organization, role=Role.MANAGER)
    reject_unknown_fields(changes, MODEL_PRICE_FIELDS)
    # Only the deprecation date may change on a price in use: it says nothing about past costs.
    if changes.keys() - {"deprecation_date"}:
        _model_price_unused(price)
    model_update(
        instance=price,
        data=changes,
        fields=MODEL_PRICE_FIELDS,
        validate=_model_price_validate,
        conflict=Conflict(
            "This provider's model already has a price from that date.", errors={"valid_from": ["Already priced."]}
        ),
    )
    return price


@transaction.atomic
def model_price_delete(*, price: ModelPrice, by: AbstractBaseUser) -> None:
    membership_require(user=by, organization=price.organization, role=Role.MANAGER)
    _model_price_unused(price)
    audit.record_deleted(price)
    price.delete()
