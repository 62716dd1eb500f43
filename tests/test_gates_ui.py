"""Actionable gates (issue 16, point 5): each unmet gate links to what meets it, the stage form says a
move will be refused before it is tried, and an overridden gate is marked on the pipeline."""

import pytest
from django.test import Client
from django.urls import reverse

from ops.tests.factories import BudgetFactory
from projects.gates import GATES
from projects.models import AIActTier, DataClassification, Role, Stage, StageTransition
from projects.selectors import transition_check
from projects.services import project_transition
from projects.tests.factories import OrganizationFactory, ProjectFactory, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    return OrganizationFactory()


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_every_registered_gate_says_where_it_is_met():
    assert all(gate.fix and gate.hint for gate in GATES.values()), [k for k, g in GATES.items() if not g.fix]


def test_the_page_links_each_unmet_gate_to_its_form_and_not_the_met_ones(org):
    project = ProjectFactory(organization=org, stage=Stage.EVALUATION, data_classification=DataClassification.INTERNAL)
    BudgetFactory(project=project)
    page = _client(member(org)).get(project.get_absolute_url()).content.decode()

    assert f'href="{reverse("projects:form", args=[project.pk, "infrastructure"])}"' in page
    assert f'href="{reverse("projects:form", args=[project.pk, "metric"])}"' in page
    assert f'href="{reverse("ops:risks")}?project={project.pk}"' in page
    assert 'data-testid="fix-budget"' not in page and 'data-testid="fix-data_classification"' not in page
    assert 'data-testid="fix-infrastructure"' in page


def test_the_fix_links_open_pages_that_answer(org):
    project = ProjectFactory(organization=org, stage=Stage.EVALUATION, ai_act_tier=AIActTier.HIGH)
    client = _client(member(org, Role.MANAGER))
    check = transition_check(project=project, to_stage=Stage.PILOT)
    assert {gate.key for gate in check.unmet} >= {"budget", "compliance_risk", "human_oversight_owner"}
    for gate in check.unmet:
        assert client.get(gate.fix_url).status_code == 200, gate.key


def test_the_preview_says_a_move_will_be_refused_before_it_is_tried(org):
    project = ProjectFactory(organization=org, stage=Stage.EVALUATION)
    client = _client(member(org))
    url = reverse("projects:transition-preview", args=[project.pk])

    refused = client.get(url, {"to_stage": Stage.PILOT}, headers={"HX-Request": "true"}).content.decode()
    assert 'data-testid="preview-refused"' in refused and "Data classification is set" in refused
    assert "Set the data classification" in refused
    back = client.get(url, {"to_stage": Stage.IDEATION}).content.decode()
    assert "needs a note" in back
    assert (
        'data-testid="preview-ok"' in client.get(url, {"to_stage": Stage.IDEATION, "note": "rework"}).content.decode()
    )
    assert "one stage at a time" in client.get(url, {"to_stage": Stage.PRODUCTION}).content.decode()
    assert 'data-testid="preview-ok"' in client.get(url, {"to_stage": Stage.RETIRED}).content.decode()
    project.refresh_from_db()
    assert project.stage == Stage.EVALUATION and not StageTransition.objects.exists()


def test_the_preview_agrees_with_the_service(org):
    from tracker.exceptions import TransitionRefused

    project = ProjectFactory(organization=org, stage=Stage.EVALUATION)
    user = member(org)
    check = transition_check(project=project, to_stage=Stage.PILOT)
    with pytest.raises(TransitionRefused) as refused:
        project_transition(project=project, to_stage=Stage.PILOT, by=user)
    assert [gate["key"] for gate in refused.value.missing] == [gate.key for gate in check.unmet]


def test_the_preview_is_for_contributors(org):
    project = ProjectFactory(organization=org, stage=Stage.EVALUATION)
    url = reverse("projects:transition-preview", args=[project.pk])
    assert _client(member(org, Role.VIEWER)).get(url, {"to_stage": Stage.PILOT}).status_code == 403


def test_a_refusal_links_its_gates_to_their_forms(org):
    project = ProjectFactory(organization=org, stage=Stage.EVALUATION, data_classification=DataClassification.INTERNAL)
    answer = _client(member(org)).post(
        reverse("projects:transition", args=[project.pk]), {"to_stage": Stage.PILOT}, headers={"HX-Request": "true"}
    )
    body = answer.content.decode()
    assert 'data-testid="refused"' in body
    assert f'href="{reverse("projects:form", args=[project.pk, "infrastructure"])}"' in body
    assert "Record the budget: a manager does this" in body  # a contributor is not sent to a manager's form


def test_an_overridden_gate_is_marked_on_the_pipeline_with_who_and_why(org):
    project = ProjectFactory(organization=org, stage=Stage.EVALUATION, data_classification=DataClassification.INTERNAL)
    manager = member(org, Role.MANAGER)
    project_transition(project=project, to_stage=Stage.PILOT, by=manager, override_reason="Board approved the pilot")
    page = _client(member(org)).get(project.get_absolute_url()).content.decode()

    marker = page[page.index('data-testid="override"') :][:600]
    assert manager.username in marker and "Board approved the pilot" in marker
    assert "A budget is recorded" in marker
    assert page.count('data-testid="override"') == 1
