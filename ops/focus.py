"""Costs as FOCUS 1.0 (FinOps Open Cost and Usage Specification): the standard's column names and our mapping.

The column list is the one focus-validator 1.0.0 checks for `--validate-version 1.0` (its bundled rules,
focus_validator/rules/version_sets/1.0). That list still spells four columns as FOCUS 1.0-preview did
(`InvoiceIssuer`, `Provider`, `Publisher`, `ResourceID`; the published 1.0 says `InvoiceIssuerName`,
`ProviderName`, `PublisherName`, `ResourceId`), and its SkuPriceId rule reads `ChargeType` (FOCUS 0.5's
name of ChargeCategory): the file carries that column too, or the validator fails the whole file.
Our own columns carry the `x_` prefix, as the specification asks of provider-specific columns.

Every row is an estimate from the tracker's cost entries: BilledCost, EffectiveCost, ListCost and
ContractedCost are the entry's amount. Unpriced token usage (amount NULL) is left out: FOCUS requires
a cost on every row, and the tracker never costs unpriced usage at 0.
"""

import datetime as dt
import json
import re
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from ops.models import CostCategory
from projects.tags import MAX_TAGS, MAX_VALUE, tags_validate

AVAILABILITY_ZONE = "AvailabilityZone"
BILLED_COST = "BilledCost"
BILLING_ACCOUNT_ID = "BillingAccountId"
BILLING_ACCOUNT_NAME = "BillingAccountName"
BILLING_CURRENCY = "BillingCurrency"
BILLING_PERIOD_END = "BillingPeriodEnd"
BILLING_PERIOD_START = "BillingPeriodStart"
CHARGE_CATEGORY = "ChargeCategory"
CHARGE_CLASS = "ChargeClass"
CHARGE_DESCRIPTION = "ChargeDescription"
CHARGE_FREQUENCY = "ChargeFrequency"
CHARGE_PERIOD_END = "ChargePeriodEnd"
CHARGE_PERIOD_START = "ChargePeriodStart"
CHARGE_TYPE = "ChargeType"
COMMITMENT_DISCOUNT_CATEGORY = "CommitmentDiscountCategory"
COMMITMENT_DISCOUNT_ID = "CommitmentDiscountId"
COMMITMENT_DISCOUNT_NAME = "CommitmentDiscountName"
COMMITMENT_DISCOUNT_STATUS = "CommitmentDiscountStatus"
COMMITMENT_DISCOUNT_TYPE = "CommitmentDiscountType"
CONSUMED_QUANTITY = "ConsumedQuantity"
CONSUMED_UNIT = "ConsumedUnit"
CONTRACTED_COST = "ContractedCost"
CONTRACTED_UNIT_PRICE = "ContractedUnitPrice"
EFFECTIVE_COST = "EffectiveCost"
INVOICE_ISSUER = "InvoiceIssuer"
LIST_COST = "ListCost"
LIST_UNIT_PRICE = "ListUnitPrice"
PRICING_CATEGORY = "PricingCategory"
PRICING_QUANTITY = "PricingQuantity"
PRICING_UNIT = "PricingUnit"
PROVIDER = "Provider"
PUBLISHER = "Publisher"
REGION_ID = "RegionId"
REGION_NAME = "RegionName"
RESOURCE_ID = "ResourceID"
RESOURCE_NAME = "ResourceName"
RESOURCE_TYPE = "ResourceType"
SERVICE_CATEGORY = "ServiceCategory"
SERVICE_NAME = "ServiceName"
SKU_ID = "SkuId"
SKU_PRICE_ID = "SkuPriceId"
SUB_ACCOUNT_ID = "SubAccountId"
SUB_ACCOUNT_NAME = "SubAccountName"
TAGS = "Tags"

X_COST_ENTRY_ID = "x_CostEntryId"
X_CATEGORY = "x_Category"
X_SOURCE = "x_Source"
X_EXTERNAL_ID = "x_ExternalId"

TRACKER_TAG_PREFIX = "tracker_"
PROJECT_TAG = "tracker_project"

