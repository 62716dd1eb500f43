"""The core writes of the projects app, against PostgreSQL."""

import datetime as dt
import threading
import time

import pytest
from django.db import connection, transaction

from ops.models import RiskCategory, Severity
from ops.tests.factories import (
    BudgetFactory,
    InfrastructureComponentFactory,
    QualityMetricFactory,
    RiskAssessmentFactory,
    RiskFactory,
)
from projects.models import (
    AIActTier,
    DataClassification,
    Health,
    Industry,
    Project,
    Role,
    Stage,
    StageTransition,
    StatusUpdate,
)
from projects.services import (
    organization_today,
    project_create,
    project_transition,
    project_update,
    status_update_create,
)
from projects.tests.factories import (
    OrganizationFactory,
    ProjectFactory,
    TeamFactory,
    UserFactory,
    member,
)
from tracker.exceptions import Conflict, NotPermitted, TransitionRefused, ValidationFailed

pytestmark = pytest.mark.django_db

BASE_GATES = ["data_classification", "budget", "infrastructure", "risk_review", "quality_metrics"]


def make_ready(project: Project) -> Project:
    """Meet every base gate of pilot and production: classification, budget, infra, metrics, a risk review."""
    project.data_classification = project.data_classification or DataClassification.INTERNAL
    project.save()
    BudgetFactory(project=project)
    InfrastructureComponentFactory(project=project)
    QualityMetricFactory(project=project)
    RiskAssessmentFactory(risk=RiskFactory(project=project))
    return project


def missing_keys(excinfo) -> list[str]:
    return [gate["key"] for gate in excinfo.value.missing]


def assert_not_moved(project: Project, stage: Stage) -> None:
    project.refresh_from_db()
    assert project.stage == stage
    assert not StageTransition.objects.filter(project=project).exists()


# project_create / project_update


def test_project_create_starts_in_ideation_with_a_slug_from_the_name(org, contributor):
    project = project_create(organization=org, by=contributor, name="Support Chatbot", industry=Industry.RETAIL)

    project.refresh_from_db()
    assert (project.stage, project.slug, project.industry) == (Stage.IDEATION, "support-chatbot", Industry.RETAIL)
    assert project.stage_entered_at is not None


def test_project_create_picks_a_free_slug_when_the_name_is_taken(org, contributor):
    first = project_create(organization=org, by=contributor, name="Fraud Detection")
    second = project_create(organization=org, by=contributor, name="Fraud Detection")

    assert (first.slug, second.slug) == ("fraud-detection", "fraud-detection-2")


@pytest.mark.parametrize("role", [Role.CONTRIBUTOR, Role.MANAGER, Role.ADMIN])
def test_project_create_allowed_from_contributor_up(org, role):
    project_create(organization=org, by=member(org, role), name="Allowed")

    assert Project.objects.filter(organization=org, name="Allowed").exists()


def test_project_create_refused_to_a_viewer(org, viewer):
    with pytest.raises(NotPermitted):
        project_create(organization=org, by=viewer, name="Nope")

    assert not Project.objects.exists()


def test_project_create_refused_to_a_member_of_another_organization(org):
    outsider = member(OrganizationFactory(), Role.ADMIN)

    with pytest.raises(NotPermitted):
        project_create(organization=org, by=outsider, name="Nope")

    assert not Project.objects.filter(organization=org).exists()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"industry": "space_mining"}, "industry"),
        ({"use_case": "telepathy"}, "use_case"),
        ({"data_classification": "secret-ish"}, "data_classification"),
        ({"ai_act_tier": "extreme"}, "ai_act_tier"),
        ({"start_date": dt.date(2026, 6, 1), "target_date": dt.date(2026, 5, 31)}, "target_date"),
        ({"slug": "not a slug!"}, "slug"),
    ],
)
def test_project_create_refuses_bad_fields_with_the_field_named(org, contributor, fields, field):
    with pytest.raises(ValidationFailed) as excinfo:
        project_create(organization=org, by=contributor, name="Bad", **fields)

    assert list(excinfo.value.errors) == [field]
    assert not Project.objects.exists()


def test_project_create_explains_a_target_before_the_start(org, contributor):
    with pytest.raises(ValidationFailed) as excinfo:
        project_create(
            organization=org,
            by=contributor,
            name="Late",
            start_date=dt.date(2026, 6, 1),
            target_date=dt.date(2026, 5, 1),
        )

    assert excinfo.value.errors == {"target_date": ["The target date is before the start date."]}
    assert excinfo.value.message == "The target date is before the start date."


def test_project_create_accepts_a_target_on_the_start_date(org, contributor):
    project = project_create(
        organization=org,
        by=contributor,
        name="Same day",
        start_date=dt.date(2026, 6, 1),
        target_date=dt.date(2026, 6, 1),
    )

    assert project.pk is not None


