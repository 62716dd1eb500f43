"""Bulk ingestion from integrations: cost entries and token usage, all-or-nothing and idempotent.

Rows arrive as parsed JSON. Each row is checked in Python without touching the database; every
check that needs the database (projects, roles, prices, already-recorded external ids) is one
query for the whole batch; the rows are written with one COPY on PostgreSQL (`bulk_create`
elsewhere). A batch either writes every new row or nothing, and each bad row is named by its
index and field. Costs people send get one history event per row; token usage, a machine-made
aggregate, one event per project and batch listing the entries it created; a file of costs
(`cost_entries_import`), one event for the file.
"""

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection, models, transaction
from django.utils import timezone

from ops import money
from ops.models import CostCategory, CostEntry, CostSource, ModelProvider
from ops.providers import known_provider
from ops.selectors.portfolio import price_book, usage_cost, usage_currencies
from ops.services.snapshots import CostSpend, spend_snapshots_adjust
from projects import audit
from projects.models import Membership, Organization, Project, Role
from projects.services import membership_require
from projects.tags import tags_validate
from tracker.exceptions import Conflict, NotPermitted, ValidationFailed

MAX_ROWS = 10_000
MAX_BIGINT = 2**63 - 1


@dataclass(frozen=True)
class IngestResult:
    """What a batch did: the ids of the entries it created, and the rows whose external id was already recorded."""

    created_ids: list[int]
    existing: list[dict[str, Any]] = field(default_factory=list)


class _RowError(ValueError):
    pass


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _RowError("A whole number is required.")
    if not 0 <= value <= MAX_BIGINT:
        raise _RowError(f"Must be between 0 and {MAX_BIGINT}.")
    return value


