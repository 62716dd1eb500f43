"""The stage gates: the conditions a project must meet to enter a gated stage, in one registry.

projects/ owns the lifecycle and this registry and registers the gates that read only a project's
own fields; an app whose data a gate reads registers it from its `AppConfig.ready()` (ops does for
budget, infrastructure, risks and metrics in ops/gates.py), so projects/ knows nothing of it.

A gate's condition is one boolean expression over Project rows. The same definition checks one
project (the transition service, the project page: one query for all its gates) and a whole
portfolio (the report: one annotation per gate on its project query), so they cannot disagree.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import BooleanField, Expression, ExpressionWrapper, Q, QuerySet
from django.urls import reverse

from projects.models import AIActTier, Project, Role, Stage

GATED_STAGES = (Stage.PILOT, Stage.PRODUCTION)


def _always(project: Project) -> bool:
    return True


@dataclass(frozen=True)
class Gate:
    """One condition for entering the gated `stages`."""

    key: str
    label: str
    # A boolean expression over a Project row (correlate on OuterRef("pk")), true when the gate is met.
    met: Callable[[], Expression]
    # Rank in every list of gates, so refusals, the page and the report list them alike.
    order: int
    stages: tuple[str, ...] = GATED_STAGES
    # Whether the gate applies to a project; reads only the project's own fields (report rows have them).
    applies: Callable[[Project], bool] = _always
    # False for gates no override may bypass (a prohibited AI practice).
    overridable: bool = True
    # fix(project) returns the URL of the form or object that meets the gate; `hint` is its link's text.
    fix: Callable[[Project], str] | None = None
    hint: str = ""
    fix_role: Role = Role.CONTRIBUTOR  # who may use the fix (others are told who does)

    @property
    def alias(self) -> str:
        return f"gate_{self.key}"


@dataclass(frozen=True)
class GateCheck:
    """A gate checked for one project."""

    key: str
    label: str
    passed: bool
    overridable: bool = True
    fix_url: str = ""  # unmet gates only: where to meet it
    hint: str = ""
    fix_role: str = Role.CONTRIBUTOR

    def as_dict(self) -> dict[str, object]:
        return {"key": self.key, "label": self.label, "overridable": self.overridable}


GATES: dict[str, Gate] = {}


def register(gate: Gate) -> Gate:
    GATES[gate.key] = gate
    return gate


def unregister(key: str) -> None:
    GATES.pop(key, None)


def condition(q: Q) -> ExpressionWrapper:
    """Return `q` as a boolean expression a gate can use as its condition."""
    return ExpressionWrapper(q, output_field=BooleanField())


def gates_for(*, project: Project, to_stage: str) -> list[Gate]:
    """Return the registered gates that guard `to_stage` for `project`, in order."""
    gates = (gate for gate in GATES.values() if to_stage in gate.stages and gate.applies(project))
    return sorted(gates, key=lambda gate: gate.order)


def gates_annotate(projects: QuerySet[Project]) -> QuerySet[Project]:
    """Annotate each project with every registered gate's condition (`gate_<key>`), read by `gates_unmet`."""
    return projects.annotate(**{gate.alias: gate.met() for gate in GATES.values()})


def gates_unmet(*, row: Project, stage: str | None = None) -> list[str]:
    """Return the keys of the gates a row of `gates_annotate` misses for the stage after `stage` (its own stage
    by default; a report's, the stage at the end of its period)."""
    to_stage = Stage.following(row.stage if stage is None else stage)
    if to_stage is None:
        return []
    return [gate.key for gate in gates_for(project=row, to_stage=to_stage) if not getattr(row, gate.alias)]


def project_gates(*, project: Project, to_stage: str) -> list[GateCheck]:
    """Return every gate for entering `to_stage` (empty for ungated stages), passed or not (one query)."""
    gates = gates_for(project=project, to_stage=to_stage)
    if not gates:
        return []
    met = (
        Project.objects.filter(pk=project.pk)
        .annotate(**{gate.alias: gate.met() for gate in gates})
        .values(*(gate.alias for gate in gates))
        .get()
    )
    return [_check(gate, project, passed=bool(met[gate.alias])) for gate in gates]


def _check(gate: Gate, project: Project, *, passed: bool) -> GateCheck:
    fix_url = gate.fix(project) if gate.fix and not passed else ""
    hint = gate.hint if fix_url else ""
    return GateCheck(gate.key, gate.label, passed, gate.overridable, fix_url, hint, gate.fix_role)


def gates_explain(*, project: Project, missing: list[dict]) -> list[GateCheck]:
    """Return the unmet gates of a refusal (`TransitionRefused.missing`) with where to meet each."""
    return [
        _check(GATES[m["key"]], project, passed=False) if m["key"] in GATES else GateCheck(m["key"], m["label"], False)
        for m in missing
    ]


def _edit(project: Project) -> str:
    return reverse("projects:edit", args=[project.pk])


def form_url(key: str) -> Callable[[Project], str]:
    """Return a gate's `fix`: the project-page form `key` (a page of its own without script)."""
    return lambda project: reverse("projects:form", args=[project.pk, key])


# The gates that read only the project itself.
register(
    Gate(
        "data_classification",
        "Data classification is set",
        lambda: condition(~Q(data_classification="")),
        10,
        fix=_edit,
        hint="Set the data classification",
    )
)
register(
    Gate(
        "human_oversight_owner",
        "A human-oversight owner is named (EU AI Act high-risk system)",
        lambda: condition(Q(human_oversight_owner__isnull=False)),
        80,
        applies=lambda project: project.ai_act_tier == AIActTier.HIGH,
        fix=_edit,
        hint="Name the human-oversight owner",
    )
)
register(
    Gate(
        "ai_act_not_prohibited",
        "The EU AI Act tier is not unacceptable (a prohibited practice never enters pilot or production)",
        lambda: condition(~Q(ai_act_tier=AIActTier.UNACCEPTABLE)),
        90,
        overridable=False,
        fix=_edit,
        hint="Review the EU AI Act tier",
    )
)
register(
    Gate(
        "ai_act_assessed",
        "The EU AI Act tier is assessed",
        lambda: condition(~Q(ai_act_tier=AIActTier.UNASSESSED)),
        100,
        stages=(Stage.PRODUCTION,),
        fix=_edit,
        hint="Assess the EU AI Act tier",
    )
)