def test_project_create_refuses_a_blank_name(org, contributor):
    with pytest.raises(ValidationFailed) as excinfo:
        project_create(organization=org, by=contributor, name="")

    assert "name" in excinfo.value.errors
    assert not Project.objects.exists()


def test_project_create_refuses_an_unknown_field_instead_of_dropping_it(org, contributor):
    with pytest.raises(ValidationFailed) as excinfo:
        project_create(organization=org, by=contributor, name="Sneaky", stage=Stage.PRODUCTION, colour="red")

    assert excinfo.value.errors == {"colour": ["Unknown field."], "stage": ["Unknown field."]}
    assert not Project.objects.exists()


def test_project_create_refuses_a_slug_taken_in_the_same_organization(org, contributor):
    ProjectFactory(organization=org, slug="chatbot")

    with pytest.raises(Conflict) as excinfo:
        project_create(organization=org, by=contributor, name="Another chatbot", slug="chatbot")

    assert list(excinfo.value.errors) == ["slug"]
    assert Project.objects.filter(organization=org).count() == 1


def test_project_create_allows_a_slug_taken_in_another_organization(org, contributor):
    ProjectFactory(organization=OrganizationFactory(), slug="chatbot")

    project = project_create(organization=org, by=contributor, name="Chatbot", slug="chatbot")

    assert Project.objects.filter(slug="chatbot").count() == 2
    assert project.organization == org


def test_project_create_refuses_a_team_of_another_organization(org, contributor):
    foreign_team = TeamFactory(organization=OrganizationFactory())

    with pytest.raises(ValidationFailed) as excinfo:
        project_create(organization=org, by=contributor, name="Teamless", team=foreign_team)

    assert list(excinfo.value.errors) == ["team"]
    assert not Project.objects.exists()


def test_project_create_accepts_a_team_of_its_organization(org, contributor):
    team = TeamFactory(organization=org)

    project = project_create(organization=org, by=contributor, name="Teamed", team=team)

    project.refresh_from_db()
    assert project.team == team


@pytest.mark.parametrize("field", ["business_owner", "technical_lead", "human_oversight_owner"])
def test_project_create_refuses_people_who_are_not_members(org, contributor, field):
    outsider = member(OrganizationFactory(), Role.ADMIN)

    with pytest.raises(ValidationFailed) as excinfo:
        project_create(organization=org, by=contributor, name="Owned", **{field: outsider})

    assert list(excinfo.value.errors) == [field]
    assert not Project.objects.exists()


def test_project_create_refuses_a_user_without_any_membership_as_owner(org, contributor):
    with pytest.raises(ValidationFailed):
        project_create(organization=org, by=contributor, name="Owned", business_owner=UserFactory())

    assert not Project.objects.exists()


def test_project_create_records_members_as_owners(org, contributor, manager):
    project = project_create(
        organization=org, by=contributor, name="Owned", business_owner=manager, technical_lead=contributor
    )

    project.refresh_from_db()
    assert (project.business_owner, project.technical_lead) == (manager, contributor)


def test_project_update_changes_descriptive_fields(org, contributor):
    project = ProjectFactory(organization=org)

    project_update(project=project, by=contributor, summary="Answers refund questions", industry=Industry.FINANCE)

    project.refresh_from_db()
    assert (project.summary, project.industry) == ("Answers refund questions", Industry.FINANCE)


def test_project_update_refused_to_a_viewer_and_writes_nothing(org, viewer):
    project = ProjectFactory(organization=org, summary="Before")

    with pytest.raises(NotPermitted):
        project_update(project=project, by=viewer, summary="After")

    assert Project.objects.get(pk=project.pk).summary == "Before"


def test_project_update_cannot_move_the_stage(org, manager):
    project = ProjectFactory(organization=org)

    with pytest.raises(ValidationFailed) as excinfo:
        project_update(project=project, by=manager, stage=Stage.PRODUCTION)

    assert excinfo.value.errors == {"stage": ["Unknown field."]}
    assert Project.objects.get(pk=project.pk).stage == Stage.IDEATION


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"industry": "space_mining"}, "industry"),
        ({"start_date": dt.date(2026, 6, 1), "target_date": dt.date(2026, 1, 1)}, "target_date"),
        ({"name": ""}, "name"),
    ],
)
def test_project_update_refuses_bad_fields_and_writes_nothing(org, contributor, changes, field):
    project = ProjectFactory(organization=org, name="Original", industry=Industry.MEDIA)

    with pytest.raises(ValidationFailed) as excinfo:
        project_update(project=project, by=contributor, **changes)

    assert list(excinfo.value.errors) == [field]
    stored = Project.objects.get(pk=project.pk)
    assert (stored.name, stored.industry, stored.start_date, stored.target_date) == (
        "Original",
        Industry.MEDIA,
        None,
        None,
    )


