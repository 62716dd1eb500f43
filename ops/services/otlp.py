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
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from ops import money
from ops.models import CostCategory, CostEntry, CostSource, ModelPrice, ModelProvider, OtlpSpanKey
from ops.otlp import UsageSpan, UsageSpans
from ops.providers import provider_code
from ops.selectors.portfolio import price_book, usage_cost, usage_currencies
from ops.services.snapshots import CostSpend, spend_snapshots_adjust
from projects import audit
from projects.models import Organization, Project
from projects.tags import MAX_VALUE
from tracker.db import CompiledValues

UNKNOWN_PROJECT = "no project names this service.name or tracker.project"
# Rows per INSERT: keeps SQLite under its bound-parameter limit, PostgreSQL's statements small.
CHUNK = 1000

# Project id, provider code, model, day, and the values of the organization's OTLP tag keys on the span's resource.
AggregateKey = tuple[int, str, str, dt.date, tuple[tuple[str, str], ...]]


def _tag_value(value: object) -> str:
    return "".join(c for c in str(value) if c.isprintable())[:MAX_VALUE]  # a valid tag value (projects/tags.py)


def _aggregate_key(
    span: UsageSpan, project_id: int, provider: str, zone: dt.tzinfo, tag_keys: list[str]
) -> AggregateKey:
    """Return the usage entry a span counts into: one per project, provider, model, local day and resource tags."""
    tags = tuple((k, _tag_value(span.resource[k])) for k in tag_keys if k in span.resource)
    return project_id, provider, span.model, span.end.astimezone(zone).date(), tags


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


def _projects_named(*, organization_id: int, slugs: Sequence[str], ids: Sequence[int]) -> QuerySet:
    """The organization's projects an export may name: by service.name, or by slug or id."""
    return (
        Project.objects.filter(organization_id=organization_id)
        .filter(~Q(otel_service_names=[]) | Q(slug__in=slugs) | Q(pk__in=ids))
        .order_by("-pk")  # a name two projects claim goes to the older one
        .values("pk", "slug", "otel_service_names")
    )


# Compiled once per process and per count of references (CompiledValues): every export looks its projects
# up, and building and compiling the ORM's query cost more than running it.
@functools.lru_cache(maxsize=32)
def _projects_statement(slugs: int, ids: int) -> CompiledValues:
    probes = {
        "organization_id": -7_301_300,
        "slugs": tuple(f"probe:slug-{i}" for i in range(slugs)),
        "ids": tuple(-7_301_301 - i for i in range(ids)),
    }
    return CompiledValues(_projects_named(**probes), probes)


def _projects(organization: Organization, usage: UsageSpans) -> tuple[dict[str, int], dict[str, int]]:
    """Return the organization's projects by service.name and by tracker.project reference (id or slug)."""
    slugs = sorted({span.project for span in usage.spans if span.project})
    ids = sorted({int(ref) for ref in slugs if ref.isdigit()})
    by_service: dict[str, int] = {}
    by_reference: dict[str, int] = {}
    for row in _projects_statement(len(slugs), len(ids))(organization_id=organization.pk, slugs=slugs, ids=ids):
        pk = row["pk"]
        by_service.update(dict.fromkeys(row["otel_service_names"], pk))
        by_reference[row["slug"]] = by_reference[str(pk)] = pk
    return by_service, by_reference


def _usage_prices(organization: Organization, keys: set[AggregateKey]) -> dict[AggregateKey, ModelPrice | None]:
    """Return the price of each key's provider and model valid on its day (None: unpriced), in one query.

    A span naming no known provider (`other`) is priced under the model's only provider, as a usage
    row without one is (`PriceBook.provider_for`).
    """
    book = price_book(organization_ids=[organization.pk], models={key[2] for key in keys})
    prices: dict[AggregateKey, ModelPrice | None] = {}
    for key in keys:
        _, provider, model, day, _ = key
        if provider == ModelProvider.OTHER:
            provider = book.provider_for(organization_id=organization.pk, provider="", model=model) or provider
        prices[key] = book.price_on(organization_id=organization.pk, provider=provider, model=model, date=day)
    return prices


class _Span(NamedTuple):
    """A span to count: its key, the UTC day its key is purged by, its entry's index, its tokens."""

    trace_id: bytes
    span_id: bytes
    day: dt.date
    entry: int
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int


class _Entry(NamedTuple):
    """An entry this export's new spans went into: its token totals now and what the new spans added."""

    pk: int
    index: int
    created: bool
    totals: tuple[int, int, int]  # input, cached input and output tokens
    added: tuple[int, int, int, int]  # the same, and requests


