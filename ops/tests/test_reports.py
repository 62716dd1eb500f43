"""Report figures against hand-computed data; build states, digest, exports; bounded queries."""

import csv
import datetime as dt
import io
from decimal import Decimal

import psycopg
import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ops.models import (
    CostCategory,
    CostSource,
    Hosting,
    MetricKind,
    Report,
    ReportKind,
    ReportState,
    RiskAssessment,
    RiskCategory,
    RiskSource,
    RiskStatus,
)
from ops.selectors.reports import BUILDERS, _project_rows, report_csv, report_markdown, report_week
from ops.services import report_build, report_digest_send, report_request, risk_accept, risk_update
from ops.services.reports import LOCK_NAMESPACE
from ops.tests.factories import (
    BudgetFactory,
    CostEntryFactory,
    InfrastructureComponentFactory,
    QualityMetricFactory,
    ReportFactory,
    RiskFactory,
)
from projects.gates import gates_unmet, project_gates
from projects.models import DataClassification, Role, Stage, StageTransition, StatusUpdate
from projects.tests.factories import MembershipFactory, OrganizationFactory, ProjectFactory, UserFactory
from tests.fault_helpers import db_url
from tracker.exceptions import NotPermitted, ValidationFailed
from tracker.mail import MailCounts

pytestmark = pytest.mark.django_db

UTC = dt.UTC
WEEK = (dt.date(2026, 3, 2), dt.date(2026, 3, 8))  # Monday – Sunday
BEFORE = dt.datetime(2026, 2, 2, 9, 0, tzinfo=UTC)


def at(day: int, hour: int = 12, month: int = 3, tz=UTC) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, 0, tzinfo=tz)


def status(project, date: dt.date, health: str, progress: int) -> StatusUpdate:
    return StatusUpdate.objects.create(project=project, date=date, health=health, progress=progress, summary="s")


def build(report_kind: str, organization, period=WEEK) -> Report:
    report = ReportFactory(organization=organization, kind=report_kind, period_start=period[0], period_end=period[1])
    return report_build(report_id=report.pk)


@pytest.fixture
def portfolio():
    """Two live projects, one archived, one created after the period: the figures are worked out by hand."""
    with time_machine.travel(BEFORE, tick=False):
        org = OrganizationFactory(currency="EUR", timezone="UTC")
        alpha = ProjectFactory(organization=org, name="Alpha", stage=Stage.EVALUATION)
        beta = ProjectFactory(organization=org, name="Beta", stage=Stage.EVALUATION)
        archived = ProjectFactory(organization=org, name="Archived", archived=True)
    with time_machine.travel(at(10), tick=False):
        late = ProjectFactory(organization=org, name="Late")
    # Alpha: evaluation → pilot inside the week, → production after it (the report says pilot).
    StageTransition.objects.create(project=alpha, from_stage=Stage.EVALUATION, to_stage=Stage.PILOT, at=at(4, 10))
    StageTransition.objects.create(project=alpha, from_stage=Stage.PILOT, to_stage=Stage.PRODUCTION, at=at(10))
    alpha.stage, alpha.stage_entered_at = Stage.PRODUCTION, at(10)
    alpha.save()
    BudgetFactory(project=alpha, period_start=dt.date(2026, 1, 1), period_end=dt.date(2026, 12, 31), amount=3650)
    for date, amount, category in [
        (dt.date(2026, 1, 15), "100.00", CostCategory.INFERENCE),
        (dt.date(2026, 3, 2), "50.00", CostCategory.INFERENCE),
        (dt.date(2026, 3, 8), "25.50", CostCategory.STORAGE),
        (dt.date(2026, 3, 9), "999.00", CostCategory.INFERENCE),
    ]:
        CostEntryFactory(project=alpha, date=date, amount=Decimal(amount), category=category)
    CostEntryFactory.create(
        project=alpha, date=dt.date(2026, 3, 2), amount=None, source=CostSource.USAGE, input_tokens=0
    )
    alpha.cost_entries.filter(date=dt.date(2026, 3, 2), amount=Decimal("50.00")).update(
        input_tokens=1000, output_tokens=500
    )
    alpha.cost_entries.filter(amount__isnull=True).update(input_tokens=200, output_tokens=100, date=dt.date(2026, 3, 5))
    for day, health, progress in [(9, "green", 10), (16, "green", 20), (23, "amber", 30)]:
        status(alpha, dt.date(2026, 2, day), health, progress)
    status(alpha, dt.date(2026, 3, 2), "amber", 40)
    status(alpha, dt.date(2026, 3, 6), "red", 45)
    status(alpha, dt.date(2026, 3, 10), "green", 60)
    QualityMetricFactory(
        project=alpha,
        metric=MetricKind.HALLUCINATION_RATE,
        value=0.08,
        threshold=0.05,
        higher_is_better=False,
        date=dt.date(2026, 3, 3),
    )
    QualityMetricFactory(project=alpha, metric=MetricKind.ACCURACY, value=0.95, date=dt.date(2026, 3, 1))
    QualityMetricFactory(project=alpha, metric=MetricKind.ACCURACY, value=0.85, date=dt.date(2026, 3, 10))
    InfrastructureComponentFactory(project=alpha, provider="aws", hosting=Hosting.CLOUD)
    InfrastructureComponentFactory(project=alpha, provider="azure", hosting=Hosting.HYBRID)
    with time_machine.travel(BEFORE, tick=False):
        RiskFactory(project=alpha, likelihood=4, impact=3)
        RiskFactory(project=alpha, likelihood=5, impact=4)
        RiskFactory(project=alpha, likelihood=1, impact=1, status=RiskStatus.CLOSED)
        RiskFactory(project=None, organization=org, likelihood=2, impact=3)
        RiskFactory(project=archived, likelihood=5, impact=5)
    CostEntryFactory(project=beta, date=dt.date(2026, 3, 3), amount=Decimal("100.00"), category=CostCategory.TRAINING)
    CostEntryFactory(project=archived, date=dt.date(2026, 3, 3), amount=Decimal("7.00"))
    CostEntryFactory(project=late, date=dt.date(2026, 3, 3), amount=Decimal("7.00"))
    return org, alpha, beta


