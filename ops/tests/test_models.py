"""Database constraints of the ops app: bad rows written straight through the ORM are refused."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from ops.models import Budget, CostEntry, CostSource, QualityMetric, Report, Risk, RiskSource, RiskStatus, Severity
from ops.tests.factories import (
    BudgetFactory,
    CostEntryFactory,
    ModelPriceFactory,
    QualityMetricFactory,
    ReportFactory,
    RiskAssessmentFactory,
    RiskFactory,
)
from projects.tests.factories import OrganizationFactory, ProjectFactory

pytestmark = pytest.mark.django_db


def refused(build) -> None:
    """Assert the database refuses the write, leaving the test's transaction usable."""
    with pytest.raises(IntegrityError), transaction.atomic():
        build()


# Costs and budgets


def test_cost_amount_not_negative():
    refused(lambda: CostEntryFactory(amount=Decimal("-0.01")))

    assert not CostEntry.objects.exists()


def test_cost_without_amount_only_for_unpriced_usage():
    refused(lambda: CostEntryFactory(amount=None, source=CostSource.MANUAL))

    assert CostEntryFactory(amount=None, source=CostSource.USAGE).is_priced is False


@pytest.mark.parametrize("field", ["gpu_hours", "energy_kwh"])
def test_cost_measures_not_negative(field):
    refused(lambda: CostEntryFactory(**{field: Decimal("-1")}))

    assert not CostEntry.objects.exists()


def test_cost_external_id_unique_per_project():
    project = ProjectFactory()
    CostEntryFactory(project=project, external_id="inv-1")

    refused(lambda: CostEntryFactory(project=project, external_id="inv-1"))

    CostEntryFactory(project=ProjectFactory(organization=project.organization), external_id="inv-1")
    assert CostEntry.objects.filter(external_id="inv-1").count() == 2


def test_cost_empty_external_ids_may_repeat():
    project = ProjectFactory()
    CostEntryFactory.create_batch(3, project=project, external_id="")

    assert CostEntry.objects.filter(project=project).count() == 3


def test_budget_amount_not_negative():
    refused(lambda: BudgetFactory(amount=Decimal("-1")))

    assert not Budget.objects.exists()


@pytest.mark.parametrize("period_end", [dt.date(2026, 1, 1), dt.date(2025, 12, 31)])
def test_budget_period_ends_after_it_starts(period_end):
    refused(lambda: BudgetFactory(period_start=dt.date(2026, 1, 1), period_end=period_end))

    assert not Budget.objects.exists()


def test_budget_tolerance_not_negative():
    refused(lambda: BudgetFactory(tolerance_pct=Decimal("-5")))

    assert not Budget.objects.exists()


def test_model_price_not_negative_and_one_per_model_and_day():
    org = OrganizationFactory()
    refused(lambda: ModelPriceFactory(organization=org, input_per_mtok=Decimal("-1")))
    refused(lambda: ModelPriceFactory(organization=org, cached_input_per_mtok=Decimal("-1")))
    ModelPriceFactory(organization=org, valid_from=dt.date(2026, 1, 1))

    refused(lambda: ModelPriceFactory(organization=org, valid_from=dt.date(2026, 1, 1)))

    ModelPriceFactory(organization=OrganizationFactory(), valid_from=dt.date(2026, 1, 1))


def test_custom_quality_metric_needs_a_name():
    refused(lambda: QualityMetricFactory(metric="custom", name=""))

    assert not QualityMetric.objects.exists()


# Risks


@pytest.mark.parametrize(("likelihood", "impact"), [(0, 3), (6, 3), (3, 0), (3, 6)])
def test_risk_likelihood_and_impact_between_1_and_5(likelihood, impact):
    refused(lambda: RiskFactory(likelihood=likelihood, impact=impact))

    assert not Risk.objects.exists()


@pytest.mark.parametrize(("field", "value"), [("residual_likelihood", 0), ("residual_impact", 6)])
def test_risk_residual_rating_between_1_and_5(field, value):
    refused(lambda: RiskFactory(**{field: value}))

    assert not Risk.objects.exists()