def test_project_update_refuses_a_slug_taken_in_the_same_organization(org, contributor):
    ProjectFactory(organization=org, slug="taken")
    project = ProjectFactory(organization=org, slug="mine")

    with pytest.raises(Conflict):
        project_update(project=project, by=contributor, slug="taken")

    assert Project.objects.get(pk=project.pk).slug == "mine"


def test_project_update_allows_a_slug_taken_in_another_organization(org, contributor):
    ProjectFactory(organization=OrganizationFactory(), slug="taken")
    project = ProjectFactory(organization=org, slug="mine")

    project_update(project=project, by=contributor, slug="taken")

    assert Project.objects.get(pk=project.pk).slug == "taken"


def test_project_update_refuses_a_team_or_owner_of_another_organization(org, contributor):
    other = OrganizationFactory()
    project = ProjectFactory(organization=org)

    with pytest.raises(ValidationFailed):
        project_update(project=project, by=contributor, team=TeamFactory(organization=other))
    with pytest.raises(ValidationFailed):
        project_update(project=project, by=contributor, technical_lead=member(other, Role.ADMIN))

    stored = Project.objects.get(pk=project.pk)
    assert (stored.team, stored.technical_lead) == (None, None)


# project_transition: the allowed moves


@pytest.mark.parametrize(
    ("from_stage", "to_stage"),
    [
        (Stage.IDEATION, Stage.DATA_PREPARATION),
        (Stage.DATA_PREPARATION, Stage.DEVELOPMENT),
        (Stage.DEVELOPMENT, Stage.EVALUATION),
    ],
)
def test_transition_one_step_forward_to_an_ungated_stage(org, contributor, from_stage, to_stage):
    project = ProjectFactory(organization=org, stage=from_stage)

    transition = project_transition(project=project, to_stage=to_stage, by=contributor)

    project.refresh_from_db()
    assert project.stage == to_stage
    assert project.stage_entered_at == transition.at
    assert (transition.from_stage, transition.to_stage, transition.by) == (from_stage, to_stage, contributor)
    assert (transition.overridden_gates, transition.override_reason) == ([], "")


@pytest.mark.parametrize(
    ("from_stage", "to_stage"),
    [(Stage.EVALUATION, Stage.PILOT), (Stage.PILOT, Stage.PRODUCTION)],
)
def test_transition_into_a_gated_stage_passes_when_every_gate_is_met(org, contributor, from_stage, to_stage):
    project = make_ready(ProjectFactory(organization=org, stage=from_stage, ai_act_tier=AIActTier.LIMITED))

    project_transition(project=project, to_stage=to_stage, by=contributor)

    project.refresh_from_db()
    assert project.stage == to_stage
    assert StageTransition.objects.get(project=project).to_stage == to_stage


@pytest.mark.parametrize(
    ("from_stage", "to_stage"),
    [
        (Stage.IDEATION, Stage.DEVELOPMENT),
        (Stage.IDEATION, Stage.PRODUCTION),
        (Stage.DATA_PREPARATION, Stage.EVALUATION),
        (Stage.DEVELOPMENT, Stage.PILOT),
        (Stage.EVALUATION, Stage.PRODUCTION),
    ],
)
def test_transition_refuses_skipping_a_stage(org, manager, from_stage, to_stage):
    project = make_ready(ProjectFactory(organization=org, stage=from_stage, ai_act_tier=AIActTier.MINIMAL))

    with pytest.raises(ValidationFailed) as excinfo:
        project_transition(project=project, to_stage=to_stage, by=manager, override_reason="Board said so")

    assert "one stage at a time" in excinfo.value.message
    assert list(excinfo.value.errors) == ["to_stage"]
    assert_not_moved(project, from_stage)


@pytest.mark.parametrize(
    ("from_stage", "to_stage"),
    [
        (Stage.DATA_PREPARATION, Stage.IDEATION),
        (Stage.EVALUATION, Stage.DEVELOPMENT),
        (Stage.PRODUCTION, Stage.PILOT),
        (Stage.PRODUCTION, Stage.IDEATION),
    ],
)
def test_transition_back_to_an_earlier_stage_needs_a_note(org, contributor, from_stage, to_stage):
    project = ProjectFactory(organization=org, stage=from_stage)

    for blank in ("", "   "):
        with pytest.raises(ValidationFailed) as excinfo:
            project_transition(project=project, to_stage=to_stage, by=contributor, note=blank)
        assert "needs a note" in excinfo.value.message
    assert_not_moved(project, from_stage)

    transition = project_transition(project=project, to_stage=to_stage, by=contributor, note="  Rework the prompts  ")

    project.refresh_from_db()
    assert project.stage == to_stage
    assert transition.note == "Rework the prompts"