def test_report_week_runs_monday_to_sunday():
    assert report_week(dt.date(2026, 3, 4)) == WEEK
    assert report_week(dt.date(2026, 3, 8)) == WEEK
    assert report_week(dt.date(2026, 3, 9)) == (dt.date(2026, 3, 9), dt.date(2026, 3, 15))


def test_status_report_project_sections_match_hand_computed_figures(portfolio):
    org, *_ = portfolio
    report = build(ReportKind.STATUS, org)
    assert report.state == ReportState.READY and report.progress == 100
    sections = {s["name"]: s for s in report.data["projects"]}
    assert list(sections) == ["Alpha", "Beta"]  # archived and not-yet-created projects left out
    a = sections["Alpha"]
    assert a["stage"] == Stage.PILOT
    assert a["days_in_stage"] == 4  # 4 March 10:00 → end of 8 March
    assert [(m["from"], m["to"]) for m in a["stage_moves"]] == [(Stage.EVALUATION, Stage.PILOT)]
    assert a["health"] == "red" and a["progress"] == 45 and a["last_status_date"] == "2026-03-06"
    assert a["health_trend"] == ["green", "amber", "amber", "red"]
    assert a["health_direction"] == "worsening"
    assert a["spend_period"] == "75.50"
    assert a["spend_to_date"] == "175.50"
    assert a["budget_amount"] == "3650.00" and a["budget_spend"] == "175.50"
    assert a["budget_period_start"] == "2026-01-01" and a["budget_period_end"] == "2026-12-31"
    assert a["budget_used_pct"] == "4.8"
    # The 14 days 23 Feb – 8 Mar spent 50 (x = 7) and 25.50 (x = 13): the line −0.0571 + 0.8385 x, followed
    # 14 days (239.84), then held at its last value 22.58 for the other 284 days of the year; plus 175.50.
    assert a["budget_forecast"] == "6828.43"
    assert a["over_budget"] is False and a["over_tolerance"] is False
    assert a["tokens"] == {"input_tokens": 1200, "cached_input_tokens": 0, "output_tokens": 600, "total": 1800}
    assert a["unpriced_entries_period"] == 1 and a["cost_incomplete"] is True
    metrics = {m["metric"]: m for m in a["metrics"]}
    assert metrics["hallucination_rate"]["breached"] is True
    assert metrics["accuracy"]["value"] == 0.95 and metrics["accuracy"]["breached"] is False
    assert a["open_risks"] == {"low": 0, "medium": 0, "high": 1, "critical": 1}

    b = sections["Beta"]
    assert b["stage"] == Stage.EVALUATION and b["days_in_stage"] == 34
    assert b["health"] == "" and b["health_trend"] == [] and b["progress"] is None
    assert b["spend_period"] == "100.00" and b["spend_to_date"] == "100.00"
    assert b["budget_amount"] is None and b["budget_used_pct"] is None and b["budget_forecast"] is None
    assert b["cost_incomplete"] is False
    assert set(b["unmet_gates"]) == {
        "data_classification",
        "budget",
        "infrastructure",
        "risk_review",
        "quality_metrics",
    }