def _decimal(max_digits: int, places: int) -> Callable[[Any], Decimal]:
    limit = Decimal(10) ** (max_digits - places)

    def parse(value: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise _RowError("A number is required.")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation as exc:
            raise _RowError("A number is required.") from exc
        if not number.is_finite():
            raise _RowError("A finite number is required.")
        if number < 0:
            raise _RowError("Must not be negative.")
        if number >= limit:
            raise _RowError(f"Must be less than {limit}.")
        if number.as_tuple().exponent < -places:
            raise _RowError(f"At most {places} decimal places.")
        return number

    return parse


def _text(max_length: int, *, blank: bool = True) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise _RowError("Text is required.")
        value = value.strip()
        if "\x00" in value:  # PostgreSQL text cannot hold it: refuse it here rather than fail on insert
            raise _RowError("Null characters are not allowed.")
        try:
            value.encode()  # a lone surrogate ("\ud800", legal in JSON) is no UTF-8: COPY would fail on it
        except UnicodeEncodeError as exc:
            raise _RowError("Unpaired surrogate characters are not allowed.") from exc
        if len(value) > max_length:
            raise _RowError(f"At most {max_length} characters.")
        if not value and not blank:
            raise _RowError("This field may not be blank.")
        return value

    return parse


def _date(value: Any) -> dt.date:
    if not isinstance(value, str) or len(value) != 10:
        raise _RowError("A date as YYYY-MM-DD is required.")
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise _RowError("A date as YYYY-MM-DD is required.") from exc


def _choice(values: Sequence[str]) -> Callable[[Any], str]:
    allowed = set(values)

    def parse(value: Any) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise _RowError(f"Choose one of {', '.join(values)}.")
        return value

    return parse


def _provider(value: Any) -> str:
    """A provider of the vocabulary, by its code or any alias (ops/providers.py); unknown names are refused."""
    if not isinstance(value, str) or not value.strip():
        raise _RowError("A provider name is required.")
    code = known_provider(value)
    if code is None:
        raise _RowError(f"Unknown provider “{value[:100]}”: use one of {', '.join(ModelProvider.values)}.")
    return code.value


def _currency(value: Any) -> str:
    if not money.currency_valid(value):
        raise _RowError("An ISO 4217 currency code in capitals is required, e.g. EUR.")
    return value


def _tags(value: Any) -> dict[str, str]:
    try:
        tags_validate(value)
    except DjangoValidationError as exc:
        raise _RowError(exc.messages[0]) from exc
    return value


def _project_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _RowError("A project id is required.")
    return value


Parser = Callable[[Any], Any]

COST_ROW: dict[str, tuple[Parser, bool]] = {
    # name: (parser, required)
    "project": (_project_id, True),
    "date": (_date, True),
    "category": (_choice(CostCategory.values), True),
    "amount": (_decimal(14, 4), True),
    "currency": (_currency, False),
    "description": (_text(500), False),
    "model": (_text(200), False),
    "input_tokens": (_integer, False),
    "cached_input_tokens": (_integer, False),
    "output_tokens": (_integer, False),
    "requests": (_integer, False),
    "gpu_hours": (_decimal(12, 2), False),
    "energy_kwh": (_decimal(12, 2), False),
    "external_id": (_text(200), False),
    "tags": (_tags, False),
}

USAGE_ROW: dict[str, tuple[Parser, bool]] = {
    "project": (_project_id, True),
    "date": (_date, True),
    "model": (_text(200, blank=False), True),
    "provider": (_provider, False),
    "input_tokens": (_integer, True),
    "output_tokens": (_integer, True),
    "cached_input_tokens": (_integer, False),
    "requests": (_integer, False),
    "description": (_text(500), False),
    "external_id": (_text(200), False),
    "tags": (_tags, False),
}


def _parse_rows(entries: Any, spec: Mapping[str, tuple[Parser, bool]]) -> list[dict[str, Any]]:
    """Check every row's shape and fields; raise one error listing each bad row by index and field."""
    rows, errors = _check_rows(entries, spec)
    if errors:
        _refuse(errors)
    return rows


def _check_rows(entries: Any, spec: Mapping[str, tuple[Parser, bool]]) -> tuple[list[dict[str, Any]], dict]:
    """Return every row's parsed fields and the errors of the bad ones, by `entries.<index>.<field>`."""
    if not isinstance(entries, list) or not entries:
        raise ValidationFailed("Send a non-empty list of entries.", errors={"entries": ["A non-empty list."]})
    if len(entries) > MAX_ROWS:
        raise ValidationFailed(
            f"At most {MAX_ROWS} entries per request.", errors={"entries": [f"At most {MAX_ROWS} entries."]}
        )
    errors: dict[str, list[str]] = {}
    rows: list[dict[str, Any]] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            errors[f"entries.{index}"] = ["An object is required."]
            rows.append({})
            continue
        row: dict[str, Any] = {}
        for name in entry.keys() - spec.keys():
            errors[f"entries.{index}.{name}"] = ["Unknown field."]
        for name, (parse, required) in spec.items():
            if name not in entry or entry[name] is None:
                if required:
                    errors[f"entries.{index}.{name}"] = ["This field is required."]
                continue
            try:
                row[name] = parse(entry[name])
            except _RowError as exc:
                errors[f"entries.{index}.{name}"] = [str(exc)]
        rows.append(row)
    return rows, errors


def _refuse(errors: dict[str, list[str]]) -> None:
    bad_rows = len({key.split(".")[1] for key in errors if key.count(".") >= 1})
    raise ValidationFailed(
        f"Invalid entries: {bad_rows}; nothing was recorded." if bad_rows else next(iter(errors.values()))[0],
        errors=errors,
    )


def _projects(rows: list[dict[str, Any]], by: AbstractBaseUser) -> dict[int, Project]:
    """Lock and return the rows' projects the caller may write to; unknown ones are row errors.

    Locking the projects serialises concurrent batches on them, so the external-id check below
    cannot race another batch.
    """
    wanted = sorted({row["project"] for row in rows})
    member_of = Membership.objects.filter(user=by).values("organization_id")
    projects = {
        p.pk: p
        for p in Project.objects.select_for_update(of=("self",))
        .select_related("organization")
        .filter(pk__in=wanted, organization__in=member_of)
        .order_by("pk")
    }
    errors = {
        f"entries.{i}.project": ["Unknown project."] for i, row in enumerate(rows) if row["project"] not in projects
    }
    if errors:
        _refuse(errors)
    roles = dict(
        Membership.objects.filter(user=by, organization__in={p.organization_id for p in projects.values()}).values_list(
            "organization_id", "role"
        )
    )
    for project in projects.values():
        if Role.rank(roles[project.organization_id]) < Role.rank(Role.CONTRIBUTOR):
            raise NotPermitted(f"This needs the contributor role in {project.organization.name}.")
    return projects


def _split_existing(
    rows: list[dict[str, Any]], spec: Mapping[str, tuple[Parser, bool]]
) -> tuple[list[int], list[dict[str, Any]]]:
    """Return the indexes of rows to create and the rows whose external id is already recorded as sent.

    A row resending a recorded external id with other content (any field of `spec` the caller sends)
    is a 409 naming each such row and field: silently keeping the old entry would lose the change.
    """
    seen, errors = _repeats(rows)
    if errors:
        _refuse(errors)
    compared = [name for name in spec if name not in ("project", "external_id")]
    columns = [SENT_AS.get(name, name) for name in compared]
    recorded = {
        (project_id, external_id): (pk, dict(zip(compared, values, strict=True)))
        for project_id, external_id, pk, *values in _recorded(seen, columns)
        if (project_id, external_id) in seen
    }
    existing = []
    for key, (pk, stored) in sorted(recorded.items(), key=lambda item: seen[item[0]]):
        index = seen[key]
        # A row that names no currency is in its organization's: `cost_entries_check` does not know it yet.
        differing = [
            name
            for name in compared
            if (name != "currency" or name in rows[index]) and _sent(rows[index], name) != stored[name]
        ]
        if differing:
            errors[f"entries.{index}.external_id"] = [f"Recorded as entry {pk} with another {', '.join(differing)}."]
        existing.append({"index": index, "external_id": key[1], "id": pk})
    if errors:
        raise Conflict(
            f"Entries resend a recorded external_id with other content: {len(errors)}; nothing was recorded.",
            errors=errors,
            code="external_id_conflict",
        )
    known = {item["index"] for item in existing}
    return [i for i in range(len(rows)) if i not in known], existing


def _repeats(
    rows: list[dict[str, Any]], *, skip: Collection[int] = ()
) -> tuple[dict[tuple[int, str], int], dict[str, list[str]]]:
    """Return the index of each (project, external id) of the batch, and an error for each row repeating one."""
    errors: dict[str, list[str]] = {}
    seen: dict[tuple[int, str], int] = {}
    for index, row in enumerate(rows):
        if index in skip:
            continue
        if external_id := row.get("external_id"):
            key = (row["project"], external_id)
            if key in seen:
                errors[f"entries.{index}.external_id"] = [f"Repeats entry {seen[key]} of this request."]
            seen[key] = index
    return seen, errors


# A cost row's amount and currency are stored as sent in these columns (`amount` holds the converted one).
SENT_AS = {"amount": "original_amount", "currency": "original_currency"}


def _sent(row: dict[str, Any], name: str) -> Any:
    """Return what the row sets `name` to: its value, or the column's default when the row leaves it out."""
    return row[name] if name in row else CostEntry._meta.get_field(SENT_AS.get(name, name)).get_default()


def _currencies_default(rows: list[dict[str, Any]], projects: dict[int, Project]) -> None:
    """Give each cost row without a currency its organization's (what it is then stored as)."""
    for row in rows:
        row.setdefault("currency", projects[row["project"]].organization.currency)


def _convert(rows: list[dict[str, Any]], indexes: list[int], projects: dict[int, Project]) -> None:
    """Convert the amounts of the cost rows at `indexes` to their organization's currency (`ops.money`).

    The rates are loaded once for the batch; a row whose currency no rate covers is a row error.
    """
    if not indexes:
        return
    days = [rows[i]["date"] for i in indexes]
    organizations = {p.organization_id: p.organization for p in projects.values()}
    foreign = {rows[i]["currency"] for i in indexes} - {o.currency for o in organizations.values()}
    rates = money.rates_for(organizations=organizations.values(), currencies=foreign, start=min(days), end=max(days))
    errors: dict[str, list[str]] = {}
    for i in indexes:
        row = rows[i]
        try:
            conversion = rates.convert(
                amount=row.pop("amount"),
                currency=row.pop("currency"),
                day=row["date"],
                organization=projects[row["project"]].organization,
            )
        except money.NoRate as exc:
            errors[f"entries.{i}.currency"] = exc.errors["currency"]
            continue
        row.update(conversion.fields())
    if errors:
        _refuse(errors)


def _recorded(keys: Collection[tuple[int, str]], columns: Sequence[str]) -> Iterable[tuple[Any, ...]]:
    """Return (project id, external id, entry id, *columns) of the entries recorded under these projects and ids."""
    if not keys:
        return []
    project_ids = sorted({project for project, _ in keys})
    external_ids = sorted({external_id for _, external_id in keys})
    if not _on_postgresql():
        return CostEntry.objects.filter(project_id__in=project_ids, external_id__in=external_ids).values_list(
            "project_id", "external_id", "pk", *columns
        )
    # Two array parameters: the ORM would compile 10,000 IN parameters one by one. The table and column
    # names come from model metadata.
    quote = connection.ops.quote_name
    table = quote(CostEntry._meta.db_table)
    selected = "".join(f", {quote(CostEntry._meta.get_field(name).column)}" for name in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT project_id, external_id, id{selected} FROM {table}"  # nosec B608
            " WHERE project_id = ANY(%s) AND external_id = ANY(%s)",
            [project_ids, external_ids],
        )
        rows = cursor.fetchall()
    # Django has PostgreSQL hand JSON back as text (its field parses it): parse the tags as the ORM would.
    fields = [CostEntry._meta.get_field(name) for name in columns]

    def parsed(field: models.Field, value: Any) -> Any:
        return field.from_db_value(value, None, connection) if isinstance(field, models.JSONField) else value

    return [(*row[:3], *(parsed(f, v) for f, v in zip(fields, row[3:], strict=True))) for row in rows]


def _insert(
    rows: list[dict[str, Any]],
    indexes: list[int],
    by: AbstractBaseUser,
    projects: dict[int, Project],
    *,
    per_row_history: bool,
    **common: Any,
) -> list[int]:
    """Write the rows at `indexes` (with an event each when `per_row_history`); return their ids in request order."""
    if not indexes:
        return []
    now = timezone.now()
    values = [{**common, **rows[i], "created_by_id": by.pk, "created_at": now, "updated_at": now} for i in indexes]
    spends = [CostSpend(projects[v["project"]].organization_id, v["project"], v["date"], v["amount"]) for v in values]
    ids = (_copy if _on_postgresql() else _bulk_create)(values, projects, per_row_history)
    spend_snapshots_adjust(added=spends)
    return ids


def _on_postgresql() -> bool:
    return connection.vendor == "postgresql"


def _bulk_create(values: list[dict[str, Any]], projects: dict[int, Project], per_row_history: bool) -> list[int]:
    """Elsewhere (SQLite under `make run`): the ORM."""
    created = CostEntry.objects.bulk_create(CostEntry(project=projects[v.pop("project")], **v) for v in values)
    if per_row_history:
        audit.record_created_many(created)
    return [entry.pk for entry in created]


def _copy(values: list[dict[str, Any]], projects: dict[int, Project], per_row_history: bool) -> list[int]:
    """PostgreSQL: draw the ids from the sequence, COPY the rows, and have the database write their history.

    `bulk_create` spends most of a 10,000-row batch building model objects and quoting parameters
    in Python; this costs a few times a bare COPY of the same rows (`make bench` measures it).
    """
    fields = [f for f in CostEntry._meta.concrete_fields if not isinstance(f, models.GeneratedField)]
    defaults = {f.attname: f.get_default() for f in fields}
    attnames = [f.attname for f in fields]
    json_at = [i for i, f in enumerate(fields) if isinstance(f, models.JSONField)]  # COPY takes JSON as its text
    quote = connection.ops.quote_name
    table = CostEntry._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, len(values)]
        )
        ids = [pk for (pk,) in cursor.fetchall()]
        # The rows are built before the COPY starts: the statement (and its time limit) then spans the
        # data's transfer and insertion only, not the Python that makes it.
        cells, labels = [], []
        for pk, value in zip(ids, values, strict=True):
            project = projects[value.pop("project")]
            row = {**defaults, **value, "id": pk, "project_id": project.pk}
            line = [row[name] for name in attnames]
            for i in json_at:
                line[i] = json.dumps(line[i])
            cells.append(line)
            labels.append(CostEntry.label(project, row["date"], row["category"], row["amount"]))
        sql = f"COPY {quote(table)} ({', '.join(quote(f.column) for f in fields)}) FROM STDIN"
        with cursor.cursor.copy(sql) as copy:
            for line in cells:
                copy.write_row(line)
    if per_row_history:
        audit.record_copied(CostEntry, ids, labels)
    return ids


