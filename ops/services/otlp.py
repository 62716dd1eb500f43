"""Record the usage an OTLP export carries: exactly once per span, aggregated, priced by the one pricing function.

Spans are not stored. Each counted span leaves only its key (organization, trace id, span id) in
`OtlpSpanKey`, inserted with ON CONFLICT DO NOTHING: the spans whose key was new are the ones to
count, so a resent or retried export, or two exporters sending the same spans at once, count each
span once (the second insert waits for the first transaction and then finds the key). The usage is
added into one cost entry per project × provider × model × day × price (its `external_id` names
that key) with an upsert that locks the row, and the entry's amount is re-priced from its new
totals. Keys are kept OTLP_SPAN_KEY_RETENTION_DAYS after the span's day; older spans are refused,
so a purged key can never let a span be counted twice.
"""

import datetime as dt
import functools
import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from ops.models import CostCategory, CostEntry, CostSource, ModelPrice, ModelProvider, OtlpSpanKey
from ops.otlp import UsageSpans
from ops.providers import provider_code
from ops.selectors.portfolio import price_book, usage_price
from ops.services.snapshots import CostSpend, spend_snapshots_adjust
from projects import audit
from projects.models import Organization, Project

UNKNOWN_PROJECT = "no project names this service.name or tracker.project"
# Rows per INSERT: keeps SQLite under its bound-parameter limit, PostgreSQL's statements small.
CHUNK = 1000

AggregateKey = tuple[int, str, str, dt.date]  # project id, provider code, model, day


@dataclass(frozen=True)
class OtlpResult:
    """What an export did: usage spans counted now, already counted before, refused (by reason); entries touched."""

    counted: int
    duplicates: int
    rejected: Counter[str]
    created_ids: list[int]
    changed_ids: list[int]

    @property
    def rejected_spans(self) -> int:
        return sum(self.rejected.values())

    @property
    def message(self) -> str:
        return "; ".join(f"{count} usage span(s): {reason}" for reason, count in sorted(self.rejected.items()))


def retention_start(*, today: dt.date | None = None) -> dt.date:
    """Return the first UTC day whose span keys are still kept: spans ending before it are refused."""
    today = today or timezone.now().astimezone(dt.UTC).date()
    return today - dt.timedelta(days=settings.OTLP_SPAN_KEY_RETENTION_DAYS)


def _projects(organization: Organization, usage: UsageSpans) -> tuple[dict[str, int], dict[str, int]]:
    """Return the organization's projects by service.name and by tracker.project reference (id or slug)."""
    references = {span.project for span in usage.spans if span.project}
    ids = [int(ref) for ref in references if ref.isdigit()]
    by_service: dict[str, int] = {}
    by_reference: dict[str, int] = {}
    for pk, slug, names in (
        Project.objects.filter(organization=organization)
        .filter(~Q(otel_service_names=[]) | Q(slug__in=references) | Q(pk__in=ids))
        .order_by("-pk")  # a name two projects claim goes to the older one
        .values_list("pk", "slug", "otel_service_names")
    ):
        by_service.update(dict.fromkeys(names, pk))
        by_reference[slug] = by_reference[str(pk)] = pk
    return by_service, by_reference


def _usage_prices(organization: Organization, keys: set[AggregateKey]) -> dict[AggregateKey, ModelPrice | None]:
    """Return the price of each key's provider and model valid on its day (None: unpriced), in one query.

    A span naming no known provider (`other`) is priced under the model's only provider, as a usage
    row without one is (`PriceBook.provider_for`).
    """
    book = price_book(organization_ids=[organization.pk], models={key[2] for key in keys})
    prices: dict[AggregateKey, ModelPrice | None] = {}
    for key in keys:
        _, provider, model, day = key
        if provider == ModelProvider.OTHER:
            provider = book.provider_for(organization_id=organization.pk, provider="", model=model) or provider
        prices[key] = book.price_on(organization_id=organization.pk, provider=provider, model=model, date=day)
    return prices


def _new_span_keys(organization: Organization, rows: list[tuple[bytes, bytes, dt.date]]) -> set[tuple[bytes, bytes]]:
    """Insert the span keys, in one order (no deadlock between exporters); return those not recorded before."""
    table = connection.ops.quote_name(OtlpSpanKey._meta.db_table)
    new: set[tuple[bytes, bytes]] = set()
    with connection.cursor() as cursor:
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            values = ", ".join(["(%s, %s, %s, %s)"] * len(chunk))
            sql = f"INSERT INTO {table} (organization_id, trace_id, span_id, day) VALUES {values}"  # nosec B608
            cursor.execute(
                f"{sql} ON CONFLICT DO NOTHING RETURNING trace_id, span_id",
                [value for row in chunk for value in (organization.pk, *row)],
            )
            new.update((bytes(trace_id), bytes(span_id)) for trace_id, span_id in cursor.fetchall())
    return new


def _external_id(provider: str, model: str, day: dt.date, price: ModelPrice | None) -> str:
    key = f"{provider}\x1f{model}\x1f{day.isoformat()}\x1f{price.pk if price else ''}"
    return f"otlp:{hashlib.sha256(key.encode()).hexdigest()[:40]}"


_SUMMED = ("input_tokens", "cached_input_tokens", "output_tokens", "requests")