def test_transition_back_into_pilot_skips_the_gates(org, contributor):
    project = ProjectFactory(organization=org, stage=Stage.PRODUCTION)

    transition = project_transition(project=project, to_stage=Stage.PILOT, by=contributor, note="Rollback")

    assert transition.overridden_gates == []
    assert Project.objects.get(pk=project.pk).stage == Stage.PILOT


@pytest.mark.parametrize("from_stage", [s for s in Stage.values if s != Stage.RETIRED])
def test_transition_to_retired_from_any_stage_without_gates_or_note(org, contributor, from_stage):
    project = ProjectFactory(organization=org, stage=from_stage, ai_act_tier=AIActTier.UNACCEPTABLE)

    project_transition(project=project, to_stage=Stage.RETIRED, by=contributor)

    assert Project.objects.get(pk=project.pk).stage == Stage.RETIRED


@pytest.mark.parametrize("to_stage", [s for s in Stage.values if s != Stage.RETIRED])
def test_transition_out_of_retired_refused_even_with_a_note_and_override(org, manager, to_stage):
    project = ProjectFactory(organization=org, stage=Stage.RETIRED)

    with pytest.raises(ValidationFailed) as excinfo:
        project_transition(project=project, to_stage=to_stage, by=manager, note="Revive", override_reason="Revive")

    assert excinfo.value.message == "A retired project cannot move."
    assert_not_moved(project, Stage.RETIRED)


@pytest.mark.parametrize("stage", Stage.values)
def test_transition_to_the_same_stage_refused(org, contributor, stage):
    project = ProjectFactory(organization=org, stage=stage)

    with pytest.raises(ValidationFailed) as excinfo:
        project_transition(project=project, to_stage=stage, by=contributor, note="Again")

    assert "already in" in excinfo.value.message
    assert_not_moved(project, stage)


def test_transition_to_an_unknown_stage_refused(org, contributor):
    project = ProjectFactory(organization=org, stage=Stage.DEVELOPMENT)

    with pytest.raises(ValidationFailed) as excinfo:
        project_transition(project=project, to_stage="launched", by=contributor)

    assert list(excinfo.value.errors) == ["to_stage"]
    assert_not_moved(project, Stage.DEVELOPMENT)


def test_transition_refused_to_a_viewer(org, viewer):
    project = ProjectFactory(organization=org, stage=Stage.IDEATION)

    with pytest.raises(NotPermitted):
        project_transition(project=project, to_stage=Stage.DATA_PREPARATION, by=viewer)

    assert_not_moved(project, Stage.IDEATION)


def test_transition_refused_to_a_member_of_another_organization(org):
    project = ProjectFactory(organization=org, stage=Stage.IDEATION)

    with pytest.raises(NotPermitted):
        project_transition(
            project=project, to_stage=Stage.DATA_PREPARATION, by=member(OrganizationFactory(), Role.ADMIN)
        )

    assert_not_moved(project, Stage.IDEATION)


def test_transition_history_accumulates_in_order(org, contributor):
    project = ProjectFactory(organization=org, stage=Stage.IDEATION)

    project_transition(project=project, to_stage=Stage.DATA_PREPARATION, by=contributor)
    project_transition(project=project, to_stage=Stage.DEVELOPMENT, by=contributor)
    project_transition(project=project, to_stage=Stage.DATA_PREPARATION, by=contributor, note="Need more data")

    moves = list(StageTransition.objects.filter(project=project).values_list("from_stage", "to_stage"))
    assert moves == [
        (Stage.IDEATION, Stage.DATA_PREPARATION),
        (Stage.DATA_PREPARATION, Stage.DEVELOPMENT),
        (Stage.DEVELOPMENT, Stage.DATA_PREPARATION),
    ]


# project_transition: the gates


def test_pilot_refused_for_a_bare_project_lists_every_unmet_gate(org, contributor):
    project = ProjectFactory(organization=org, stage=Stage.EVALUATION)

    with pytest.raises(TransitionRefused) as excinfo:
        project_transition(project=project, to_stage=Stage.PILOT, by=contributor)

    assert missing_keys(excinfo) == BASE_GATES
    assert all(gate["label"] and gate["overridable"] for gate in excinfo.value.missing)
    assert_not_moved(project, Stage.EVALUATION)


def test_production_refused_for_a_bare_project_lists_every_unmet_gate(org, contributor):
    project = ProjectFactory(organization=org, stage=Stage.PILOT)

    with pytest.raises(TransitionRefused) as excinfo:
        project_transition(project=project, to_stage=Stage.PRODUCTION, by=contributor)

    assert missing_keys(excinfo) == [*BASE_GATES, "ai_act_assessed"]
    assert_not_moved(project, Stage.PILOT)