def test_status_report_portfolio_totals_and_needs_attention(portfolio):
    org, *_ = portfolio
    totals = build(ReportKind.STATUS, org).data["totals"]
    assert totals["projects"] == 2
    assert totals["by_stage"] == {Stage.PILOT: 1, Stage.EVALUATION: 1}
    assert totals["by_health"] == {"red": 1, "none": 1}
    assert totals["by_industry"] == {"other": 2}
    assert totals["by_provider"] == {"aws": 1, "azure": 1}
    assert totals["by_hosting"] == {"cloud": 1, "hybrid": 1}
    assert totals["spend_period"] == "175.50" and totals["spend_to_date"] == "275.50"
    assert totals["budget_amount"] == "3650.00" and totals["tokens"] == 1800 and totals["cost_incomplete"] is True
    # The portfolio-wide medium risk counts; the archived project's critical one does too (it is still open).
    assert totals["open_risks"] == {"low": 0, "medium": 1, "high": 1, "critical": 1}
    report = Report.objects.get(organization=org)
    attention = {a["name"]: a["reasons"] for a in report.data["needs_attention"]}
    # Alpha was in pilot at the week's end, short of production's gates (it has moved on since).
    assert attention == {"Alpha": ["health_red", "blocked_gates"], "Beta": ["stale", "blocked_gates"]}


def test_status_report_of_an_empty_organization_has_zero_totals():
    with time_machine.travel(BEFORE, tick=False):
        org = OrganizationFactory()
    report = build(ReportKind.STATUS, org)
    assert report.state == ReportState.READY
    assert report.data["projects"] == [] and report.data["needs_attention"] == []
    assert report.data["totals"]["spend_period"] == "0.00" and report.data["totals"]["projects"] == 0
    risk = build(ReportKind.RISK, org)
    assert risk.data["matrix"] == [[0] * 5] * 5 and risk.data["top_risks"] == []
    assert risk.data["totals"] == {"open": 0, "by_severity": {"low": 0, "medium": 0, "high": 0, "critical": 0}}


def test_project_over_budget_needs_attention():
    with time_machine.travel(BEFORE, tick=False):
        org = OrganizationFactory()
        project = ProjectFactory(organization=org, name="Spendy")
    status(project, dt.date(2026, 3, 5), "green", 50)
    BudgetFactory(project=project, period_start=dt.date(2026, 3, 1), period_end=dt.date(2026, 3, 31), amount=100)
    CostEntryFactory(project=project, date=dt.date(2026, 3, 4), amount=Decimal("120"))
    report = build(ReportKind.STATUS, org)
    section = report.data["projects"][0]
    assert section["budget_used_pct"] == "120.0"
    # 1–8 March: 120 on the 4th only; the line 20 − 1.43 x reaches 0 on the 15th: 30 more (docs/money.md).
    assert section["budget_forecast"] == "150.00"
    assert section["over_budget"] is True and section["over_tolerance"] is True  # 120 > 100 × 1.10
    assert report.data["needs_attention"] == [{"id": project.pk, "name": "Spendy", "reasons": ["over_budget"]}]


def test_budget_figures_use_the_latest_starting_of_overlapping_budgets_and_its_own_spend():
    with time_machine.travel(BEFORE, tick=False):
        org = OrganizationFactory()
        project = ProjectFactory(organization=org, name="Overlap")
    BudgetFactory(project=project, period_start=dt.date(2026, 1, 1), period_end=dt.date(2026, 12, 31), amount=1000)
    BudgetFactory(project=project, period_start=dt.date(2026, 3, 1), period_end=dt.date(2026, 3, 31), amount=310)
    # A category budget and one that has ended are not the project's overall budget at the end of the week.
    BudgetFactory(project=project, category=CostCategory.INFERENCE, period_start=dt.date(2026, 3, 2), amount=1)
    BudgetFactory(project=project, period_start=dt.date(2026, 2, 1), period_end=dt.date(2026, 2, 28), amount=5)
    for date, amount in [(dt.date(2026, 2, 20), "90"), (dt.date(2026, 3, 1), "10"), (dt.date(2026, 3, 4), "30")]:
        CostEntryFactory(project=project, date=date, amount=Decimal(amount))
    section = build(ReportKind.STATUS, org).data["projects"][0]
    assert section["budget_amount"] == "310.00"
    assert (section["budget_period_start"], section["budget_period_end"]) == ("2026-03-01", "2026-03-31")
    assert section["budget_spend"] == "40.00" and section["spend_to_date"] == "130.00"
    # 1–8 March: 10 on the 1st, 30 on the 4th; the line 9.17 − 1.19 x is below 0 from the 9th: nothing more.
    assert section["budget_forecast"] == "40.00" and section["budget_used_pct"] == "12.9"
    # The category budget is listed beside it, with its own category's spend (30 + 10 from 2 March on: 30).
    (inference,) = section["budget_categories"]
    assert inference["category"] == CostCategory.INFERENCE and inference["budget_spend"] == "30.00"
    assert inference["over_tolerance"] is True


