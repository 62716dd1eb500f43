"""Plumbing every app's write services share: the one update helper."""

from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

from django.db import IntegrityError, models, transaction

from projects import audit
from tracker.exceptions import DomainError, reject_unknown_fields

M = TypeVar("M", bound=models.Model)


def model_update(
    *,
    instance: M,
    data: Mapping[str, Any],
    fields: Collection[str],
    validate: Callable[[M], None],
    conflict: DomainError | None = None,
) -> list[str]:
    """Set `data` on `instance`, validate it, save what changed and record it in the history.

    Return the names of the fields that changed (nothing changed: no save, no event). `fields` are
    the ones the caller may change, any other is refused; `validate` is the function the entity's
    create service calls, so a create and an update are checked alike. With `conflict`, a unique
    constraint refusing the save raises it instead of the IntegrityError.
    """
    reject_unknown_fields(data, fields)
    before = audit.snapshot(instance)
    for field, value in data.items():
        setattr(instance, field, value)
    validate(instance)
    after = audit.snapshot(instance)
    attname = {field: instance._meta.get_field(field).attname for field in data}
    changed = [field for field in data if before.get(attname[field]) != after.get(attname[field])]
    if not changed:
        return []
    try:
        with transaction.atomic():
            instance.save(update_fields=[*changed, "updated_at"])
    except IntegrityError as exc:
        if conflict is None:
            raise
        raise conflict from exc
    audit.record_changed(instance, before=before)
    return changed