def test_production_refused_for_a_bare_high_tier_project_with_personal_data_lists_every_gate(org, contributor):
    project = ProjectFactory(
        organization=org,
        stage=Stage.PILOT,
        ai_act_tier=AIActTier.HIGH,
        data_classification=DataClassification.SENSITIVE_PERSONAL,
    )

    with pytest.raises(TransitionRefused) as excinfo:
        project_transition(project=project, to_stage=Stage.PRODUCTION, by=contributor)

    assert missing_keys(excinfo) == [
        "budget",
        "infrastructure",
        "risk_review",
        "quality_metrics",
        "compliance_risk",
        "human_oversight_owner",
        "privacy_risk",
    ]
    assert_not_moved(project, Stage.PILOT)


def _remove_gate(project: Project, gate: str) -> None:
    """Undo the one thing `make_ready` did to meet `gate`."""
    if gate == "data_classification":
        Project.objects.filter(pk=project.pk).update(data_classification="")
    elif gate == "budget":
        project.budgets.all().delete()
    elif gate == "infrastructure":
        project.infrastructure.all().delete()
    elif gate == "quality_metrics":
        project.quality_metrics.all().delete()
    elif gate == "risk_review":
        project.risks.all().delete()


@pytest.mark.parametrize("to_stage", [Stage.PILOT, Stage.PRODUCTION])
@pytest.mark.parametrize("gate", BASE_GATES)
def test_gated_stage_refused_when_one_gate_is_missing(org, contributor, gate, to_stage):
    from_stage = Stage.EVALUATION if to_stage == Stage.PILOT else Stage.PILOT
    project = make_ready(ProjectFactory(organization=org, stage=from_stage, ai_act_tier=AIActTier.MINIMAL))
    _remove_gate(project, gate)

    with pytest.raises(TransitionRefused) as excinfo:
        project_transition(project=project, to_stage=to_stage, by=contributor)

    assert missing_keys(excinfo) == [gate]
    assert_not_moved(project, from_stage)


def test_risk_review_gate_ignores_risks_never_assessed(org, contributor):
    project = make_ready(ProjectFactory(organization=org, stage=Stage.EVALUATION))
    _remove_gate(project, "risk_review")
    RiskFactory(project=project)

    with pytest.raises(TransitionRefused) as excinfo:
        project_transition(project=project, to_stage=Stage.PILOT, by=contributor)

    assert missing_keys(excinfo) == ["risk_review"]


def test_pilot_refused_with_an_open_critical_risk_without_mitigation(org, contributor):
    project = make_ready(ProjectFactory(organization=org, stage=Stage.EVALUATION))
    critical = RiskFactory(project=project, likelihood=5, impact=4, mitigation_plan="")
    critical.refresh_from_db()
    assert critical.severity == Severity.CRITICAL

    with pytest.raises(TransitionRefused) as excinfo:
        project_transition(project=project, to_stage=Stage.PILOT, by=contributor)

    assert missing_keys(excinfo) == ["critical_risks_mitigated"]
    assert_not_moved(project, Stage.EVALUATION)

    critical.mitigation_plan = "Human review of every answer"
    critical.save()
    project_transition(project=project, to_stage=Stage.PILOT, by=contributor)
    assert Project.objects.get(pk=project.pk).stage == Stage.PILOT


def test_pilot_allowed_with_a_closed_critical_risk_without_mitigation(org, contributor):
    project = make_ready(ProjectFactory(organization=org, stage=Stage.EVALUATION))
    RiskFactory(project=project, likelihood=5, impact=5, status="closed")

    project_transition(project=project, to_stage=Stage.PILOT, by=contributor)

    assert Project.objects.get(pk=project.pk).stage == Stage.PILOT


def test_high_tier_pilot_needs_an_assessed_compliance_risk_and_a_human_oversight_owner(org, contributor):
    project = make_ready(ProjectFactory(organization=org, stage=Stage.EVALUATION, ai_act_tier=AIActTier.HIGH))

    with pytest.raises(TransitionRefused) as excinfo:
        project_transition(project=project, to_stage=Stage.PILOT, by=contributor)
    assert missing_keys(excinfo) == ["compliance_risk", "human_oversight_owner"]

    RiskAssessmentFactory(risk=RiskFactory(project=project, category=RiskCategory.COMPLIANCE))
    with pytest.raises(TransitionRefused) as excinfo:
        project_transition(project=project, to_stage=Stage.PILOT, by=contributor)
    assert missing_keys(excinfo) == ["human_oversight_owner"]
    assert_not_moved(project, Stage.EVALUATION)

    project_update(project=project, by=contributor, human_oversight_owner=contributor)
    project_transition(project=project, to_stage=Stage.PILOT, by=contributor)
    assert Project.objects.get(pk=project.pk).stage == Stage.PILOT


