"""Audit history: every create, update and delete of the audited models, with who did it.

History is written explicitly by the services, in the same transaction as the change (as
Django's admin writes `LogEntry`): model signals would miss `bulk_create`, `bulk_update` and
`QuerySet.update()`. The admin site records through the same functions. Granularity:

- one event per row for what people enter (forms, API writes, bulk cost entries through the API)
  and for the risks a signal run raises, updates or closes (a handful per run);
- one `batch` event per project (or organization) and run for machine-made aggregates (token
  usage, daily snapshots), listing the ids it created and changed, so history never outgrows
  the data.

The actor is the request's user — or its API token — held in a context variable for the
request's duration.
"""

import contextvars
import datetime as dt
import decimal
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from types import SimpleNamespace

from django.db import connection, models, router
from django.db.models.deletion import Collector
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from projects.models import AuditAction, AuditEvent, Project

AUDITED_MODELS = (
    "projects.Organization",
    "projects.Team",
    "projects.CostCentre",
    "projects.Project",
    "projects.StageTransition",
    "projects.StatusUpdate",
    "projects.Membership",
    "projects.ApiToken",
    "projects.Invitation",
    "projects.NotificationSubscription",
    "ops.Budget",
    "ops.CostEntry",
    "ops.ModelPrice",
    "ops.QualityMetric",
    "ops.Risk",
    "ops.InfrastructureComponent",
    "ops.BillingMappingRule",
    "webhooks.WebhookEndpoint",
)
# Bookkeeping fields whose change is not news.
IGNORED_FIELDS = {"created_at", "updated_at", "last_used_at", "key_hash", "expiry_warned_at"}

_request: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar("audit_request", default=None)


@contextmanager
def audit_request(request: HttpRequest):
    """Attribute the changes made inside the block to this request's user (or token)."""
    reset = _request.set(request)
    try:
        yield
    finally:
        _request.reset(reset)


@contextmanager
def audit_actor(user: object):
    """Attribute the changes made inside the block to `user` where no request does (a worker's import)."""
    if _request.get() is not None:
        yield
        return
    reset = _request.set(SimpleNamespace(user=user, audit_token=None))
    try:
        yield
    finally:
        _request.reset(reset)


class AuditActorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with audit_request(request):
            return self.get_response(request)


def _actor() -> dict[str, object]:
    request = _request.get()
    user = getattr(request, "user", None) if request is not None else None
    if user is None or not user.is_authenticated:
        return {"actor": None, "token": None, "actor_repr": "system"}
    token = getattr(request, "audit_token", None)
    if token is not None and token.is_service:
        # The service acted, not a person: its account is only the means, so no actor is named.
        label = f"service token “{token.name}” ({token.prefix}…) of {token.organization.name}"
        return {"actor": None, "token": token, "actor_repr": label[:300]}
    label = f"{user.get_username()} via API token “{token.name}” ({token.prefix}…)" if token else user.get_username()
    return {"actor": user, "token": token, "actor_repr": label[:300]}


def is_audited(model: type[models.Model]) -> bool:
    return model._meta.label in AUDITED_MODELS


def history_value(field: models.Field, value: object) -> object:
    """Return a field's value as history stores it: JSON, decimals as text at the field's decimal places.

    The one rule for every writer: "0" and "0.00" of a 2-place field are both stored "0.00", which
    is also how PostgreSQL prints a numeric(…, 2) column as text (`record_copied`).
    """
    if value is None:
        return None
    if isinstance(field, models.DecimalField):
        return str(decimal.Decimal(str(value)).quantize(decimal.Decimal(1).scaleb(-field.decimal_places)))
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


def _snapshot_fields(model: type[models.Model]) -> list[models.Field]:
    return [
        field
        for field in model._meta.concrete_fields
        if not field.primary_key and field.name not in IGNORED_FIELDS and not isinstance(field, models.GeneratedField)
    ]


def snapshot(instance: models.Model) -> dict[str, object]:
    """Return the instance's recorded fields as history stores them: take it before a change."""
    return {
        field.attname: history_value(field, field.value_from_object(instance))
        for field in _snapshot_fields(type(instance))
    }


def _scope(instance: models.Model) -> dict[str, int | None]:
    """Return the organization and project ids a change belongs to."""
    label = instance._meta.label
    if label == "projects.Project":
        return {"organization_id": instance.organization_id, "project_id": instance.pk}
    if label == "projects.Organization":
        return {"organization_id": instance.pk, "project_id": None}
    project_id = getattr(instance, "project_id", None)
    organization_id = getattr(instance, "organization_id", None)
    if organization_id is None and project_id is not None:
        organization_id = instance.project.organization_id
    return {"organization_id": organization_id, "project_id": project_id}


def _event(
    instance: models.Model,
    action: str,
    changes: dict[str, object],
    scope: dict[str, int | None] | None = None,
    actor: dict[str, object] | None = None,
) -> AuditEvent:
    return AuditEvent(
        action=action,
        object_type=instance._meta.label_lower,
        object_id=str(instance.pk),
        object_repr=str(instance)[:300],
        changes=changes,
        **(scope or _scope(instance)),
        **(actor or _actor()),
    )


def _diff(before: dict[str, object], after: dict[str, object]) -> dict[str, list[object]]:
    return {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}


def record_created(instance: models.Model) -> AuditEvent:
    """Record that `instance` was just created, with every recorded field."""
    event = _event(instance, AuditAction.CREATE, {k: [None, v] for k, v in snapshot(instance).items()})
    event.save()
    return event