def _external_id(
    provider: str, model: str, day: dt.date, tags: tuple[tuple[str, str], ...], price: ModelPrice | None
) -> str:
    key = f"{provider}\x1f{model}\x1f{day.isoformat()}\x1f{price.pk if price else ''}"
    if tags:  # untagged usage keeps the ids it always had
        key += "\x1f" + json.dumps(tags)
    return f"otlp:{hashlib.sha256(key.encode()).hexdigest()[:40]}"


_SUMMED = ("input_tokens", "cached_input_tokens", "output_tokens", "requests")
_DESCRIPTION = "Token usage (OpenTelemetry): "
# Table and column names come from model metadata and this module, never from the export.
_KEYS = connection.ops.quote_name(OtlpSpanKey._meta.db_table)
_ENTRIES = connection.ops.quote_name(CostEntry._meta.db_table)
_COLUMNS = (
    "project_id, date, category, amount, description, model, provider, input_tokens, cached_input_tokens,"
    " output_tokens, requests, gpu_hours, energy_kwh, source, price_id, external_id, created_by_id, created_at,"
    " updated_at, tags"
)
# The partial unique index cost_external_id_unique, named by its columns and predicate.
_UPSERT = (
    "ON CONFLICT (project_id, external_id) WHERE external_id <> '' DO UPDATE SET "  # nosec B608: names from model metadata
    + ", ".join(f"{c} = {_ENTRIES}.{c} + EXCLUDED.{c}" for c in _SUMMED)
    + ", updated_at = EXCLUDED.updated_at"
)
_RETURNING = (
    "RETURNING id, project_id, external_id, created_at = %(now)s, input_tokens, cached_input_tokens, output_tokens"
)
# The touched entries' new amounts, two array parameters: bulk_update's CASE per row costs more Python, and the
# entries' row locks are held from the upsert until the commit.
_REPRICED = ("pk", *money.CONVERSION_COLUMNS)
_REPRICE = (
    f"UPDATE {_ENTRIES} SET amount = v.amount, original_amount = v.original_amount,"  # nosec B608
    " original_currency = v.original_currency, exchange_rate = v.exchange_rate,"
    " exchange_rate_date = v.exchange_rate_date"
    " FROM unnest(%s::bigint[], %s::numeric[], %s::numeric[], %s::text[], %s::numeric[], %s::date[])"
    " AS v (id, amount, original_amount, original_currency, exchange_rate, exchange_rate_date)"
    f" WHERE {_ENTRIES}.id = v.id"
)
# An export in one statement: its span keys go in (in one order: no deadlock between exporters), and only
# the spans whose key was new are summed per entry and added into it (a key another export is inserting
# waits for that transaction, then is found: counted once). Amounts are priced afterwards, in Python.
_COUNT = f"""
WITH span AS (
    SELECT decode(trace_id, 'hex') AS trace_id, decode(span_id, 'hex') AS span_id, day, entry,
           input_tokens, cached_input_tokens, output_tokens
    FROM unnest(string_to_array(%(trace_ids)s, ','), string_to_array(%(span_ids)s, ','),
                string_to_array(%(days)s, ',')::date[], string_to_array(%(entries)s, ',')::int[],
                string_to_array(%(input)s, ',')::bigint[], string_to_array(%(cached)s, ',')::bigint[],
                string_to_array(%(output)s, ',')::bigint[])
        AS s (trace_id, span_id, day, entry, input_tokens, cached_input_tokens, output_tokens)
), new_key AS (
    INSERT INTO {_KEYS} (organization_id, trace_id, span_id, day)
    SELECT %(organization)s, trace_id, span_id, day FROM span ORDER BY trace_id, span_id
    ON CONFLICT DO NOTHING RETURNING trace_id, span_id
), added AS (
    SELECT entry, sum(input_tokens) AS input_tokens, sum(cached_input_tokens) AS cached_input_tokens,
           sum(output_tokens) AS output_tokens, count(*) AS requests
    FROM span JOIN new_key USING (trace_id, span_id) GROUP BY entry
), entry AS (
    SELECT * FROM unnest(%(projects)s::int[], %(dates)s::date[], %(providers)s::text[], %(models)s::text[],
                         %(prices)s::int[], %(external_ids)s::text[], %(tags)s::jsonb[]) WITH ORDINALITY
        AS e (project_id, date, provider, model, price_id, external_id, tags, entry)
), upserted AS (
    INSERT INTO {_ENTRIES} ({_COLUMNS})
    SELECT e.project_id, e.date, %(category)s, NULL, %(description)s || e.model, e.model, e.provider,
           a.input_tokens, a.cached_input_tokens, a.output_tokens, a.requests, 0, 0, %(source)s, e.price_id,
           e.external_id, %(by)s, %(now)s, %(now)s, e.tags
    FROM added a JOIN entry e ON e.entry = a.entry + 1
    ORDER BY e.project_id, e.external_id
    {_UPSERT} {_RETURNING}
)
SELECT u.*, e.entry - 1, a.input_tokens, a.cached_input_tokens, a.output_tokens, a.requests
FROM upserted u JOIN entry e USING (project_id, external_id) JOIN added a ON e.entry = a.entry + 1
"""  # nosec B608