@transaction.atomic
def cost_entries_ingest(*, by: AbstractBaseUser, entries: Any) -> IngestResult:
    """Record up to 10,000 costs at once (contributors and up); external ids resent as recorded create nothing."""
    rows = _parse_rows(entries, COST_ROW)
    projects = _projects(rows, by)
    _currencies_default(rows, projects)
    to_create, existing = _split_existing(rows, COST_ROW)
    _convert(rows, to_create, projects)
    created = _insert(rows, to_create, by, projects, per_row_history=True, source=CostSource.API)
    return IngestResult(created_ids=created, existing=existing)


@dataclass(frozen=True)
class CostBatchCheck:
    """`cost_entries_check`'s answer: every bad row's errors, and the rows whose external id is recorded."""

    rows: list[dict[str, Any]]
    errors: dict[str, list[str]]
    existing: list[dict[str, Any]] = field(default_factory=list)


def cost_entries_check(*, entries: Any) -> CostBatchCheck:
    """Check costs as `cost_entries_ingest` and `cost_entries_import` would record them, writing nothing.

    Collect the errors of every bad row at once (by `entries.<index>.<field>`); the rows' projects
    are the caller's to check.
    """
    rows, errors = _check_rows(entries, COST_ROW)
    bad = {int(key.split(".")[1]) for key in errors}
    _, repeated = _repeats(rows, skip=bad)
    if errors or repeated:
        return CostBatchCheck(rows=rows, errors=errors | repeated)
    try:
        _, existing = _split_existing(rows, COST_ROW)
    except Conflict as conflict:  # a recorded external id sent with other content: an error of its row
        return CostBatchCheck(rows=rows, errors=conflict.errors)
    return CostBatchCheck(rows=rows, errors={}, existing=existing)