def test_providers_and_hosting_count_projects_not_components():
    with time_machine.travel(BEFORE, tick=False):
        org = OrganizationFactory()
        one, other = ProjectFactory.create_batch(2, organization=org)
    InfrastructureComponentFactory(project=one, provider="aws", hosting=Hosting.CLOUD)
    InfrastructureComponentFactory(project=one, provider="aws", hosting=Hosting.CLOUD, name="Vector store")
    InfrastructureComponentFactory(project=one, provider="gcp", hosting=Hosting.CLOUD, name="Batch")
    InfrastructureComponentFactory(project=other, provider="aws", hosting=Hosting.LOCAL)
    totals = build(ReportKind.STATUS, org).data["totals"]
    assert totals["by_provider"] == {"aws": 2, "gcp": 1}
    assert totals["by_hosting"] == {"cloud": 1, "local": 1}


def test_report_rows_read_the_same_gates_as_the_single_project_check():
    org = OrganizationFactory()
    ready = ProjectFactory(organization=org, stage=Stage.PILOT, data_classification=DataClassification.PERSONAL)
    BudgetFactory(project=ready)
    InfrastructureComponentFactory(project=ready)
    QualityMetricFactory(project=ready)
    privacy = RiskFactory(project=ready, category=RiskCategory.DATA_PRIVACY, likelihood=5, impact=5)
    RiskAssessment.objects.create(risk=privacy, assessed_at=at(1), likelihood=5, impact=5)
    bare = ProjectFactory(organization=org, stage=Stage.EVALUATION, ai_act_tier="high")
    idle = ProjectFactory(organization=org, stage=Stage.DEVELOPMENT)
    rows = {p.pk: p for p in _project_rows(org.projects.all(), at(9, 0).date(), at(9, 0))}
    for project in (ready, bare, idle):
        following = Stage.following(project.stage)
        expected = (
            [g.key for g in project_gates(project=project, to_stage=following) if not g.passed] if following else []
        )
        assert sorted(gates_unmet(row=rows[project.pk])) == sorted(expected)
    assert "critical_risks_mitigated" in gates_unmet(row=rows[ready.pk])


def test_a_past_weeks_gates_are_those_of_the_stage_after_the_one_it_shows():
    with time_machine.travel(BEFORE, tick=False):
        org = OrganizationFactory(timezone="UTC")
        # In pilot all week, moved to production since: the week shows pilot, gated by production's gates.
        moved = ProjectFactory(organization=org, stage=Stage.PRODUCTION)
    StageTransition.objects.create(project=moved, from_stage=Stage.PILOT, to_stage=Stage.PRODUCTION, at=at(12))
    section = build(ReportKind.STATUS, org).data["projects"][0]
    expected = [g.key for g in project_gates(project=moved, to_stage=Stage.PRODUCTION) if not g.passed]
    assert section["stage"] == Stage.PILOT and expected
    assert sorted(section["unmet_gates"]) == sorted(expected)  # not retirement's (none), the stage after today's


def test_status_figures_follow_the_organization_timezone_at_the_week_boundary():
    auckland = "Pacific/Auckland"  # UTC+13 in March
    with time_machine.travel(BEFORE, tick=False):
        org = OrganizationFactory(timezone=auckland)
        project = ProjectFactory(organization=org, stage=Stage.DEVELOPMENT)
    # Sunday 23:00 local (inside) and Monday 01:00 local (outside): both on 8 March in UTC.
    StageTransition.objects.create(
        project=project, from_stage=Stage.DEVELOPMENT, to_stage=Stage.EVALUATION, at=at(8, 10)
    )
    StageTransition.objects.create(project=project, from_stage=Stage.EVALUATION, to_stage=Stage.PILOT, at=at(8, 12))
    section = build(ReportKind.STATUS, org).data["projects"][0]
    assert section["stage"] == Stage.EVALUATION
    assert [m["to"] for m in section["stage_moves"]] == [Stage.EVALUATION]
    assert section["days_in_stage"] == 0