def _count(
    organization: Organization,
    by: AbstractBaseUser,
    spans: list[_Span],
    entries: list[tuple[AggregateKey, ModelPrice | None]],
    now: dt.datetime,
) -> list[_Entry]:
    """Record the span keys and add the spans whose key was new into their entries; return those entries."""
    if connection.vendor != "postgresql":
        return _count_portable(organization, by, spans, entries, now)
    # The spans' columns go as comma-separated text, one parameter each: psycopg quotes a list element by
    # element in Python, five times slower for an export's 512 spans.
    trace_ids, span_ids, days, *numbers = zip(*spans, strict=True)
    trace_ids, span_ids = (",".join(key.hex() for key in keys) for keys in (trace_ids, span_ids))
    days, indexes, input_tokens, cached, output = (",".join(map(str, column)) for column in (days, *numbers))
    projects, providers, models, dates, tags = (list(c) for c in zip(*(key for key, _ in entries), strict=True))
    with connection.cursor() as cursor:
        cursor.execute(
            _COUNT,
            {
                "trace_ids": trace_ids,
                "span_ids": span_ids,
                "days": days,
                "entries": indexes,
                "input": input_tokens,
                "cached": cached,
                "output": output,
                "organization": organization.pk,
                "projects": projects,
                "dates": dates,
                "providers": providers,
                "models": models,
                "prices": [price.pk if price else None for _, price in entries],
                "external_ids": [_external_id(*key[1:], price) for key, price in entries],
                "tags": [json.dumps(dict(t)) for t in tags],
                "category": CostCategory.INFERENCE.value,
                "description": _DESCRIPTION,
                "source": CostSource.USAGE.value,
                "by": by.pk,
                "now": now,
            },
        )
        return [
            _Entry(pk, index, created, (i, c, o), tuple(added))
            for pk, _, _, created, i, c, o, index, *added in cursor.fetchall()
        ]