# Reading bills (ops/imports/focus.py): FOCUS 1.2 names, and the earlier spellings read as them.
INVOICE_ISSUER_NAME = "InvoiceIssuerName"
PROVIDER_NAME = "ProviderName"
PUBLISHER_NAME = "PublisherName"
RESOURCE_ID_1_2 = "ResourceId"
ALIASES = {
    INVOICE_ISSUER: INVOICE_ISSUER_NAME,
    PROVIDER: PROVIDER_NAME,
    PUBLISHER: PUBLISHER_NAME,
    RESOURCE_ID: RESOURCE_ID_1_2,
}
# The columns an imported bill must have (the others are optional; unknown and `x_` ones are ignored).
IMPORT_REQUIRED = (
    BILLED_COST,
    BILLING_CURRENCY,
    BILLING_PERIOD_START,
    BILLING_PERIOD_END,
    CHARGE_CATEGORY,
    CHARGE_PERIOD_START,
    CHARGE_PERIOD_END,
)
# Every column an imported bill is read for.
IMPORT_COLUMNS = (
    *IMPORT_REQUIRED,
    EFFECTIVE_COST,
    LIST_COST,
    CHARGE_CLASS,
    SERVICE_NAME,
    SKU_ID,
    RESOURCE_ID_1_2,
    CONSUMED_QUANTITY,
    CONSUMED_UNIT,
    SUB_ACCOUNT_ID,
    TAGS,
    PROVIDER_NAME,
    INVOICE_ISSUER_NAME,
)
COST_CENTRE_TAG = "tracker_cost_centre"
_TAG_KEY_CHARACTER = re.compile(r"[^a-z0-9_.:/-]")
_TAG_KEY = re.compile(r"[a-z0-9][a-z0-9_.:/-]*\Z")  # a key `_TAG_KEY_CHARACTER` and the strip leave as it is
# ChargeCategory / ChargeFrequency values (FOCUS 1.0 allowed values).
USAGE = "Usage"
USAGE_BASED = "Usage-Based"
STANDARD = "Standard"
TOKENS = "Tokens"
# Who issued the charge, when no model price says: the tracker records costs, not their vendor.
UNKNOWN_PROVIDER = "Unspecified"

# ServiceCategory (FOCUS 1.0 allowed values) of each cost category.
SERVICE_CATEGORIES = {
    CostCategory.TRAINING: "AI and Machine Learning",
    CostCategory.FINE_TUNING: "AI and Machine Learning",
    CostCategory.INFERENCE: "AI and Machine Learning",
    CostCategory.DATA_LABELING: "AI and Machine Learning",
    CostCategory.STORAGE: "Storage",
    CostCategory.LICENSING: "Business Applications",
    CostCategory.PERSONNEL: "Other",
    CostCategory.OTHER: "Other",
}

HEADER = (
    AVAILABILITY_ZONE,
    BILLED_COST,
    BILLING_ACCOUNT_ID,
    BILLING_ACCOUNT_NAME,
    BILLING_CURRENCY,
    BILLING_PERIOD_END,
    BILLING_PERIOD_START,
    CHARGE_CATEGORY,
    CHARGE_CLASS,
    CHARGE_DESCRIPTION,
    CHARGE_FREQUENCY,
    CHARGE_PERIOD_END,
    CHARGE_PERIOD_START,
    CHARGE_TYPE,
    COMMITMENT_DISCOUNT_CATEGORY,
    COMMITMENT_DISCOUNT_ID,
    COMMITMENT_DISCOUNT_NAME,
    COMMITMENT_DISCOUNT_STATUS,
    COMMITMENT_DISCOUNT_TYPE,
    CONSUMED_QUANTITY,
    CONSUMED_UNIT,
    CONTRACTED_COST,
    CONTRACTED_UNIT_PRICE,
    EFFECTIVE_COST,
    INVOICE_ISSUER,
    LIST_COST,
    LIST_UNIT_PRICE,
    PRICING_CATEGORY,
    PRICING_QUANTITY,
    PRICING_UNIT,
    PROVIDER,
    PUBLISHER,
    REGION_ID,
    REGION_NAME,
    RESOURCE_ID,
    RESOURCE_NAME,
    RESOURCE_TYPE,
    SERVICE_CATEGORY,
    SERVICE_NAME,
    SKU_ID,
    SKU_PRICE_ID,
    SUB_ACCOUNT_ID,
    SUB_ACCOUNT_NAME,
    TAGS,
    X_COST_ENTRY_ID,
    X_CATEGORY,
    X_SOURCE,
    X_EXTERNAL_ID,
)

# What `focus_rows` reads of each cost entry (a `values_list` of these, in this order).
SOURCE_FIELDS = (
    "pk",
    "date",
    "category",
    "amount",
    "description",
    "model",
    "source",
    "external_id",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "price_id",
    "price__provider",
    "project__slug",
    "project__name",
    "project__organization__slug",
    "project__organization__name",
    "project__organization__currency",
    "project__tags",
    "tags",
    "project__cost_centre__code",
)