@transaction.atomic
def cost_entries_import(*, organization: Organization, by: AbstractBaseUser, entries: Any, label: str) -> IngestResult:
    """Record a file of costs into one organization (managers only): all or nothing, one history event.

    The rows are checked and written as `cost_entries_ingest` writes them (spend snapshots kept
    exact, resent external ids create nothing); the batch is one event listing the entries created.
    """
    membership_require(user=by, organization=organization, role=Role.MANAGER)
    rows = _parse_rows(entries, COST_ROW)
    projects = _projects(rows, by)
    errors = {
        f"entries.{i}.project": ["Unknown project."]
        for i, row in enumerate(rows)
        if projects[row["project"]].organization_id != organization.pk
    }
    if errors:
        _refuse(errors)
    _currencies_default(rows, projects)
    to_create, existing = _split_existing(rows, COST_ROW)
    _convert(rows, to_create, projects)
    created = _insert(rows, to_create, by, projects, per_row_history=False, source=CostSource.IMPORT)
    if created:
        with audit.audit_actor(by):
            audit.record_batch(
                model=CostEntry,
                organization_id=organization.pk,
                label=f"{label}: {len(created)} cost entr{'y' if len(created) == 1 else 'ies'}",
                created=created,
            )
    return IngestResult(created_ids=created, existing=existing)