@pytest.mark.parametrize(("likelihood", "impact"), [(0, 3), (3, 6)])
def test_assessment_likelihood_and_impact_between_1_and_5(likelihood, impact):
    risk = RiskFactory()

    refused(lambda: RiskAssessmentFactory(risk=risk, likelihood=likelihood, impact=impact))

    assert not risk.assessments.exists()


@pytest.mark.parametrize(
    ("likelihood", "impact", "score", "severity"),
    [(1, 4, 4, Severity.LOW), (1, 5, 5, Severity.MEDIUM), (2, 5, 10, Severity.HIGH), (4, 5, 20, Severity.CRITICAL)],
)
def test_risk_score_and_severity_generated_for_rows_written_directly(likelihood, impact, score, severity):
    risk = RiskFactory(likelihood=likelihood, impact=impact)

    Risk.objects.filter(pk=risk.pk).update(likelihood=impact, impact=likelihood)

    assert Risk.objects.filter(pk=risk.pk, score=score, severity=severity).exists()


@pytest.mark.parametrize(("field", "value"), [("status", "snoozed"), ("category", "weather")])
def test_risk_status_and_category_must_be_known(field, value):
    refused(lambda: RiskFactory(**{field: value}))

    assert not Risk.objects.exists()


def test_accepted_risk_needs_a_justification():
    refused(lambda: RiskFactory(status=RiskStatus.ACCEPTED, acceptance_justification=""))

    assert RiskFactory(status=RiskStatus.ACCEPTED, acceptance_justification="Pilot only").pk is not None


def test_signal_key_only_and_always_on_signal_risks():
    refused(lambda: RiskFactory(source=RiskSource.MANUAL, signal_key="over_budget:1"))
    refused(lambda: RiskFactory(source=RiskSource.SIGNAL, signal_key=""))

    assert not Risk.objects.exists()


def test_two_active_signal_risks_with_the_same_key_refused():
    project = ProjectFactory()
    signal = {"project": project, "source": RiskSource.SIGNAL, "signal_rule": "over_budget", "signal_key": "k:1"}
    RiskFactory(**signal)

    refused(lambda: RiskFactory(**signal, status=RiskStatus.MITIGATING))

    assert Risk.objects.filter(signal_key="k:1").count() == 1


def test_a_closed_signal_risk_does_not_block_a_new_active_one():
    project = ProjectFactory()
    signal = {"project": project, "source": RiskSource.SIGNAL, "signal_rule": "over_budget", "signal_key": "k:1"}
    RiskFactory(**signal, status=RiskStatus.CLOSED)
    RiskFactory(**signal, status=RiskStatus.CLOSED)
    RiskFactory(**signal)

    # The same key in another organization is another subject.
    RiskFactory(**(signal | {"project": ProjectFactory()}))
    assert Risk.objects.filter(signal_key="k:1").count() == 4


# Reports


def test_two_organization_reports_for_the_same_period_refused():
    org = OrganizationFactory()
    ReportFactory(organization=org)

    refused(lambda: ReportFactory(organization=org))

    assert Report.objects.filter(organization=org).count() == 1


def test_two_project_reports_for_the_same_period_refused():
    project = ProjectFactory()
    ReportFactory(organization=project.organization, project=project)

    refused(lambda: ReportFactory(organization=project.organization, project=project))

    assert Report.objects.filter(project=project).count() == 1


def test_organization_and_project_reports_of_a_period_coexist():
    project = ProjectFactory()
    ReportFactory(organization=project.organization)
    ReportFactory(organization=project.organization, project=project)
    ReportFactory(organization=project.organization, kind="risk")
    ReportFactory(organization=project.organization, period_start=dt.date(2026, 3, 9), period_end=dt.date(2026, 3, 15))

    assert Report.objects.filter(organization=project.organization).count() == 4


def test_report_period_not_ending_before_it_starts():
    refused(lambda: ReportFactory(period_start=dt.date(2026, 3, 8), period_end=dt.date(2026, 3, 2)))

    assert not Report.objects.exists()