def effective_tags(project_tags: dict[str, str], entry_tags: dict[str, str]) -> dict[str, str]:
    """Return a cost's tags: its project's, overridden key by key by the entry's own (chargeback groups by these)."""
    return {**project_tags, **entry_tags}


def focus_tags(*, project_slug: str, cost_centre: str | None, tags: dict[str, str]) -> dict[str, str]:
    """Return a FOCUS row's `Tags`: the cost's tags, its project and its cost centre (ours `tracker_`-prefixed)."""
    return {**tags, PROJECT_TAG: project_slug, **({COST_CENTRE_TAG: cost_centre} if cost_centre else {})}


def tags_from_focus(value: object) -> dict[str, str]:
    """Return the tags of a FOCUS `Tags` cell (a JSON object, or its text) as our tags (projects/tags.py).

    For the FOCUS importer: keys are lower-cased and each character our keys do not allow becomes `_`
    (`user:CostCenter` → `user:costcenter`, `Team Name` → `team_name`), cut to 63; values become text
    cut to 256; our own `tracker_` keys (written by the export) and empty keys are dropped; at most 50 kept.
    """
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else {}
    if not isinstance(value, dict):
        raise ValueError("FOCUS Tags is a JSON object.")
    tags: dict[str, str] = {}
    for key, text in value.items():
        key = str(key).strip().lower()
        if not _TAG_KEY.match(key):  # most keys are already ours: skip the rewriting (an import's cost per row)
            key = _TAG_KEY_CHARACTER.sub("_", key).lstrip("_.:/-")
        key = key[:63]
        if key and not key.startswith(TRACKER_TAG_PREFIX) and len(tags) < MAX_TAGS:
            text = text if isinstance(text, str) else json.dumps(text)
            tags[key] = (text if text.isprintable() else "".join(c for c in text if c.isprintable()))[:MAX_VALUE]
    tags_validate(tags)
    return tags


def _utc(day: dt.date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def _month_after(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def focus_rows(entries: Iterable[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    """Yield one FOCUS row (in HEADER's order) per priced cost entry read as SOURCE_FIELDS."""
    labels = dict(CostCategory.choices)
    for (
        pk,
        day,
        category,
        amount,
        description,
        model,
        source,
        external_id,
        input_tokens,
        cached_input_tokens,
        output_tokens,
        price_id,
        price_provider,
        project_slug,
        project_name,
        organization_slug,
        organization_name,
        currency,
        project_tags,
        entry_tags,
        cost_centre,
    ) in entries:
        if amount is None:
            continue
        tokens = input_tokens + cached_input_tokens + output_tokens
        provider = price_provider or UNKNOWN_PROVIDER
        month = day.replace(day=1)
        sku = model or category
        yield (
            "",  # AvailabilityZone
            amount,  # BilledCost
            organization_slug,
            organization_name,
            currency,
            _utc(_month_after(month)),  # BillingPeriodEnd (exclusive)
            _utc(month),
            USAGE,
            "",  # ChargeClass: no corrections
            description or labels.get(category, category),
            USAGE_BASED,
            _utc(day + dt.timedelta(days=1)),  # ChargePeriodEnd (exclusive)
            _utc(day),
            USAGE,  # ChargeType, see the module docstring
            "",
            "",
            "",
            "",
            "",  # no commitment discounts
            # A decimal, so that a file of whole token counts still reads as decimals.
            Decimal(tokens).quantize(Decimal("0.0")) if tokens else "",  # ConsumedQuantity
            TOKENS if tokens else "",
            amount,  # ContractedCost
            "",
            amount,  # EffectiveCost
            provider,  # InvoiceIssuer
            amount,  # ListCost
            "",
            STANDARD if price_id else "",  # PricingCategory
            "",
            "",
            provider,  # Provider
            provider,  # Publisher
            "",
            "",
            "",
            model,  # ResourceName
            "",
            SERVICE_CATEGORIES.get(category, "Other"),
            labels.get(category, category),  # ServiceName
            sku,  # SkuId
            f"model-price-{price_id}" if price_id else sku,  # SkuPriceId
            project_slug,  # SubAccountId
            project_name,
            json.dumps(  # Tags
                focus_tags(
                    project_slug=project_slug, cost_centre=cost_centre, tags=effective_tags(project_tags, entry_tags)
                )
            ),
            pk,
            category,
            source,
            external_id,
        )