def record_changed(instance: models.Model, *, before: dict[str, object]) -> dict[str, list[object]]:
    """Record what changed on `instance` since its `snapshot` `before`; return the changes (none: no event)."""
    changes = _diff(before, snapshot(instance))
    if changes:
        _event(instance, AuditAction.UPDATE, changes).save()
    return changes


def record_done(instance: models.Model, *, what: str, detail: object) -> AuditEvent:
    """Record an action on `instance` that its own recorded fields do not show (a secret rotated,
    a delivery sent again): an update whose one change is `what`, from nothing to `detail`."""
    event = _event(instance, AuditAction.UPDATE, {what: [None, detail]})
    event.save()
    return event


def record_deleted(instance: models.Model) -> None:
    """Record the deletion of `instance` and of the audited rows it cascades to; call it before deleting."""
    collector = Collector(using=router.db_for_write(type(instance)))
    collector.collect([instance])
    rows = [obj for model, objs in collector.data.items() if is_audited(model) for obj in objs]
    rows += [obj for queryset in collector.fast_deletes if is_audited(queryset.model) for obj in queryset]
    actor = _actor()
    AuditEvent.objects.bulk_create(
        _event(obj, AuditAction.DELETE, {k: [v, None] for k, v in snapshot(obj).items()}, actor=actor) for obj in rows
    )


def _project_scopes(instances: Sequence[models.Model]) -> dict[int, dict[str, int | None]]:
    project_ids = {getattr(i, "project_id", None) for i in instances} - {None}
    organization_of = dict(Project.objects.filter(pk__in=project_ids).values_list("pk", "organization_id"))
    return {pk: {"organization_id": org, "project_id": pk} for pk, org in organization_of.items()}


def record_created_many(instances: Iterable[models.Model]) -> None:
    """Record rows made with `bulk_create`, one event each, in one query per 1,000 rows."""
    instances = list(instances)
    scopes, actor = _project_scopes(instances), _actor()
    events = [
        _event(
            i,
            AuditAction.CREATE,
            {k: [None, v] for k, v in snapshot(i).items()},
            scope=scopes.get(getattr(i, "project_id", None)),
            actor=actor,
        )
        for i in instances
    ]
    AuditEvent.objects.bulk_create(events, batch_size=1000)


def record_changed_many(changed: Iterable[tuple[models.Model, dict[str, object]]]) -> None:
    """Record rows changed with `bulk_update` or `update()`, each with its `snapshot` from before."""
    changed = [(instance, _diff(before, snapshot(instance))) for instance, before in changed]
    actor = _actor()
    AuditEvent.objects.bulk_create(
        [_event(i, AuditAction.UPDATE, changes, actor=actor) for i, changes in changed if changes], batch_size=1000
    )


def record_batch(
    *,
    model: type[models.Model],
    organization_id: int,
    project_id: int | None = None,
    label: str,
    created: Sequence[int] = (),
    changed: Sequence[int] = (),
    **details: object,
) -> AuditEvent:
    """Record one machine-made batch of `model` rows: the ids it created and changed, and its `details`."""
    event = AuditEvent(
        action=AuditAction.BATCH,
        object_type=model._meta.label_lower,
        object_id="",
        object_repr=label[:300],
        changes={"created": list(created), "changed": list(changed), **details},
        organization_id=organization_id,
        project_id=project_id,
        **_actor(),
    )
    event.save()
    return event


def record_copied(model: type[models.Model], ids: Sequence[int], labels: Sequence[str]) -> None:
    """Record creations of rows written with PostgreSQL COPY, in one INSERT … SELECT.

    The database builds each event from the stored row (the fields `snapshot` takes). Decimals are
    the column's text, which PostgreSQL prints at the column's scale: `history_value`'s rule. The
    model must belong to a project; `labels` are the rows' `str()`, in the order of `ids`.
    """
    quote = connection.ops.quote_name
    values = [
        f"'{field.attname}', jsonb_build_array(NULL, t.{quote(field.column)}"
        f"{'::text' if isinstance(field, models.DecimalField) else ''})"
        for field in _snapshot_fields(model)
    ]
    # jsonb_build_object takes at most 100 arguments: join objects of 50 pairs.
    changes = " || ".join(f"jsonb_build_object({', '.join(values[i : i + 50])})" for i in range(0, len(values), 50))
    pk, project = quote(model._meta.pk.column), quote(model._meta.get_field("project").column)
    organization = quote(Project._meta.get_field("organization").column)
    actor = _actor()
    # Every name interpolated below comes from model metadata, never from input.
    sql = f"""
        INSERT INTO {quote(AuditEvent._meta.db_table)}
            (at, organization_id, project_id, actor_id, token_id, actor_repr, action, object_type, object_id,
             object_repr, changes)
        SELECT %s, p.{organization}, t.{project}, %s, %s, %s, %s, %s, t.{pk}::text, left(r.label, 300), {changes}
        FROM unnest(%s::bigint[], %s::text[]) WITH ORDINALITY AS r(id, label, n)
        JOIN {quote(model._meta.db_table)} t ON t.{pk} = r.id
        JOIN {quote(Project._meta.db_table)} p ON p.{quote(Project._meta.pk.column)} = t.{project}
        ORDER BY r.n
    """  # nosec B608
    params = [
        timezone.now(),
        getattr(actor["actor"], "pk", None),
        getattr(actor["token"], "pk", None),
        actor["actor_repr"],
        AuditAction.CREATE,
        model._meta.label_lower,
        list(ids),
        list(labels),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
