"""The sections of the project page and the forms they open, in one registry.

projects/ owns the page (its header, the lifecycle and status sections) and registers its own
sections here; an app whose data a section shows registers it from its `AppConfig.ready()` (ops
does for costs, risks, infrastructure and quality metrics in ops/panels.py), so projects/ knows
nothing of it.

A section's forms are not rendered with the page: each loads when its disclosure opens (the form
fragment view), so the page costs only its figures, and a submit refreshes only its section.
"""

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from django import forms

from projects.forms import StageMoveForm, StatusUpdateForm
from projects.gates import GATES
from projects.models import Project, Role, Stage, StageTransition
from projects.selectors import project_lifecycle, project_status_updates


@dataclass(frozen=True)
class PanelForm:
    """A form a section opens: how to build it (blank or bound), who may use it and where it posts."""

    key: str  # its key in the page context (`forms.<key>`) and in the fragment's URL
    summary: str  # the text of the disclosure that opens it
    # build(project=, today=, data=) returns the blank form (data None) or the submitted one.
    build: Callable[..., forms.Form]
    action: str  # URL name of the view it posts to (takes the project's pk)
    submit: str = "Save"
    role: Role = Role.CONTRIBUTOR
    template: str = "projects/includes/panel_form.html"
    # Whether the disclosure starts open, given the section's figures (e.g. no risk recorded yet).
    starts_open: Callable[[Mapping], bool] = lambda figures: False
    # copy_last(project=, today=) returns the blank form started from the last record (`?copy=last`).
    copy_last: Callable[..., forms.Form] | None = None


@dataclass(frozen=True)
class Panel:
    """One section of the project page (`<section id="section-<key>">`, rendered by `template`)."""

    key: str
    label: str  # its link in the page's list of sections
    template: str
    order: int
    # figures(project=, today=) returns what the template reads as `detail.*`.
    figures: Callable[..., Mapping]
    forms: tuple[PanelForm, ...] = ()


PANELS: dict[str, Panel] = {}
FORMS: dict[str, tuple[Panel, PanelForm]] = {}


def register(panel: Panel) -> Panel:
    PANELS[panel.key] = panel
    for form in panel.forms:
        FORMS[form.key] = (panel, form)
    return panel


def unregister(key: str) -> None:
    panel = PANELS.pop(key, None)
    for form in panel.forms if panel else ():
        FORMS.pop(form.key, None)


def panels() -> list[Panel]:
    return sorted(PANELS.values(), key=lambda panel: panel.order)


def panel_figures(*, project: Project, today: dt.date, keys: tuple[str, ...] | None = None) -> dict:
    """Return the figures of every section (or of the sections `keys`) merged into one mapping."""
    figures: dict = {}
    for panel in panels():
        if keys is None or panel.key in keys:
            figures |= panel.figures(project=project, today=today)
    return figures


# The sections of the project itself.


def _stage_state(stage: str, current: str) -> str:
    if stage == current:
        return "current"
    return "done" if Stage.order(stage) < Stage.order(current) else ""


@dataclass(frozen=True)
class PipelineStage:
    label: str
    entered: dt.datetime | None
    state: str  # "current", "done" or ""
    # The last entry into the stage that overrode gates: who, why and which gates are on its transition.
    override: StageTransition | None = None
    overridden: tuple[str, ...] = ()  # the labels of the gates it overrode


def _stage_figures(*, project: Project, today: dt.date) -> dict:
    lifecycle = project_lifecycle(project=project)
    entered = {t.to_stage: t.at for t in lifecycle.transitions}
    entered[project.stage] = project.stage_entered_at
    overrides = {t.to_stage: t for t in lifecycle.transitions if t.overridden_gates}
    pipeline = []
    for s in Stage:
        state = _stage_state(s.value, project.stage)
        override = overrides.get(s.value) if state else None
        labels = (
            tuple(GATES[key].label if key in GATES else key for key in override.overridden_gates) if override else ()
        )
        pipeline.append(PipelineStage(s.label, entered.get(s.value), state, override, labels))
    return {
        "transitions": lifecycle.transitions,
        "next_stage": lifecycle.next_stage,
        "next_stage_label": Stage(lifecycle.next_stage).label if lifecycle.next_stage else "",
        "gates": lifecycle.gates,
        "stage_pipeline": pipeline,
    }


register(
    Panel(
        "stage",
        "Stage",
        "projects/sections/stage.html",
        10,
        _stage_figures,
        forms=(
            PanelForm(
                "stage",
                "Move the stage",
                lambda *, project, today, data=None: StageMoveForm(
                    data, initial={"to_stage": Stage.following(project.stage)}
                ),
                "projects:transition",
                "Move",
                template="projects/includes/stage_form.html",
            ),
        ),
    )
)
register(
    Panel(
        "status",
        "Status",
        "projects/sections/status.html",
        20,
        lambda *, project, today: {"status_updates": project_status_updates(project=project)},
        forms=(
            PanelForm(
                "status",
                "Log a status update",
                lambda *, project, today, data=None: StatusUpdateForm(
                    data, initial=StatusUpdateForm.initial_for(project=project, today=today)
                ),
                "projects:status-create",
                "Log status",
                template="projects/includes/status_form.html",
                copy_last=lambda *, project, today: StatusUpdateForm(
                    initial=StatusUpdateForm.initial_for(
                        project=project,
                        today=today,
                        last=next(iter(project_status_updates(project=project, limit=1)), None),
                    )
                ),
                starts_open=lambda figures: not figures["status_updates"],
            ),
        ),
    )
)