# Risk report


@pytest.fixture
def risk_portfolio():
    with time_machine.travel(BEFORE, tick=False):
        org = OrganizationFactory(timezone="UTC")
        alpha = ProjectFactory(organization=org, name="Alpha")
        beta = ProjectFactory(organization=org, name="Beta")
    risks = {}

    def risk(name, created, likelihood, impact, project=alpha, **fields):
        with time_machine.travel(created, tick=False):
            r = RiskFactory(project=project, title=name, likelihood=likelihood, impact=impact, **fields)
            RiskAssessment.objects.create(risk=r, assessed_at=created, likelihood=likelihood, impact=impact)
        risks[name] = r
        return r

    def reassess(r, when, likelihood, impact):
        RiskAssessment.objects.create(risk=r, assessed_at=when, likelihood=likelihood, impact=impact)
        type(r).objects.filter(pk=r.pk).update(likelihood=likelihood, impact=impact)

    reassess(risk("raised", at(10, month=2), 2, 2), at(4), 4, 3)  # 4 → 12 in the week: escalated
    reassess(risk("born and raised", at(3), 2, 3), at(5), 3, 3)  # 6 → 9, both in the week: escalated
    reassess(risk("lowered", at(10, month=2), 4, 4), at(4), 2, 2)  # 16 → 4: not escalated
    reassess(risk("raised later", at(10, month=2), 1, 2), at(10), 5, 5)  # after the week: not escalated
    risk("critical", at(10, month=2), 5, 5, project=beta, category=RiskCategory.SECURITY)
    risk("overdue", at(10, month=2), 3, 1, next_review_date=dt.date(2026, 3, 8))
    risk("due later", at(10, month=2), 3, 1, next_review_date=dt.date(2026, 3, 9))
    risk("closed in week", at(10, month=2), 3, 3, status=RiskStatus.CLOSED, closed_at=at(6))
    risk("closed before", at(10, month=2), 3, 3, status=RiskStatus.CLOSED, closed_at=at(1))
    with time_machine.travel(at(7), tick=False):
        accepted = risk("accepted", at(10, month=2), 2, 4)
        type(accepted).objects.filter(pk=accepted.pk).update(
            status=RiskStatus.ACCEPTED, acceptance_justification="Low exposure", accepted_at=at(7), updated_at=at(7)
        )
    risk("signal raised", at(5), 4, 4, source=RiskSource.SIGNAL, signal_rule="stale_status", signal_key="stale:1")
    risk(
        "signal cleared",
        at(10, month=2),
        3,
        2,
        source=RiskSource.SIGNAL,
        signal_rule="unpriced_usage",
        signal_key="unpriced:1",
        status=RiskStatus.CLOSED,
        closed_at=at(6),
    )
    risk("next week", at(9, 1), 5, 5)
    return org, risks


def test_risk_report_matrix_and_totals_count_active_risks_at_period_end(risk_portfolio):
    org, _ = risk_portfolio
    data = build(ReportKind.RISK, org).data
    # Active at the end of the week: raised 4×3, born and raised 3×3, lowered 2×2, raised later 5×5 (now),
    # critical 5×5, overdue 3×1, due later 3×1, signal raised 4×4. Accepted and closed ones are not active.
    matrix = data["matrix"]
    assert matrix[3][2] == 1 and matrix[2][2] == 1 and matrix[1][1] == 1 and matrix[4][4] == 2
    assert matrix[2][0] == 2 and matrix[3][3] == 1
    assert sum(map(sum, matrix)) == 8
    assert data["totals"]["by_severity"] == {"low": 3, "medium": 1, "high": 2, "critical": 2}
    assert data["by_category"] == {"reliability": 7, "security": 1}
    assert [(p["project"], p["open"], p["max_score"]) for p in data["by_project"]] == [
        ("Alpha", 7, 25),
        ("Beta", 1, 25),
    ]
    # By score, then impact, then age.
    assert [r["title"] for r in data["top_risks"]] == [
        "raised later",
        "critical",
        "signal raised",
        "raised",
        "born and raised",
        "lowered",
        "overdue",
        "due later",
    ]