def _count_portable(
    organization: Organization,
    by: AbstractBaseUser,
    spans: list[_Span],
    entries: list[tuple[AggregateKey, ModelPrice | None]],
    now: dt.datetime,
) -> list[_Entry]:
    """`_count` for SQLite (`make run`), which has no unnest nor INSERT in WITH: the same steps, three statements."""
    new: set[tuple[bytes, bytes]] = set()
    added: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    with connection.cursor() as cursor:
        for start in range(0, len(spans), CHUNK):
            chunk = spans[start : start + CHUNK]
            values = ", ".join(["(%s, %s, %s, %s)"] * len(chunk))
            cursor.execute(
                f"INSERT INTO {_KEYS} (organization_id, trace_id, span_id, day) VALUES {values}"  # nosec B608
                " ON CONFLICT DO NOTHING RETURNING trace_id, span_id",
                [value for span in chunk for value in (organization.pk, span.trace_id, span.span_id, span.day)],
            )
            new.update((bytes(trace_id), bytes(span_id)) for trace_id, span_id in cursor.fetchall())
        for span in spans:
            if (span.trace_id, span.span_id) in new:
                total = added[span.entry]
                for at, value in enumerate((span.input_tokens, span.cached_input_tokens, span.output_tokens, 1)):
                    total[at] += value
        if not added:
            return []
        rows = []
        for index in sorted(added, key=lambda i: (entries[i][0][0], _external_id(*entries[i][0][1:], entries[i][1]))):
            (project_id, provider, model, day, tags), price = entries[index]
            external_id = _external_id(provider, model, day, tags, price)
            rows.append(
                (
                    project_id,
                    day,
                    CostCategory.INFERENCE.value,
                    None,
                    _DESCRIPTION + model,
                    model,
                    provider,
                    *added[index],
                    0,
                    0,
                    CostSource.USAGE.value,
                    price.pk if price else None,
                    external_id,
                    by.pk,
                    now,
                    now,
                    json.dumps(dict(tags)),
                )
            )
        values = ", ".join(["(" + ", ".join(["%s"] * len(rows[0])) + ")"] * len(rows))
        cursor.execute(
            f"INSERT INTO {_ENTRIES} ({_COLUMNS}) VALUES {values} {_UPSERT} "  # nosec B608
            + _RETURNING.replace("%(now)s", "%s"),
            [value for row in rows for value in row] + [now],
        )
        returned = {(project_id, external_id): (pk, *rest) for pk, project_id, external_id, *rest in cursor.fetchall()}
    result = []
    for index, total in added.items():
        (project_id, provider, model, day, tags), price = entries[index]
        pk, created, *totals = returned[project_id, _external_id(provider, model, day, tags, price)]
        result.append(_Entry(pk, index, bool(created), tuple(totals), tuple(total)))
    return result


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
    keys: dict[AggregateKey, int] = {}  # the entries' keys, numbered
    spans: dict[tuple[bytes, bytes], _Span] = {}
    repeated = 0  # the same span twice in this export
    tag_keys = organization.otlp_tag_keys
    codes: dict[str, str] = {}  # provider name as sent → code: an export names few providers, for 512 spans
    for span in usage.spans:
        project_id = by_reference.get(span.project) if span.project else by_service.get(span.service_name)
        if project_id is None:
            rejected[UNKNOWN_PROJECT] += 1
        elif span.end.date() < oldest:
            rejected[f"ended before the {settings.OTLP_SPAN_KEY_RETENTION_DAYS}-day window"] += 1
        elif (span.trace_id, span.span_id) in spans:
            repeated += 1
        else:
            if (code := codes.get(span.provider)) is None:
                code = codes[span.provider] = provider_code(span.provider).value
            key = _aggregate_key(span, project_id, code, zone, tag_keys)
            spans[span.trace_id, span.span_id] = _Span(
                span.trace_id,
                span.span_id,
                span.end.date(),
                keys.setdefault(key, len(keys)),
                span.input_tokens,
                span.cached_input_tokens,
                span.output_tokens,
            )
    touched, created_ids, changed_ids = [], [], []
    if spans:
        prices = _usage_prices(organization, set(keys))
        entries = [(key, prices[key]) for key in keys]
        touched = _count(organization, by, list(spans.values()), entries, timezone.now())
        _price(organization, entries, touched)
    for entry in touched:
        (created_ids if entry.created else changed_ids).append(entry.pk)
    counted = sum(entry.added[3] for entry in touched)
    result = OtlpResult(
        counted=counted,
        duplicates=repeated + len(spans) - counted,
        rejected=rejected,
        created_ids=created_ids,
        changed_ids=changed_ids,
    )
    if touched:
        projects = {entries[entry.index][0][0] for entry in touched}
        audit.record_batch(
            model=CostEntry,
            organization_id=organization.pk,
            project_id=next(iter(projects)) if len(projects) == 1 else None,
            label=f"OpenTelemetry export: {counted} span{'' if counted == 1 else 's'} of token usage",
            created=created_ids,
            changed=changed_ids,
            spans=counted,
        )
    return result


def _price(
    organization: Organization, entries: list[tuple[AggregateKey, ModelPrice | None]], touched: list[_Entry]
) -> None:
    """Price the touched entries from their new totals, once (no sum of rounded amounts); carry them into snapshots."""
    if not touched:
        return
    priced, added, removed = [], [], []
    days = [key[3] for key, _ in entries]
    rates = money.rates_for(  # once for the batch
        organizations=[organization],
        currencies=usage_currencies((price for _, price in entries), {organization.pk: organization}),
        start=min(days),
        end=max(days),
    )
    for entry in touched:
        (project_id, _, _, day, _), price = entries[entry.index]
        spend = functools.partial(CostSpend, organization.pk, project_id, day)
        cost = functools.partial(usage_cost, price=price, organization=organization, rates=rates, day=day)
        input_tokens, cached, output = entry.totals
        try:
            conversion = price and cost(input_tokens=input_tokens, cached_input_tokens=cached, output_tokens=output)
        except money.NoRate:  # kept unpriced, as without a price: repricing costs it once a rate is known
            conversion = None
        if conversion is None:
            if entry.created:
                added.append(spend(None))  # one more unpriced entry
            continue
        priced.append(CostEntry(pk=entry.pk, **conversion.fields()))
        added.append(spend(conversion.amount))
        if not entry.created:
            new_input, new_cached, new_output, _ = entry.added
            before = cost(
                input_tokens=input_tokens - new_input,
                cached_input_tokens=cached - new_cached,
                output_tokens=output - new_output,
            )
            removed.append(spend(before.amount))
    if priced and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_REPRICE, [[getattr(entry, column) for entry in priced] for column in _REPRICED])
    else:
        CostEntry.objects.bulk_update(priced, money.CONVERSION_COLUMNS)
    spend_snapshots_adjust(added=added, removed=removed)


def otlp_span_keys_purge(*, today: dt.date | None = None) -> int:
    """Delete the span keys older than the retention (the receiver refuses those spans now); return how many."""
    deleted, _ = OtlpSpanKey.objects.filter(day__lt=retention_start(today=today)).delete()
    return deleted
