"""The activity feed: each recorded change (an `AuditEvent`) as a sentence a person reads.

projects/ owns the registry and the sentences of its own models; an app registers the sentences of
its models from its `AppConfig.ready()` (ops does in ops/activity.py), so projects/ knows nothing of
them. A change no sentence knows reads generically ("ana updated team “Platform”"). Sentences read
only the event's own fields (and its project, joined once for a page), so a page of them costs a
fixed number of queries; amounts, dates and labels go through tracker.formatting.
"""

from collections.abc import Callable

from django.db import models
from django.db.models import Q

from projects.models import AuditAction, AuditEvent, Health, Project, Stage
from tracker import formatting

Sentence = Callable[[AuditEvent, formatting.Localized], str | None]
SENTENCES: dict[tuple[str, str], Sentence] = {}
VERBS = {AuditAction.CREATE: "created", AuditAction.UPDATE: "updated", AuditAction.DELETE: "deleted"}


class ActivityKind(models.TextChoices):
    """The kinds of change the feed filters by: an audited model's `object_type`."""

    PROJECT = "projects.project", "Projects"
    STAGE = "projects.stagetransition", "Stage moves"
    STATUS = "projects.statusupdate", "Status updates"
    TEAM = "projects.team", "Teams"
    BUDGET = "ops.budget", "Budgets"
    COST = "ops.costentry", "Costs"
    RISK = "ops.risk", "Risks"
    INFRASTRUCTURE = "ops.infrastructurecomponent", "Infrastructure"
    METRIC = "ops.qualitymetric", "Quality metrics"


# A project's fields that its stage moves and status updates set: their own sentences tell them.
DERIVED_PROJECT_FIELDS = ("stage", "stage_entered_at", "health", "progress", "last_status_date")


def told_elsewhere() -> Q:
    """Match the project updates that change only DERIVED_PROJECT_FIELDS (the feed leaves them out)."""
    audited = [f.attname for f in Project._meta.concrete_fields if f.attname not in DERIVED_PROJECT_FIELDS]
    return Q(object_type="projects.project", action=AuditAction.UPDATE) & ~Q(changes__has_any_keys=audited)


def register(object_type: str, *actions: str) -> Callable[[Sentence], Sentence]:
    """Register the sentence of `object_type`'s `actions` (every action when none is named)."""

    def decorator(sentence: Sentence) -> Sentence:
        for action in actions or AuditAction.values:
            SENTENCES[(object_type, action)] = sentence
        return sentence

    return decorator


def new(event: AuditEvent, field: str) -> object:
    """Return a field's value after the change (None when the change does not name it)."""
    return (event.changes.get(field) or [None, None])[1]


def on(event: AuditEvent) -> str:
    """Return " on <project>" for an event inside a project, as the organization's feed names it."""
    return f" on {event.project.name}" if event.project_id and event.project else ""


def sentence(event: AuditEvent, organization: formatting.Localized) -> str:
    """Return the event as a sentence: "ana moved Support bot to Pilot"."""
    text = None
    if (writer := SENTENCES.get((event.object_type, event.action))) is not None:
        text = writer(event, organization)
    if text is None:
        kind = formatting.model_label(event.object_type)
        where = "" if event.object_type == "projects.project" else on(event)
        if event.action == AuditAction.BATCH:
            return f"{event.actor_repr} recorded {kind} in bulk{where}"
        text = f"{event.actor_repr} {VERBS.get(event.action, event.action)} {kind} “{event.object_repr}”{where}"
    return text


@register("projects.stagetransition", AuditAction.CREATE)
def _stage_move(event: AuditEvent, organization: formatting.Localized) -> str:
    project = event.project.name if event.project else event.object_repr
    text = f"{event.actor_repr} moved {project} to {formatting.label(Stage, new(event, 'to_stage'))}"
    if reason := new(event, "override_reason"):
        text += f", overriding its gates: “{reason}”"
    return text


@register("projects.statusupdate", AuditAction.CREATE)
def _status(event: AuditEvent, organization: formatting.Localized) -> str:
    health = formatting.label(Health, new(event, "health"))
    return f"{event.actor_repr} logged a status update{on(event)}: {health}, {new(event, 'progress')}%"


@register("projects.project", AuditAction.CREATE, AuditAction.UPDATE)
def _project(event: AuditEvent, organization: formatting.Localized) -> str:
    if event.action == AuditAction.CREATE:
        return f"{event.actor_repr} created {event.object_repr}"
    changes = {k: v for k, v in event.changes.items() if k not in DERIVED_PROJECT_FIELDS}
    lines = formatting.change_lines(object_type=event.object_type, changes=changes, organization=organization)
    return f"{event.actor_repr} changed {event.object_repr}: {'; '.join(lines)}"