def test_risk_report_lists_the_changes_of_the_period(risk_portfolio):
    org, _ = risk_portfolio
    data = build(ReportKind.RISK, org).data

    def titles(key):
        return sorted(r["title"] for r in data[key]["items"])

    assert titles("new") == ["born and raised", "signal raised"] and data["new"]["count"] == 2
    assert titles("escalated") == ["born and raised", "raised"]
    escalated = {r["title"]: (r["score_before"], r["score_after"]) for r in data["escalated"]["items"]}
    assert escalated == {"raised": (4, 12), "born and raised": (6, 9)}
    assert titles("closed") == ["closed in week", "signal cleared"]
    assert titles("accepted") == ["accepted"]
    assert titles("overdue_reviews") == ["overdue"]
    assert titles("signals_raised") == ["signal raised"]
    assert titles("signals_cleared") == ["signal cleared"]


def test_both_reports_read_an_overdue_review_by_the_same_rule(risk_portfolio):
    """A review due on the period's last day and not done is overdue in the status report's needs
    attention and in the risk report's list alike; one due the day after is in neither."""
    org, risks = risk_portfolio
    risk_list = [r["title"] for r in build(ReportKind.RISK, org).data["overdue_reviews"]["items"]]
    attention = {row["name"]: row["reasons"] for row in build(ReportKind.STATUS, org).data["needs_attention"]}
    assert risk_list == ["overdue"]
    assert "overdue_reviews" in attention["Alpha"] and "overdue_reviews" not in attention.get("Beta", [])
    # The next week's reports (their statements compiled once, each build binding its own period) see both.
    next_week = (dt.date(2026, 3, 9), dt.date(2026, 3, 15))
    items = build(ReportKind.RISK, org, period=next_week).data["overdue_reviews"]["items"]
    assert [r["title"] for r in items] == ["overdue", "due later"]

    type(risks["overdue"]).objects.filter(pk=risks["overdue"].pk).update(next_review_date=dt.date(2026, 3, 9))
    Report.objects.all().delete()
    assert build(ReportKind.RISK, org).data["overdue_reviews"]["items"] == []
    attention = {row["name"]: row["reasons"] for row in build(ReportKind.STATUS, org).data["needs_attention"]}
    assert "overdue_reviews" not in attention.get("Alpha", [])


def test_accepted_list_goes_by_the_time_of_acceptance_not_the_last_change():
    with time_machine.travel(BEFORE, tick=False):
        org = OrganizationFactory(timezone="UTC")
        project = ProjectFactory(organization=org)
        manager = MembershipFactory(organization=org, role=Role.MANAGER).user
        earlier = RiskFactory(project=project, title="accepted earlier")
        during = RiskFactory(project=project, title="accepted in the week")
        risk_accept(risk=earlier, by=manager, justification="Low exposure", expires=dt.date(2026, 9, 1))
    with time_machine.travel(at(5), tick=False):
        risk_accept(risk=during, by=manager, justification="Vendor covers it", expires=dt.date(2026, 9, 1))
        # Edited in the week, accepted before it: not an acceptance of the week.
        risk_update(risk=earlier, by=manager, description="Reworded")
    with time_machine.travel(at(10), tick=False):
        risk_update(risk=during, by=manager, description="Edited after the week")
    earlier.refresh_from_db()
    during.refresh_from_db()
    assert earlier.accepted_at == BEFORE and during.accepted_at == at(5)
    accepted = build(ReportKind.RISK, org).data["accepted"]
    assert [r["title"] for r in accepted["items"]] == ["accepted in the week"] and accepted["count"] == 1


def test_risk_report_week_boundary_follows_the_organization_timezone():
    with time_machine.travel(BEFORE, tick=False):
        org = OrganizationFactory(timezone="Pacific/Auckland")
        project = ProjectFactory(organization=org)
    with time_machine.travel(at(1, 12), tick=False):  # Monday 2 March 01:00 in Auckland: inside
        RiskFactory(project=project, title="inside")
    with time_machine.travel(at(8, 12), tick=False):  # Monday 9 March 01:00 in Auckland: outside
        RiskFactory(project=project, title="outside")
    data = build(ReportKind.RISK, org).data
    assert [r["title"] for r in data["new"]["items"]] == ["inside"]


def test_report_lists_are_capped_but_counts_stay_exact(settings, risk_portfolio):
    settings.REPORT_LIST_LIMIT = 1
    org, _ = risk_portfolio
    data = build(ReportKind.RISK, org).data
    assert data["new"]["count"] == 2 and len(data["new"]["items"]) == 1