def test_high_tier_compliance_gate_needs_the_compliance_risk_assessed_not_just_recorded(org, contributor):
    project = make_ready(
        ProjectFactory(
            organization=org, stage=Stage.EVALUATION, ai_act_tier=AIActTier.HIGH, human_oversight_owner=contributor
        )
    )
    RiskFactory(project=project, category=RiskCategory.COMPLIANCE)

    with pytest.raises(TransitionRefused) as excinfo:
        project_transition(project=project, to_stage=Stage.PILOT, by=contributor)

    assert missing_keys(excinfo) == ["compliance_risk"]


@pytest.mark.parametrize("tier", [AIActTier.MINIMAL, AIActTier.LIMITED, AIActTier.UNASSESSED])
def test_pilot_has_no_ai_act_gates_below_the_high_tier(org, contributor, tier):
    project = make_ready(ProjectFactory(organization=org, stage=Stage.EVALUATION, ai_act_tier=tier))

    project_transition(project=project, to_stage=Stage.PILOT, by=contributor)

    assert Project.objects.get(pk=project.pk).stage == Stage.PILOT


@pytest.mark.parametrize(("from_stage", "to_stage"), [(Stage.EVALUATION, Stage.PILOT), (Stage.PILOT, Stage.PRODUCTION)])
def test_unacceptable_tier_never_enters_pilot_or_production_even_with_a_manager_override(
    org, manager, from_stage, to_stage
):
    project = make_ready(ProjectFactory(organization=org, stage=from_stage, ai_act_tier=AIActTier.UNACCEPTABLE))

    with pytest.raises(TransitionRefused) as excinfo:
        project_transition(project=project, to_stage=to_stage, by=manager, override_reason="The CEO insists")

    assert excinfo.value.missing == [
        {
            "key": "ai_act_not_prohibited",
            "label": excinfo.value.missing[0]["label"],
            "overridable": False,
        }
    ]
    assert "no override can bypass" in excinfo.value.message
    assert_not_moved(project, from_stage)


def test_unacceptable_tier_refusal_still_lists_the_other_unmet_gates(org, manager):
    project = ProjectFactory(organization=org, stage=Stage.EVALUATION, ai_act_tier=AIActTier.UNACCEPTABLE)

    with pytest.raises(TransitionRefused) as excinfo:
        project_transition(project=project, to_stage=Stage.PILOT, by=manager, override_reason="Ship it")

    assert missing_keys(excinfo) == [*BASE_GATES, "ai_act_not_prohibited"]
    assert_not_moved(project, Stage.EVALUATION)


def test_unassessed_tier_cannot_enter_production(org, contributor):
    project = make_ready(ProjectFactory(organization=org, stage=Stage.PILOT, ai_act_tier=AIActTier.UNASSESSED))

    with pytest.raises(TransitionRefused) as excinfo:
        project_transition(project=project, to_stage=Stage.PRODUCTION, by=contributor)

    assert missing_keys(excinfo) == ["ai_act_assessed"]
    assert_not_moved(project, Stage.PILOT)


@pytest.mark.parametrize("classification", DataClassification.personal())
def test_production_with_personal_data_needs_an_assessed_data_privacy_risk(org, contributor, classification):
    project = make_ready(
        ProjectFactory(
            organization=org,
            stage=Stage.PILOT,
            ai_act_tier=AIActTier.LIMITED,
            data_classification=classification,
        )
    )

    with pytest.raises(TransitionRefused) as excinfo:
        project_transition(project=project, to_stage=Stage.PRODUCTION, by=contributor)
    assert missing_keys(excinfo) == ["privacy_risk"]
    assert_not_moved(project, Stage.PILOT)

    RiskAssessmentFactory(risk=RiskFactory(project=project, category=RiskCategory.DATA_PRIVACY))
    project_transition(project=project, to_stage=Stage.PRODUCTION, by=contributor)
    assert Project.objects.get(pk=project.pk).stage == Stage.PRODUCTION


def test_pilot_with_personal_data_needs_no_privacy_risk(org, contributor):
    project = make_ready(
        ProjectFactory(organization=org, stage=Stage.EVALUATION, data_classification=DataClassification.PERSONAL)
    )

    project_transition(project=project, to_stage=Stage.PILOT, by=contributor)

    assert Project.objects.get(pk=project.pk).stage == Stage.PILOT


