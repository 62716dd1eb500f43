"""Risk signals: each rule raises a risk, updates it while the condition holds, closes it when it clears."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from ops.models import (
    CostSource,
    Environment,
    MetricKind,
    Risk,
    RiskAssessment,
    RiskCategory,
    RiskSource,
    RiskStatus,
)
from ops.services import risk_signals_evaluate
from ops.tests.factories import (
    BudgetFactory,
    CostEntryFactory,
    InfrastructureComponentFactory,
    ModelPriceFactory,
    QualityMetricFactory,
    RiskFactory,
)
from projects.models import DataClassification, Stage
from projects.tests.factories import MembershipFactory, OrganizationFactory, ProjectFactory
from tests.concurrency import at_once

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 3, 20)


def evaluate(org, today=TODAY):
    return risk_signals_evaluate(organization=org, today=today)


def signal_risks(org, **filters):
    return Risk.objects.filter(organization=org, source=RiskSource.SIGNAL, **filters)


@pytest.fixture
def org():
    return OrganizationFactory()


@pytest.fixture
def project(org):
    # Fresh status, so only the rule under test fires.
    return ProjectFactory(organization=org, name="Chatbot", last_status_date=TODAY, stage=Stage.DEVELOPMENT)


def test_budget_overrun_is_raised_updated_and_cleared(org, project):
    lead = MembershipFactory(organization=org).user
    project.technical_lead = lead
    project.save()
    budget = BudgetFactory(
        project=project, period_start=dt.date(2026, 3, 1), period_end=dt.date(2026, 3, 31), amount=100
    )
    cost = CostEntryFactory(project=project, date=dt.date(2026, 3, 10), amount=Decimal("111"))  # over 100 + 10 %
    outcome = evaluate(org)
    key = f"budget_overrun:budget:{budget.pk}"
    assert outcome.raised == [key]
    risk = signal_risks(org).get()
    assert (risk.signal_rule, risk.signal_key, risk.project, risk.organization) == ("budget_overrun", key, project, org)
    assert (risk.category, risk.status, risk.owner, risk.likelihood, risk.impact) == (
        RiskCategory.COST,
        RiskStatus.OPEN,
        lead,
        5,
        3,
    )
    assert "111.00" in risk.description and RiskAssessment.objects.filter(risk=risk).count() == 1

    assert evaluate(org).raised == []  # still over, same figures: nothing new, nothing changed
    cost.amount = Decimal("300")  # more than twice the limit: impact goes up, recorded as a reassessment
    cost.save()
    assert evaluate(org).updated == [key]
    risk.refresh_from_db()
    assert risk.impact == 4 and "300.00" in risk.description
    assert RiskAssessment.objects.filter(risk=risk).count() == 2

    cost.amount = Decimal("50")
    cost.save()
    assert evaluate(org).closed == [key]
    risk.refresh_from_db()
    assert risk.status == RiskStatus.CLOSED and risk.closed_at is not None
    assert signal_risks(org).count() == 1


def test_budget_forecast_overrun_needs_enough_history(org, project, settings):
    settings.RISK_SIGNAL_FORECAST_MIN_DAYS = 14
    budget = BudgetFactory(
        project=project, period_start=dt.date(2026, 3, 1), period_end=dt.date(2026, 3, 31), amount=100
    )
    CostEntryFactory(project=project, date=dt.date(2026, 3, 2), amount=Decimal("50"))
    assert evaluate(org, dt.date(2026, 3, 10)).raised == []  # 10 days of history: too early to forecast
    # 50 in 20 days → 77.5 by the 31st: fine. Then 90 in 20 days → 139.5 > 110: forecast overrun.
    assert evaluate(org).raised == []
    CostEntryFactory(project=project, date=dt.date(2026, 3, 15), amount=Decimal("40"))
    assert evaluate(org).raised == [f"budget_forecast_overrun:budget:{budget.pk}"]
    CostEntryFactory(project=project, date=dt.date(2026, 3, 16), amount=Decimal("30"))  # 120: now an actual overrun
    outcome = evaluate(org)
    assert outcome.raised == [f"budget_overrun:budget:{budget.pk}"]
    assert outcome.closed == [f"budget_forecast_overrun:budget:{budget.pk}"]


def test_metric_breach_follows_the_latest_value(org, project):
    def measure(day, value):
        QualityMetricFactory(
            project=project,
            metric=MetricKind.HALLUCINATION_RATE,
            value=value,
            threshold=0.05,
            higher_is_better=False,
            date=dt.date(2026, 3, day),
        )

    measure(1, 0.03)
    assert evaluate(org).raised == []
    measure(10, 0.09)
    key = f"metric_breach:project:{project.pk}:hallucination_rate"
    assert evaluate(org).raised == [key]
    assert signal_risks(org).get().category == RiskCategory.RELIABILITY
    measure(12, 0.12)
    assert evaluate(org).updated == [key]
    measure(15, 0.04)
    assert evaluate(org).closed == [key]


def test_stale_status_is_raised_and_cleared_by_a_new_status(org, project, settings):
    settings.RISK_SIGNAL_STALE_STATUS_DAYS = 14
    project.last_status_date = TODAY - dt.timedelta(days=15)
    project.save()
    assert evaluate(org).raised == [f"stale_status:project:{project.pk}"]
    project.last_status_date = TODAY - dt.timedelta(days=20)
    project.save()
    assert evaluate(org).updated == [f"stale_status:project:{project.pk}"]
    project.last_status_date = TODAY
    project.save()
    assert evaluate(org).closed == [f"stale_status:project:{project.pk}"]


def test_review_overdue_groups_a_projects_overdue_reviews(org, project):
    first = RiskFactory(project=project, next_review_date=TODAY - dt.timedelta(days=3))
    portfolio = RiskFactory(project=None, organization=org, next_review_date=TODAY - dt.timedelta(days=1))
    RiskFactory(project=project, next_review_date=TODAY)  # due today: not overdue yet
    outcome = evaluate(org)
    assert sorted(outcome.raised) == [f"review_overdue:organization:{org.pk}", f"review_overdue:project:{project.pk}"]
    assert signal_risks(org, project=None).get().signal_rule == "review_overdue"
    RiskFactory(project=project, next_review_date=TODAY - dt.timedelta(days=2))
    assert evaluate(org).updated == [f"review_overdue:project:{project.pk}"]
    Risk.objects.filter(pk__in=[first.pk, portfolio.pk]).update(next_review_date=TODAY + dt.timedelta(days=30))
    assert evaluate(org).closed == [f"review_overdue:organization:{org.pk}"]


def test_privacy_unassessed_for_personal_data_in_production(org, project):
    project.stage, project.data_classification = Stage.PRODUCTION, DataClassification.PERSONAL
    project.save()
    key = f"privacy_unassessed:project:{project.pk}"
    assert evaluate(org).raised == [key]
    # The signal's own privacy risk does not count as the assessment it asks for.
    assert evaluate(org).raised == [] and signal_risks(org, status=RiskStatus.OPEN).count() == 1
    privacy = RiskFactory(project=project, category=RiskCategory.DATA_PRIVACY)
    RiskAssessment.objects.create(risk=privacy, assessed_at=timezone.now(), likelihood=3, impact=3)
    assert evaluate(org).closed == [key]


def test_stage_stuck_outside_production(org, project, settings):
    settings.RISK_SIGNAL_STAGE_MAX_DAYS = 30
    project.stage_entered_at = timezone.now() - dt.timedelta(days=31)
    project.save()
    key = f"stage_stuck:project:{project.pk}"
    assert evaluate(org).raised == [key]
    project.stage_entered_at = timezone.now() - dt.timedelta(days=45)
    project.save()
    assert evaluate(org).updated == [key]
    project.stage, project.stage_entered_at = Stage.EVALUATION, timezone.now()
    project.save()
    assert evaluate(org).closed == [key]


def test_model_deprecation_of_a_production_model(org, project, settings):
    settings.RISK_SIGNAL_DEPRECATION_DAYS = 30
    InfrastructureComponentFactory(project=project, environment=Environment.PRODUCTION, model_name="gpt-4o")
    price = ModelPriceFactory(organization=org, model="gpt-4o", deprecation_date=TODAY + dt.timedelta(days=60))
    assert evaluate(org).raised == []
    price.deprecation_date = TODAY + dt.timedelta(days=20)
    price.save()
    key = f"model_deprecation:project:{project.pk}:gpt-4o"
    assert evaluate(org).raised == [key]
    assert signal_risks(org).get().likelihood == 3
    price.deprecation_date = TODAY - dt.timedelta(days=1)
    price.save()
    assert evaluate(org).updated == [key]
    assert signal_risks(org).get().likelihood == 4
    price.deprecation_date = None
    price.save()
    assert evaluate(org).closed == [key]


def test_unpriced_usage_in_the_lookback_window(org, project, settings):
    settings.RISK_SIGNAL_UNPRICED_LOOKBACK_DAYS = 30
    entry = CostEntryFactory(
        project=project, date=TODAY, amount=None, source=CostSource.USAGE, input_tokens=1000, output_tokens=10
    )
    key = f"unpriced_usage:project:{project.pk}"
    assert evaluate(org).raised == [key]
    assert "1010 tokens" in signal_risks(org).get().description
    CostEntryFactory(project=project, date=TODAY, amount=None, source=CostSource.USAGE, input_tokens=5)
    assert evaluate(org).updated == [key]
    entry.project.cost_entries.filter(amount__isnull=True).update(amount=Decimal("1.00"), source=CostSource.USAGE)
    assert evaluate(org).closed == [key]


def test_provider_concentration_is_portfolio_wide(org, project, settings):
    settings.RISK_SIGNAL_PROVIDER_SHARE_PCT = 70
    other = ProjectFactory(organization=org, last_status_date=TODAY, stage=Stage.DEVELOPMENT)
    InfrastructureComponentFactory(project=project, provider="aws")
    InfrastructureComponentFactory(project=other, provider="azure")
    CostEntryFactory(project=project, date=TODAY, amount=Decimal("80"))
    CostEntryFactory(project=other, date=TODAY, amount=Decimal("20"))
    key = "provider_concentration:provider:aws"
    assert evaluate(org).raised == [key]
    risk = signal_risks(org).get()
    assert risk.project is None and risk.organization == org and risk.category == RiskCategory.VENDOR_LOCK_IN
    CostEntryFactory(project=other, date=TODAY, amount=Decimal("20"))  # aws 80 of 120: 67 %
    assert evaluate(org).closed == [key]


def test_an_accepted_signal_risk_is_not_raised_again_until_the_acceptance_expires(org, project):
    project.last_status_date = TODAY - dt.timedelta(days=100)
    project.save()
    key = f"stale_status:project:{project.pk}"
    assert evaluate(org).raised == [key]
    expires = TODAY + dt.timedelta(days=30)
    signal_risks(org).update(
        status=RiskStatus.ACCEPTED, acceptance_justification="Frozen project", acceptance_expires=expires
    )
    assert evaluate(org, expires).raised == []
    assert evaluate(org, expires + dt.timedelta(days=1)).raised == [key]


def test_signals_of_another_organization_are_untouched(org, project):
    other = OrganizationFactory()
    foreign = RiskFactory(
        project=ProjectFactory(organization=other),
        source=RiskSource.SIGNAL,
        signal_rule="stale_status",
        signal_key="stale_status:project:0",
    )
    assert evaluate(org).closed == []
    foreign.refresh_from_db()
    assert foreign.status == RiskStatus.OPEN


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_evaluations_never_duplicate_a_signal_risk():
    with time_machine.travel(dt.datetime(2026, 1, 1, tzinfo=dt.UTC)):
        org = OrganizationFactory()
        projects = [ProjectFactory(organization=org, stage=Stage.DEVELOPMENT) for _ in range(5)]
    results = at_once(lambda: evaluate(org), lambda: evaluate(org))
    assert not [r for r in results if isinstance(r, Exception)]
    keys = list(signal_risks(org).values_list("signal_key", flat=True))
    assert sorted(keys) == sorted(
        f"{rule}:project:{p.pk}" for p in projects for rule in ("stale_status", "stage_stuck")
    )