def test_each_capped_list_keeps_its_own_first_rows_in_its_own_order(settings, risk_portfolio):
    # Each list is ranked and counted on its own rows, whatever the lists' limit does to the others.
    org, _ = risk_portfolio
    full = build(ReportKind.RISK, org).data
    assert [r["title"] for r in full["new"]["items"]] == ["signal raised", "born and raised"]  # by score
    assert [r["title"] for r in full["closed"]["items"]] == ["closed in week", "signal cleared"]  # by age
    Report.objects.filter(organization=org).delete()
    settings.REPORT_LIST_LIMIT = 1
    capped = build(ReportKind.RISK, org).data
    assert capped["top_risks"] == full["top_risks"]  # ten, whatever the lists' limit
    for key in ("new", "closed", "accepted", "overdue_reviews", "signals_raised", "signals_cleared", "escalated"):
        assert capped[key] == {"count": full[key]["count"], "items": full[key]["items"][:1]}, key


# Building, states, digest


def test_build_of_a_ready_report_changes_nothing(portfolio):
    org, *_ = portfolio
    report = build(ReportKind.STATUS, org)
    generated = report.generated_at
    assert report_build(report_id=report.pk).generated_at == generated
    report.refresh_from_db()
    assert report.attempts == 1


def test_build_of_a_report_another_worker_holds_is_left_to_it(portfolio):
    org, *_ = portfolio
    report = ReportFactory(organization=org, kind=ReportKind.STATUS, period_start=WEEK[0], period_end=WEEK[1])
    # Another session holds the report's build lock (a live worker building it).
    with psycopg.connect(db_url().replace("postgres://", "postgresql://"), autocommit=True) as worker:
        worker.execute("SELECT pg_advisory_lock(%s)", [LOCK_NAMESPACE | report.pk])
        assert report_build(report_id=report.pk) is None
        worker.execute("SELECT pg_advisory_unlock(%s)", [LOCK_NAMESPACE | report.pk])
    report.refresh_from_db()
    assert (report.state, report.attempts, report.started_at) == (ReportState.PENDING, 0, None)
    # The lock released, the build goes ahead and leaves no lock behind.
    assert report_build(report_id=report.pk).state == ReportState.READY
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        assert cursor.fetchone()[0] == 0


def _jit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        return cursor.fetchone()[0]


def test_build_runs_without_jit_and_gives_the_session_its_setting_back(portfolio, monkeypatch):
    org, *_ = portfolio
    report = ReportFactory(organization=org, kind=ReportKind.STATUS, period_start=WEEK[0], period_end=WEEK[1])
    builder, during = BUILDERS[ReportKind.STATUS], []

    def build_and_look(**kwargs):
        during.append(_jit())
        return builder(**kwargs)

    monkeypatch.setitem(BUILDERS, ReportKind.STATUS, build_and_look)
    with connection.cursor() as cursor:
        cursor.execute("SET jit = on")  # a known setting to give back, whatever the server is configured with
    assert report_build(report_id=report.pk).state == ReportState.READY
    assert (during, _jit()) == (["off"], "on")


def test_failed_build_records_the_error_and_can_be_requested_again():
    org = OrganizationFactory()
    manager = MembershipFactory(organization=org, role=Role.MANAGER).user
    report = ReportFactory(organization=org)
    type(org).objects.filter(pk=org.pk).update(timezone="Mars/Olympus_Mons")  # bypasses validation
    with pytest.raises(Exception, match="Mars"):
        report_build(report_id=report.pk)
    report.refresh_from_db()
    assert report.state == ReportState.FAILED and "Mars/Olympus_Mons" in report.error and report.data == {}
    org.refresh_from_db()
    again = report_request(
        organization=org, kind=report.kind, period_start=report.period_start, period_end=report.period_end, by=manager
    )
    assert again.pk == report.pk and again.state == ReportState.PENDING and again.error == ""


def test_report_request_enqueues_the_build_after_commit(django_capture_on_commit_callbacks):
    org = OrganizationFactory()
    manager = MembershipFactory(organization=org, role=Role.MANAGER).user
    with django_capture_on_commit_callbacks() as callbacks:
        report = report_request(organization=org, kind="status", period_start=WEEK[0], period_end=WEEK[1], by=manager)
    assert report.state == ReportState.PENDING and len(callbacks) == 1
    with django_capture_on_commit_callbacks() as callbacks:
        same = report_request(organization=org, kind="status", period_start=WEEK[0], period_end=WEEK[1], by=manager)
    assert same.pk == report.pk and Report.objects.count() == 1