def test_manager_override_with_justification_is_recorded(org, manager):
    project = ProjectFactory(organization=org, stage=Stage.EVALUATION)

    transition = project_transition(
        project=project, to_stage=Stage.PILOT, by=manager, override_reason="  Pilot with 20 internal users only  "
    )

    stored = StageTransition.objects.get(pk=transition.pk)
    assert stored.overridden_gates == BASE_GATES
    assert stored.override_reason == "Pilot with 20 internal users only"
    assert stored.by == manager
    assert Project.objects.get(pk=project.pk).stage == Stage.PILOT


def test_manager_override_records_nothing_when_every_gate_passes(org, manager):
    project = make_ready(ProjectFactory(organization=org, stage=Stage.EVALUATION))

    transition = project_transition(project=project, to_stage=Stage.PILOT, by=manager, override_reason="Just in case")

    assert (transition.overridden_gates, transition.override_reason) == ([], "")


def test_manager_without_a_justification_is_refused_like_anyone(org, manager):
    project = ProjectFactory(organization=org, stage=Stage.EVALUATION)

    with pytest.raises(TransitionRefused) as excinfo:
        project_transition(project=project, to_stage=Stage.PILOT, by=manager, override_reason="   ")

    assert missing_keys(excinfo) == BASE_GATES
    assert_not_moved(project, Stage.EVALUATION)


def test_contributor_override_is_not_permitted(org, contributor):
    project = ProjectFactory(organization=org, stage=Stage.EVALUATION)

    with pytest.raises(NotPermitted):
        project_transition(project=project, to_stage=Stage.PILOT, by=contributor, override_reason="Trust me")

    assert_not_moved(project, Stage.EVALUATION)


def test_refused_transition_leaves_the_callers_object_unchanged(org, contributor):
    project = ProjectFactory(organization=org, stage=Stage.EVALUATION)
    entered = project.stage_entered_at

    with pytest.raises(TransitionRefused):
        project_transition(project=project, to_stage=Stage.PILOT, by=contributor)

    assert (project.stage, project.stage_entered_at) == (Stage.EVALUATION, entered)


# project_transition: concurrency


def _in_thread(target, results: list, index: int) -> threading.Thread:
    """Run `target` in a thread with its own database connection; store its result or exception."""

    def run() -> None:
        try:
            results[index] = target()
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_concurrent_transitions_of_one_project_cannot_both_succeed():
    org = OrganizationFactory()
    users = [member(org, Role.CONTRIBUTOR) for _ in range(2)]
    project = ProjectFactory(organization=org, stage=Stage.DEVELOPMENT)
    barrier = threading.Barrier(2)
    results: list = [None, None]

    def move(user):
        def run():
            # Each thread holds its own stale copy, loaded before the other moved it.
            stale = Project.objects.get(pk=project.pk)
            barrier.wait()
            return project_transition(project=stale, to_stage=Stage.EVALUATION, by=user)

        return run

    threads = [_in_thread(move(user), results, i) for i, user in enumerate(users)]
    for thread in threads:
        thread.join()

    succeeded = [r for r in results if isinstance(r, StageTransition)]
    failed = [r for r in results if isinstance(r, Exception)]
    assert len(succeeded) == 1 and len(failed) == 1
    assert isinstance(failed[0], ValidationFailed)
    assert failed[0].message == "The project is already in Evaluation."
    assert StageTransition.objects.filter(project=project).count() == 1
    assert Project.objects.get(pk=project.pk).stage == Stage.EVALUATION


def _waiting_on_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"


@pytest.mark.django_db(transaction=True)
def test_transition_waits_for_a_concurrent_move_and_judges_against_its_result():
    org = OrganizationFactory()
    contributor = member(org, Role.CONTRIBUTOR)
    project = ProjectFactory(organization=org, stage=Stage.DEVELOPMENT)
    locked, release = threading.Event(), threading.Event()
    second_pid: list[int] = []

    def first_mover():
        # Another writer holds the row lock and moves the project while the service waits for it.
        with transaction.atomic():
            row = Project.objects.select_for_update().get(pk=project.pk)
            locked.set()
            release.wait()
            row.stage = Stage.EVALUATION
            row.save(update_fields=["stage"])
        return row

    def second_mover():
        locked.wait()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            second_pid.append(cursor.fetchone()[0])
        return project_transition(project=project, to_stage=Stage.EVALUATION, by=contributor)

    first_result, second_result = [None], [None]
    first = _in_thread(first_mover, first_result, 0)
    second = _in_thread(second_mover, second_result, 0)
    try:
        # Poll the server, not the clock: the service must be blocked on the row lock the first mover holds.
        while not (second_pid and _waiting_on_a_lock(second_pid[0])):
            assert second.is_alive(), f"The transition did not wait for the row lock: {second_result[0]!r}"
            time.sleep(0.01)
    finally:
        release.set()
        first.join()
        second.join()

    assert isinstance(first_result[0], Project)
    assert isinstance(second_result[0], ValidationFailed)
    assert second_result[0].message == "The project is already in Evaluation."
    assert not StageTransition.objects.filter(project=project).exists()
    assert Project.objects.get(pk=project.pk).stage == Stage.EVALUATION