def _upsert(rows: list[dict], now: dt.datetime) -> dict[tuple[int, str], tuple[int, bool, int, int, int]]:
    """Add the rows into their entries (created when new); return (id, created, input, cached, output totals) by key."""
    # Table and column names come from model metadata and this module, never from the export.
    table = connection.ops.quote_name(CostEntry._meta.db_table)
    columns = list(rows[0])
    summed = ", ".join(f"{c} = {table}.{c} + EXCLUDED.{c}" for c in _SUMMED)
    placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
    values = ", ".join([placeholders] * len(rows))
    # The partial unique index cost_external_id_unique, named by its columns and predicate.
    conflict = "ON CONFLICT (project_id, external_id) WHERE external_id <> ''"
    update = f"DO UPDATE SET {summed}, updated_at = EXCLUDED.updated_at"  # nosec B608
    returning = "RETURNING project_id, external_id, id, created_at = %s, " + ", ".join(_SUMMED[:3])
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values} {conflict} {update} {returning}"  # nosec B608
    with connection.cursor() as cursor:
        cursor.execute(sql, [row[c] for row in rows for c in columns] + [now])
        return {(project_id, external_id): rest for project_id, external_id, *rest in cursor.fetchall()}


@transaction.atomic
def otlp_traces_ingest(*, organization: Organization, by: AbstractBaseUser, usage: UsageSpans) -> OtlpResult:
    """Count an export's usage spans into the organization's usage cost entries, each span once.

    A span's project is its `tracker.project` (span, else resource; an id or a slug), else the project
    whose `otel_service_names` list its resource's `service.name`; its day is its end in the
    organization's timezone. Spans naming no project of the organization, or older than the span-key
    retention, are refused (the answer's `partial_success`); the others are recorded.
    """
    rejected = Counter(usage.rejected)
    by_service, by_reference = _projects(organization, usage) if usage.spans else ({}, {})
    oldest, zone = retention_start(), organization.tzinfo
    counted: dict[tuple[bytes, bytes], tuple[AggregateKey, object]] = {}
    repeated = 0  # the same span twice in this export
    for span in usage.spans:
        project_id = by_reference.get(span.project) if span.project else by_service.get(span.service_name)
        if project_id is None:
            rejected[UNKNOWN_PROJECT] += 1
        elif span.end.date() < oldest:
            rejected[f"ended before the {settings.OTLP_SPAN_KEY_RETENTION_DAYS}-day window"] += 1
        else:
            key = (project_id, provider_code(span.provider).value, span.model, span.end.astimezone(zone).date())
            repeated += (span.trace_id, span.span_id) in counted
            counted.setdefault((span.trace_id, span.span_id), (key, span))
    span_keys = sorted((trace_id, span_id, span.end.date()) for (trace_id, span_id), (_, span) in counted.items())
    new = _new_span_keys(organization, span_keys) if span_keys else set()
    totals: dict[AggregateKey, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for span_key in new:
        key, span = counted[span_key]
        total = totals[key]
        total[0] += span.input_tokens
        total[1] += span.cached_input_tokens
        total[2] += span.output_tokens
        total[3] += 1
    result = OtlpResult(
        counted=len(new),
        duplicates=repeated + len(counted) - len(new),
        rejected=rejected,
        created_ids=[],
        changed_ids=[],
    )
    if totals:
        _record(organization, by, totals, result)
    return result


def _record(organization: Organization, by: AbstractBaseUser, totals: dict, result: OtlpResult) -> None:
    prices = _usage_prices(organization, set(totals))
    now = timezone.now()
    rows = []
    for key, (input_tokens, cached, output, requests) in totals.items():
        project_id, provider, model, day = key
        price = prices[key]
        tokens = {"input_tokens": input_tokens, "cached_input_tokens": cached, "output_tokens": output}
        rows.append(
            {
                "project_id": project_id,
                "date": day,
                "category": CostCategory.INFERENCE,
                "amount": usage_price(price=price, **tokens) if price else None,
                "description": f"Token usage (OpenTelemetry): {model}",
                "model": model,
                "provider": provider,
                **tokens,
                "requests": requests,
                "gpu_hours": 0,
                "energy_kwh": 0,
                "source": CostSource.USAGE,
                "price_id": price.pk if price else None,
                "external_id": _external_id(provider, model, day, price),
                "created_by_id": by.pk,
                "created_at": now,
                "updated_at": now,
                "_price": price,
            }
        )
    rows.sort(key=lambda row: (row["project_id"], row["external_id"]))  # one lock order for every exporter
    prices_of = [row.pop("_price") for row in rows]
    returned = _upsert(rows, now)
    repriced, added, removed = [], [], []
    for row, price in zip(rows, prices_of, strict=True):
        pk, created, input_tokens, cached, output = returned[(row["project_id"], row["external_id"])]
        (result.created_ids if created else result.changed_ids).append(pk)
        spend = functools.partial(CostSpend, organization.pk, row["project_id"], row["date"])
        if created:
            added.append(spend(row["amount"]))
        elif price:
            # The entry's amount is its new totals priced once, not a sum of rounded amounts.
            tokens = {"input_tokens": input_tokens, "cached_input_tokens": cached, "output_tokens": output}
            repriced.append(CostEntry(pk=pk, amount=usage_price(price=price, **tokens)))
            before = {name: total - row[name] for name, total in tokens.items()}
            added.append(spend(repriced[-1].amount))
            removed.append(spend(usage_price(price=price, **before)))
    CostEntry.objects.bulk_update(repriced, ["amount"])
    spend_snapshots_adjust(added=added, removed=removed)
    projects = {row["project_id"] for row in rows}
    audit.record_batch(
        model=CostEntry,
        organization_id=organization.pk,
        project_id=next(iter(projects)) if len(projects) == 1 else None,
        label=f"OpenTelemetry export: {result.counted} span{'' if result.counted == 1 else 's'} of token usage",
        created=result.created_ids,
        changed=result.changed_ids,
        spans=result.counted,
    )


def otlp_span_keys_purge(*, today: dt.date | None = None) -> int:
    """Delete the span keys older than the retention (the receiver refuses those spans now); return how many."""
    deleted, _ = OtlpSpanKey.objects.filter(day__lt=retention_start(today=today)).delete()
    return deleted
