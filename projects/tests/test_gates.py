"""The stage-gate registry: one definition per gate, read by the transition, the project page and the report."""

import datetime as dt

import pytest
from django.db import connection
from django.db.models import OuterRef
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from ops.models import ReportKind
from ops.selectors.reports import report_week
from ops.services import report_build
from ops.tests.factories import ReportFactory
from projects.gates import GATES, Gate, gates_annotate, gates_unmet, project_gates, register, unregister
from projects.models import AIActTier, DataClassification, Project, Stage, StatusUpdate
from projects.services import project_transition
from projects.tests.factories import ProjectFactory
from tracker.db import row_exists
from tracker.exceptions import TransitionRefused

pytestmark = pytest.mark.django_db

LABEL = "A status update is logged (test gate)"


@pytest.fixture
def status_gate():
    """Register a gate no code outside this test knows: a status update must exist."""
    gate = register(
        Gate(
            "status_logged",
            LABEL,
            lambda: row_exists(StatusUpdate.objects.filter(project=OuterRef("pk"))),
            order=5,
            stages=(Stage.PILOT,),
        )
    )
    yield gate
    unregister(gate.key)


def test_ops_registers_its_gates_beside_the_core_ones():
    assert set(GATES) >= {
        "data_classification",
        "human_oversight_owner",
        "ai_act_not_prohibited",
        "ai_act_assessed",
        "budget",
        "infrastructure",
        "risk_review",
        "critical_risks_mitigated",
        "quality_metrics",
        "compliance_risk",
        "privacy_risk",
    }


def test_a_registered_gate_refuses_the_transition(org, contributor, status_gate):
    project = ProjectFactory(organization=org, stage=Stage.EVALUATION)

    with pytest.raises(TransitionRefused) as excinfo:
        project_transition(project=project, to_stage=Stage.PILOT, by=contributor)

    missing = excinfo.value.missing
    assert missing[0] == {"key": "status_logged", "label": LABEL, "overridable": True}
    project.refresh_from_db()
    assert project.stage == Stage.EVALUATION and not project.transitions.exists()


def test_a_registered_gate_guards_only_its_stages(org, contributor, status_gate):
    project = ProjectFactory(organization=org, stage=Stage.PILOT)
    assert "status_logged" not in [g.key for g in project_gates(project=project, to_stage=Stage.PRODUCTION)]


def test_a_registered_gate_shows_on_the_project_page(client, org, contributor, status_gate):
    project = ProjectFactory(organization=org, stage=Stage.EVALUATION)
    client.force_login(contributor)

    page = client.get(reverse("projects:detail", args=[project.pk])).content.decode()

    assert LABEL in page


def week_report(org, day: dt.date | None = None):
    start, end = report_week(day or dt.date.today())
    return ReportFactory(organization=org, kind=ReportKind.STATUS, period_start=start, period_end=end)


def test_a_registered_gate_shows_in_the_report(org, status_gate):
    ProjectFactory(organization=org, stage=Stage.EVALUATION, name="Blocked")
    met = ProjectFactory(organization=org, stage=Stage.EVALUATION, name="Logged")
    StatusUpdate.objects.create(project=met, date=dt.date.today(), health="green", progress=10, summary="s")
    report = week_report(org)

    sections = {s["name"]: s for s in report_build(report_id=report.pk).data["projects"]}

    assert "status_logged" in sections["Blocked"]["unmet_gates"]
    assert "status_logged" not in sections["Logged"]["unmet_gates"]


def test_report_query_count_does_not_grow_with_projects_or_gates(org, status_gate):
    ProjectFactory(organization=org, stage=Stage.EVALUATION)

    def count(day: dt.date) -> int:
        report = week_report(org, day)
        with CaptureQueriesContext(connection) as queries:
            report_build(report_id=report.pk)
        return len(queries)

    few = count(dt.date.today())
    ProjectFactory.create_batch(5, organization=org, stage=Stage.PILOT)
    assert count(dt.date.today() + dt.timedelta(days=7)) == few


def test_one_project_costs_one_query_for_all_its_gates(org, django_assert_num_queries):
    project = ProjectFactory(
        organization=org,
        stage=Stage.PILOT,
        ai_act_tier=AIActTier.HIGH,
        data_classification=DataClassification.PERSONAL,
    )
    with django_assert_num_queries(1):
        checks = project_gates(project=project, to_stage=Stage.PRODUCTION)
    assert [g.key for g in checks if not g.passed] == [
        "budget",
        "infrastructure",
        "risk_review",
        "quality_metrics",
        "compliance_risk",
        "human_oversight_owner",
        "privacy_risk",
    ]


def test_the_set_form_agrees_with_the_single_project_check(org, status_gate):
    projects = [
        ProjectFactory(organization=org, stage=stage, ai_act_tier=tier)
        for stage in (Stage.EVALUATION, Stage.PILOT, Stage.DEVELOPMENT)
        for tier in (AIActTier.HIGH, AIActTier.UNACCEPTABLE, AIActTier.UNASSESSED)
    ]
    rows = {row.pk: row for row in gates_annotate(Project.objects.filter(organization=org))}
    for project in projects:
        following = Stage.following(project.stage)
        expected = [g.key for g in project_gates(project=project, to_stage=following) if not g.passed]
        assert gates_unmet(row=rows[project.pk]) == expected
