"""Audit history: every create, update and delete of the audited models, with who did it.

Recorded from model signals rather than in each service on purpose: history must also cover
the admin and any future write path, and a service that forgets to log would leave a hole.
Writes that bypass signals (bulk ingestion) call `audit_record_created` themselves. The actor is
the request's user — or its API token — held in a context variable for the request's duration.
"""

import contextvars
import datetime as dt
import decimal
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager

from django.apps import apps
from django.db import models
from django.db.models.signals import post_delete, post_save, pre_save
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from projects.models import AuditAction, AuditEvent, Project

AUDITED_MODELS = (
    "projects.Project",
    "projects.StageTransition",
    "projects.StatusUpdate",
    "projects.Membership",
    "projects.ApiToken",
    "projects.Invitation",
    "ops.Budget",
    "ops.CostEntry",
    "ops.Risk",
    "ops.InfrastructureComponent",
)
# Bookkeeping fields whose change is not news.
IGNORED_FIELDS = {"created_at", "updated_at", "last_used_at", "key_hash"}

_request: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar("audit_request", default=None)


@contextmanager
def audit_request(request: HttpRequest):
    """Attribute the changes made inside the block to this request's user (or token)."""
    reset = _request.set(request)
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


def _jsonable(value: object) -> object:
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


def _snapshot(instance: models.Model) -> dict[str, object]:
    return {field.attname: _jsonable(field.value_from_object(instance)) for field in _snapshot_fields(type(instance))}


def _scope(instance: models.Model) -> dict[str, int | None]:
    """Return the organization and project ids a change belongs to."""
    opts = instance._meta
    if opts.label == "projects.Project":
        return {"organization_id": instance.organization_id, "project_id": instance.pk}
    project_id = getattr(instance, "project_id", None)
    organization_id = getattr(instance, "organization_id", None)
    if organization_id is None and project_id is not None:
        organization_id = instance.project.organization_id
    return {"organization_id": organization_id, "project_id": project_id}


def _event(
    instance: models.Model,
    action: str,
    changes: dict[str, list[object]],
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


def _before_save(sender, instance: models.Model, raw: bool = False, **kwargs) -> None:
    if raw or instance.pk is None:
        instance._audit_before = None
        return
    previous = sender._base_manager.filter(pk=instance.pk).first()
    instance._audit_before = _snapshot(previous) if previous is not None else None


def _after_save(sender, instance: models.Model, created: bool, raw: bool = False, **kwargs) -> None:
    if raw:
        return
    after = _snapshot(instance)
    before = getattr(instance, "_audit_before", None)
    if created or before is None:
        _event(instance, AuditAction.CREATE, {k: [None, v] for k, v in after.items()}).save()
        return
    changes = {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}
    if changes:
        _event(instance, AuditAction.UPDATE, changes).save()


def _after_delete(sender, instance: models.Model, **kwargs) -> None:
    _event(instance, AuditAction.DELETE, {k: [v, None] for k, v in _snapshot(instance).items()}).save()


def audit_record_created(instances: Iterable[models.Model]) -> None:
    """Record creations made with `bulk_create`, which sends no signals (one query per 1,000 rows)."""
    instances = list(instances)
    project_ids = {getattr(i, "project_id", None) for i in instances} - {None}
    organization_of = dict(Project.objects.filter(pk__in=project_ids).values_list("pk", "organization_id"))
    actor = _actor()
    events = [
        _event(
            i,
            AuditAction.CREATE,
            {k: [None, v] for k, v in _snapshot(i).items()},
            scope={"organization_id": organization_of.get(i.project_id), "project_id": i.project_id},
            actor=actor,
        )
        for i in instances
    ]
    AuditEvent.objects.bulk_create(events, batch_size=1000)


def audit_record_copied(model: type[models.Model], ids: Sequence[int], labels: Sequence[str]) -> None:
    """Record creations of rows written with PostgreSQL COPY, in one INSERT … SELECT.

    The database builds each event from the stored row (the fields `_snapshot` takes; decimals as
    text like `_jsonable`), so 10,000 rows cost one statement, not 10,000 Python snapshots. The
    model must belong to a project; `labels` are the rows' `str()`, in the order of `ids`.
    """
    from django.db import connection

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


def connect() -> None:
    for label in AUDITED_MODELS:
        model = apps.get_model(label)
        uid = f"audit:{label}"
        pre_save.connect(_before_save, sender=model, dispatch_uid=f"{uid}:pre")
        post_save.connect(_after_save, sender=model, dispatch_uid=f"{uid}:post")
        post_delete.connect(_after_delete, sender=model, dispatch_uid=f"{uid}:delete")