# status_update_create


def test_status_update_sets_the_project_health_progress_and_date(org, contributor):
    project = ProjectFactory(organization=org)
    today = organization_today(org)

    update = status_update_create(
        project=project,
        by=contributor,
        date=today,
        health=Health.AMBER,
        progress=40,
        summary="Vendor contract delayed",
        blockers="Legal review",
    )

    project.refresh_from_db()
    assert (project.health, project.progress, project.last_status_date) == (Health.AMBER, 40, today)
    assert (update.author, update.blockers) == (contributor, "Legal review")


def test_older_status_update_does_not_override_the_newest(org, contributor):
    project = ProjectFactory(organization=org)
    today = organization_today(org)
    status_update_create(project=project, by=contributor, date=today, health=Health.GREEN, progress=60, summary="Now")

    status_update_create(
        project=project,
        by=contributor,
        date=today - dt.timedelta(days=7),
        health=Health.RED,
        progress=20,
        summary="Old",
    )

    project.refresh_from_db()
    assert (project.health, project.progress, project.last_status_date) == (Health.GREEN, 60, today)
    assert StatusUpdate.objects.filter(project=project).count() == 2


def test_newer_status_update_overrides_and_same_day_latest_wins(org, contributor):
    project = ProjectFactory(organization=org)
    today = organization_today(org)
    yesterday = today - dt.timedelta(days=1)
    status_update_create(project=project, by=contributor, date=yesterday, health=Health.GREEN, progress=10, summary="1")
    status_update_create(project=project, by=contributor, date=today, health=Health.AMBER, progress=20, summary="2")
    status_update_create(project=project, by=contributor, date=today, health=Health.RED, progress=25, summary="3")

    project.refresh_from_db()
    assert (project.health, project.progress, project.last_status_date) == (Health.RED, 25, today)


def test_status_update_dated_in_the_future_refused(org, contributor):
    project = ProjectFactory(organization=org)
    tomorrow = organization_today(org) + dt.timedelta(days=1)

    with pytest.raises(ValidationFailed) as excinfo:
        status_update_create(
            project=project, by=contributor, date=tomorrow, health=Health.GREEN, progress=1, summary="."
        )

    assert list(excinfo.value.errors) == ["date"]
    assert not StatusUpdate.objects.exists()
    project.refresh_from_db()
    assert (project.health, project.last_status_date) == ("", None)


def test_status_update_future_is_judged_in_the_organization_timezone():
    org = OrganizationFactory(timezone="Pacific/Kiritimati")
    contributor = member(org, Role.CONTRIBUTOR)
    project = ProjectFactory(organization=org)
    local_today = organization_today(org)

    status_update_create(
        project=project, by=contributor, date=local_today, health=Health.GREEN, progress=5, summary="."
    )

    assert Project.objects.get(pk=project.pk).last_status_date == local_today


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"progress": 101}, "progress"),
        ({"progress": -1}, "progress"),
        ({"health": "purple"}, "health"),
        ({"summary": ""}, "summary"),
    ],
)
def test_status_update_refuses_bad_values_and_writes_nothing(org, contributor, values, field):
    project = ProjectFactory(organization=org)
    good = {"date": organization_today(org), "health": Health.GREEN, "progress": 50, "summary": "Fine"}

    with pytest.raises(ValidationFailed) as excinfo:
        status_update_create(project=project, by=contributor, **(good | values))

    assert list(excinfo.value.errors) == [field]
    assert not StatusUpdate.objects.exists()
    assert Project.objects.get(pk=project.pk).health == ""


def test_status_update_refuses_an_unknown_field(org, contributor):
    project = ProjectFactory(organization=org)

    with pytest.raises(ValidationFailed) as excinfo:
        status_update_create(
            project=project,
            by=contributor,
            date=organization_today(org),
            health=Health.GREEN,
            progress=5,
            summary=".",
            mood="great",
        )

    assert excinfo.value.errors == {"mood": ["Unknown field."]}
    assert not StatusUpdate.objects.exists()


def test_status_update_refused_to_a_viewer(org, viewer):
    project = ProjectFactory(organization=org)

    with pytest.raises(NotPermitted):
        status_update_create(
            project=project, by=viewer, date=organization_today(org), health=Health.RED, progress=5, summary="."
        )

    assert not StatusUpdate.objects.exists()
    assert Project.objects.get(pk=project.pk).health == ""