@transaction.atomic
def usage_ingest(*, by: AbstractBaseUser, entries: Any) -> IngestResult:
    """Turn token usage into inference costs priced with the provider's price valid on each row's date.

    Each row is priced by `portfolio.usage_price` (`input_tokens` excludes cached input tokens,
    which are counted and priced apart) at the price `PriceBook.price_on` picks; each entry keeps
    its provider and the price it used. A row with no price valid on its date is kept unpriced
    (amount NULL): figures show it as incomplete, the unpriced-usage signal raises, and
    `usage_reprice` prices it once a price arrives.
    """
    rows = _parse_rows(entries, USAGE_ROW)
    projects = _projects(rows, by)
    organization_ids = {p.organization_id for p in projects.values()}
    book = price_book(organization_ids=organization_ids, models={row["model"] for row in rows})
    limit = Decimal(10) ** 10
    errors: dict[str, list[str]] = {}
    prices: dict[int, Any] = {}
    for index, row in enumerate(rows):
        organization_id = projects[row["project"]].organization_id
        model = row["model"]
        provider = book.provider_for(organization_id=organization_id, provider=row.get("provider", ""), model=model)
        if provider is None:
            errors[f"entries.{index}.provider"] = [f"Several providers price “{row['model']}”: say which one."]
            continue
        row["provider"] = provider
        row.setdefault("description", f"Token usage: {row['model']}")
        prices[index] = book.price_on(organization_id=organization_id, provider=provider, model=model, date=row["date"])
    organizations = {p.organization_id: p.organization for p in projects.values()}
    days = [row["date"] for row in rows]
    rates = money.rates_for(
        organizations=organizations.values(),
        currencies=usage_currencies(prices.values(), organizations),
        start=min(days),
        end=max(days),
    )
    for index, price in prices.items():
        row = rows[index]
        organization = projects[row["project"]].organization
        if price is None:
            row.update(money.Conversion.same(amount=None, currency=organization.currency, day=row["date"]).fields())
            continue
        try:
            cost = usage_cost(
                price=price,
                organization=organization,
                rates=rates,
                day=row["date"],
                input_tokens=row["input_tokens"],
                cached_input_tokens=row.get("cached_input_tokens", 0),
                output_tokens=row["output_tokens"],
            )
        except money.NoRate as exc:
            errors[f"entries.{index}.model"] = [f"Its price is in {price.currency}: {exc.errors['currency'][0]}"]
            continue
        if cost.amount >= limit:
            errors[f"entries.{index}.input_tokens"] = ["The cost of this usage is too large to record."]
            continue
        row.update(cost.fields())
        row["price_id"] = price.pk
    if errors:
        _refuse(errors)
    to_create, existing = _split_existing(rows, USAGE_ROW)
    created = _insert(
        rows, to_create, by, projects, per_row_history=False, source=CostSource.USAGE, category=CostCategory.INFERENCE
    )
    by_project: dict[int, list[int]] = defaultdict(list)
    unpriced: set[int] = set()
    for index, pk in zip(to_create, created, strict=True):
        by_project[rows[index]["project"]].append(pk)
        if rows[index]["amount"] is None:
            unpriced.add(pk)
    for project_id, ids in sorted(by_project.items()):
        audit.record_batch(
            model=CostEntry,
            organization_id=projects[project_id].organization_id,
            project_id=project_id,
            label=f"Token usage: {len(ids)} cost entr{'y' if len(ids) == 1 else 'ies'}",
            created=ids,
            unpriced=[pk for pk in ids if pk in unpriced],
        )
    return IngestResult(created_ids=created, existing=existing)


def usage_record(
    *,
    project: Project,
    by: AbstractBaseUser,
    date: dt.date,
    model: str,
    input_tokens: int,
    output_tokens: int,
    provider: str = "",
    cached_input_tokens: int = 0,
    requests: int = 0,
    description: str = "",
) -> CostEntry:
    """Record one usage row typed in a form: `usage_ingest`'s rules (priced or kept unpriced), errors by field."""
    row = {
        "project": project.pk,
        "date": date.isoformat(),
        "model": model,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cached_input_tokens": cached_input_tokens,
        "requests": requests,
        **({"provider": provider} if provider else {}),
        **({"description": description} if description else {}),
    }
    try:
        result = usage_ingest(by=by, entries=[row])
    except ValidationFailed as exc:
        errors = {key.removeprefix("entries.0."): messages for key, messages in exc.errors.items()}
        raise ValidationFailed(next(iter(errors.values()))[0] if errors else exc.message, errors=errors) from exc
    return CostEntry.objects.get(pk=result.created_ids[0])
