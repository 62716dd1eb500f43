"""The report build's fixed costs: exact queries per report, the next step's statements running while Python works on
the rows of the one before, progress writes only when someone can see them, risk lists read as the few columns a
report stores."""

import datetime as dt

import pytest
import time_machine
from django.db import DataError, connection
from django.test.utils import CaptureQueriesContext

from ops.models import Report, ReportKind, ReportState, RiskAssessment
from ops.selectors import reports as report_selectors
from ops.services import report_build
from ops.services import reports as report_services
from ops.tests.factories import (
    BudgetFactory,
    CostEntryFactory,
    InfrastructureComponentFactory,
    QualityMetricFactory,
    ReportFactory,
    RiskFactory,
)
from projects.models import Stage, StageTransition, StatusUpdate
from projects.tests.factories import OrganizationFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db

UTC = dt.UTC
WEEK = (dt.date(2026, 3, 2), dt.date(2026, 3, 8))
BEFORE = dt.datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
# Statements of one build in a test (a savepoint and its release stand for BEGIN/COMMIT): the advisory lock and
# the running state (one statement), the report, the figures, the ready state with its webhook endpoint look-up,
# the unlock.
BOOKKEEPING = 7
# Status: 10 — the forecast window's daily spend (one grouped query, `cost_figures`) and the budget
# thresholds crossed in the period (issue 17). Each is sent on its own in the builds' pipeline (tracker.db.pipeline).
FIGURE_QUERIES = {ReportKind.STATUS: 10, ReportKind.RISK: 10}


def _seed(org, n: int) -> None:
    for i in range(n):
        project = ProjectFactory(organization=org, stage=Stage.PILOT if i % 2 else Stage.EVALUATION)
        BudgetFactory(project=project, period_start=dt.date(2026, 1, 1), period_end=dt.date(2026, 12, 31))
        CostEntryFactory.create_batch(2, project=project, date=dt.date(2026, 3, 4))
        StatusUpdate.objects.create(project=project, date=dt.date(2026, 3, 3), health="amber", progress=30, summary="s")
        QualityMetricFactory(project=project, date=dt.date(2026, 3, 3))
        InfrastructureComponentFactory(project=project)
        for risk in RiskFactory.create_batch(2, project=project):
            RiskAssessment.objects.create(
                risk=risk, assessed_at=dt.datetime(2026, 3, 4, 9, tzinfo=UTC), likelihood=5, impact=5
            )
        StageTransition.objects.create(
            project=project, from_stage=Stage.IDEATION, to_stage=project.stage, at=dt.datetime(2026, 3, 4, tzinfo=UTC)
        )


def _report_writes(queries: CaptureQueriesContext) -> list[str]:
    # The running state is written by the claim's CTE (raw SQL), the others by the ORM.
    writes = ('UPDATE "ops_report"', "UPDATE ops_report ")
    return [q["sql"] for q in queries.captured_queries if any(write in q["sql"] for write in writes)]


@pytest.mark.parametrize("kind", [ReportKind.STATUS, ReportKind.RISK])
def test_a_report_costs_the_same_exact_queries_for_1_and_6_projects(kind, monkeypatch):
    # However loaded the machine, no step outlasts the interval here.
    monkeypatch.setattr(report_services, "PROGRESS_WRITE_INTERVAL", float("inf"))
    counts = []
    for n in (1, 6):
        with time_machine.travel(BEFORE, tick=False):
            org = OrganizationFactory()
            _seed(org, n)
        report = ReportFactory(organization=org, kind=kind, period_start=WEEK[0], period_end=WEEK[1])
        with CaptureQueriesContext(connection) as queries:
            built = report_build(report_id=report.pk)
        assert built.state == ReportState.READY
        # A build faster than the interval writes the report twice (running, ready), none of its progress steps.
        assert len(_report_writes(queries)) == 2
        counts.append(len(queries))
    assert counts == [BOOKKEEPING + FIGURE_QUERIES[kind]] * 2