def test_report_request_refuses_non_managers_and_bad_periods():
    org = OrganizationFactory()
    contributor = MembershipFactory(organization=org, role=Role.CONTRIBUTOR).user
    manager = MembershipFactory(organization=org, role=Role.MANAGER).user
    with pytest.raises(NotPermitted):
        report_request(organization=org, kind="status", period_start=WEEK[0], period_end=WEEK[1], by=contributor)
    with pytest.raises(ValidationFailed) as exc:
        report_request(organization=org, kind="weather", period_start=WEEK[1], period_end=WEEK[0], by=manager)
    assert set(exc.value.errors) == {"kind", "period_end"}
    assert not Report.objects.exists()


def test_digest_goes_once_to_managers_and_admins_with_text_and_html(portfolio):
    org, *_ = portfolio
    for role in (Role.MANAGER, Role.ADMIN, Role.CONTRIBUTOR, Role.VIEWER):
        MembershipFactory(organization=org, role=role, user=UserFactory(username=f"{role}-person"))
    MembershipFactory(organization=org, role=Role.MANAGER, user=UserFactory(username="no-mail", email=""))
    report = build(ReportKind.STATUS, org)
    assert report_digest_send(report_id=report.pk) == MailCounts(sent=2)
    assert report_digest_send(report_id=report.pk) == MailCounts()
    assert sorted(m.to[0] for m in mail.outbox) == ["admin-person@example.com", "manager-person@example.com"]
    message = mail.outbox[0]
    assert "Spend in the period: €175.50 (incomplete: unpriced usage)" in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and "€175.50" in html
    report.refresh_from_db()
    assert report.digest_sent_at is not None


def test_digest_is_not_sent_for_a_report_that_is_not_ready():
    org = OrganizationFactory()
    MembershipFactory(organization=org, role=Role.MANAGER)
    report = ReportFactory(organization=org)
    assert report_digest_send(report_id=report.pk) == MailCounts()
    report.refresh_from_db()
    assert mail.outbox == [] and report.digest_sent_at is None


# Exports


def test_markdown_and_csv_exports_carry_the_figures(portfolio, risk_portfolio):
    org, *_ = portfolio
    status_report = build(ReportKind.STATUS, org)
    markdown = report_markdown(status_report)
    assert markdown.startswith("# Status summary: ") and "| Alpha | Pilot |" in markdown
    assert "- Beta: No recent status, Gates of the next stage not met" in markdown
    rows = list(csv.DictReader(io.StringIO(report_csv(status_report))))
    assert [(r["name"], r["spend_period"], r["budget_used_pct"]) for r in rows] == [
        ("Alpha", "75.50", "4.8"),
        ("Beta", "100.00", ""),
    ]
    assert rows[0]["breached_metrics"] == "Hallucination rate"

    risk_org, _ = risk_portfolio
    risk_report = build(ReportKind.RISK, risk_org)
    assert "## Escalated (score went up) (2)" in report_markdown(risk_report)
    sections = [row[0] for row in csv.reader(io.StringIO(report_csv(risk_report)))][1:]
    assert sections.count("new") == 2 and sections.count("overdue_reviews") == 1


# Bounded queries


def _seed(org, n: int) -> None:
    for i in range(n):
        project = ProjectFactory(organization=org, stage=Stage.PILOT if i % 2 else Stage.EVALUATION)
        BudgetFactory(project=project, period_start=dt.date(2026, 1, 1), period_end=dt.date(2026, 12, 31))
        CostEntryFactory.create_batch(3, project=project, date=dt.date(2026, 3, 4))
        status(project, dt.date(2026, 3, 3), "amber", 30)
        QualityMetricFactory(project=project, date=dt.date(2026, 3, 3))
        InfrastructureComponentFactory(project=project)
        RiskFactory.create_batch(2, project=project)
        StageTransition.objects.create(project=project, from_stage=Stage.IDEATION, to_stage=project.stage, at=at(4))


@pytest.mark.parametrize("kind", [ReportKind.STATUS, ReportKind.RISK])
def test_queries_per_report_do_not_grow_with_the_portfolio(kind, django_assert_max_num_queries):
    counts = []
    for n in (2, 20):
        with time_machine.travel(BEFORE, tick=False):
            org = OrganizationFactory()
            _seed(org, n)
        report = ReportFactory(organization=org, kind=kind, period_start=WEEK[0], period_end=WEEK[1])
        # A bound: 18 at most, plus the two progress writes of steps slower than PROGRESS_WRITE_INTERVAL on a loaded
        # machine; ops/tests/test_perf_reports.py pins the exact count.
        with django_assert_max_num_queries(20), CaptureQueriesContext(connection) as queries:
            built = report_build(report_id=report.pk)
        assert built.state == ReportState.READY
        counts.append(len(queries))
    assert counts[0] == counts[1]