@pytest.mark.parametrize(
    ("kind", "works_on_rows"),
    # Python's work on the first step's rows: a project's section (status), a list's rows (risk).
    [(ReportKind.STATUS, "_section_without_costs"), (ReportKind.RISK, "_risk_list_data")],
)
def test_the_next_steps_statements_run_while_python_works_on_the_rows_before(kind, works_on_rows, monkeypatch):
    with time_machine.travel(BEFORE, tick=False):
        org = OrganizationFactory()
        _seed(org, 2)
    report = ReportFactory(organization=org, kind=kind, period_start=WEEK[0], period_end=WEEK[1])
    original, in_flight = getattr(report_selectors, works_on_rows), []

    def working(*args, **kwargs):
        # Sent and not read yet: libpq still waits for their results (a pipeline returns them when asked).
        in_flight.append(connection.connection.pgconn.is_busy())
        return original(*args, **kwargs)

    monkeypatch.setattr(report_selectors, works_on_rows, working)
    assert report_build(report_id=report.pk).state == ReportState.READY
    assert in_flight and in_flight[0]


@pytest.mark.django_db(transaction=True)
def test_a_statement_failing_in_the_pipeline_fails_the_report_and_leaves_the_connection_usable(monkeypatch):
    with time_machine.travel(BEFORE, tick=False):
        org = OrganizationFactory()
        _seed(org, 1)
    report = ReportFactory(organization=org, kind=ReportKind.STATUS, period_start=WEEK[0], period_end=WEEK[1])

    def failing(**kwargs):
        cursor = connection.cursor()
        cursor.execute("SELECT 1 / 0")  # sent with the costs' statements, refused when they are read
        return cursor.fetchall

    monkeypatch.setattr(report_selectors, "cost_figures_send", failing)
    with pytest.raises(DataError, match="division by zero"):
        report_build(report_id=report.pk)
    report.refresh_from_db()
    assert report.state == ReportState.FAILED and "division by zero" in report.error
    monkeypatch.undo()
    # The lock was given back and the session is out of the pipeline: the next build claims and completes it.
    assert report_build(report_id=report.pk).state == ReportState.READY


def test_progress_steps_are_written_once_the_interval_has_passed(monkeypatch):
    org = OrganizationFactory()
    _seed(org, 1)
    report = ReportFactory(organization=org, kind=ReportKind.STATUS, period_start=WEEK[0], period_end=WEEK[1])
    seen = []

    def watching(**kwargs):
        # What the page would poll mid-build: the step of the last write.
        data = report_selectors.status_report_data(**kwargs)
        seen.append(Report.objects.values_list("progress", "step").get(pk=report.pk))
        return data

    monkeypatch.setitem(report_selectors.BUILDERS, ReportKind.STATUS, watching)
    monkeypatch.setattr(report_services, "PROGRESS_WRITE_INTERVAL", 0)
    with CaptureQueriesContext(connection) as queries:
        report_build(report_id=report.pk)
    # Running, both steps of the status report, ready.
    assert len(_report_writes(queries)) == 4
    assert seen == [(60, "Budgets and costs")]
    assert Report.objects.get(pk=report.pk).progress == 100


def test_listed_risks_carry_their_project_and_owner_names_and_local_times():
    org = OrganizationFactory(timezone="Europe/Berlin")
    project = ProjectFactory(organization=org, name="Aria")
    owner = UserFactory(username="olga")
    with time_machine.travel(dt.datetime(2026, 3, 4, 23, 30, tzinfo=UTC), tick=False):
        risk = RiskFactory(project=project, owner=owner, likelihood=4, impact=5, next_review_date=dt.date(2026, 3, 6))
        portfolio_wide = RiskFactory(organization=org, project=None, owner=None, likelihood=1, impact=1)
    data = report_build(
        report_id=ReportFactory(organization=org, kind=ReportKind.RISK, period_start=WEEK[0], period_end=WEEK[1]).pk
    ).data
    assert data["new"]["count"] == 2
    first, second = data["new"]["items"]
    assert first == {
        "id": risk.pk,
        "title": risk.title,
        "project_id": project.pk,
        "project": "Aria",
        "category": risk.category,
        "likelihood": 4,
        "impact": 5,
        "score": 20,
        "severity": "critical",
        "status": risk.status,
        "owner": "olga",
        "next_review_date": "2026-03-06",
        "signal_rule": "",
        "created_at": "2026-03-05T00:30:00+01:00",
    }
    assert (second["id"], second["project"], second["owner"]) == (portfolio_wide.pk, "", "")
    assert data["top_risks"][0] == first
