"""Forecasts and the spend anomaly signal (issue 17, point 3), against hand-computed series."""

import datetime as dt
import math
from decimal import Decimal

import pytest
import time_machine

from ops.models import Risk, RiskStatus
from ops.selectors.portfolio import T_90, spend_forecast
from ops.services.signals import risk_signals_evaluate, spend_anomaly_bound
from ops.tests.factories import BudgetFactory, CostEntryFactory
from projects.models import Role
from projects.tests.api_support import as_role
from projects.tests.factories import OrganizationFactory, ProjectFactory

D = Decimal
AS_OF = dt.date(2026, 3, 14)  # the 14th day of March: 17 days left
MARCH_END = dt.date(2026, 3, 31)


def forecast(daily, amount="100000"):
    daily = [D(y) for y in daily]
    return spend_forecast(spend=sum(daily), amount=D(amount), daily=daily, as_of=AS_OF, period_end=MARCH_END)


def band(daily, intercept, slope, days_left=17):
    """The half-width by the documented rule, computed apart: t(n − 2) × residual sd × √(days left)."""
    n = len(daily)
    squares = sum((y - intercept - slope * x) ** 2 for x, y in enumerate(daily))
    return float(T_90[n - 2]) * math.sqrt(squares / (n - 2)) * math.sqrt(days_left)


def test_a_flat_series_carries_on_at_its_rate_with_no_band_and_runs_out_on_the_day_it_passes():
    result = forecast([100] * 14, amount="2500")
    # 1,400 spent; 100 a day for 17 more days.
    assert (result.expected, result.low, result.high) == (D("3100.00"),) * 3
    # 1,400 + 100 × 12 = 2,600 is the first total over 2,500: 12 days after 14 March.
    assert result.runs_out_on == dt.date(2026, 3, 26)


def test_a_step_follows_the_line_through_the_window():
    daily = [0] * 7 + [100] * 7
    result = forecast(daily)
    # Least squares on x = 0…13: slope 2450 / 227.5 = 10.7692…, intercept 50 − slope × 6.5 = −20.
    # The line for 14 days, x = 14…27: 14 × (−20) + slope × 41 × 14 / 2 = 2,810.77; then 3 days held at
    # its last value, −20 + 27 × slope = 270.77: 812.31; plus the 700 spent.
    assert result.expected == D("4323.08")
    half = band(daily, -20, 2450 / 227.5)
    assert float(result.high) == pytest.approx(4323.08 + half, abs=0.01)
    assert float(result.low) == pytest.approx(4323.08 - half, abs=0.01)
    assert result.runs_out_on is None


def test_a_spike_tilts_the_line_but_every_day_ahead_stays_positive():
    daily = [100] * 6 + [1500] + [100] * 7
    result = forecast(daily)
    # Mean 200; slope (6 − 6.5) × 1400 / 227.5 = −3.0769…, intercept 200 + 3.0769 × 6.5 = 220.
    # Ahead: 14 × 220 − 3.0769 × 41 × 14 / 2 = 2,196.92, then 3 × (220 − 27 × 3.0769) = 410.77; plus 2,800.
    assert result.expected == D("5407.69")
    assert float(result.high - result.expected) == pytest.approx(band(daily, 220, -700 / 227.5), abs=0.01)


def test_a_falling_series_forecasts_no_spend_below_zero():
    daily = [140 - 10 * x for x in range(14)]  # an exact line reaching 0 on the first day ahead
    result = forecast(daily, amount="1000")
    assert (result.expected, result.low, result.high) == (D("1050.00"),) * 3
    assert result.runs_out_on == AS_OF  # 1,050 spent of 1,000: already out


def test_the_first_days_of_a_period_use_their_mean():
    result = spend_forecast(
        spend=D(200), amount=D(10_000), daily=[D(50), D(150)], as_of=dt.date(2026, 3, 2), period_end=MARCH_END
    )
    assert (result.expected, result.low, result.high) == (D("3100.00"),) * 3  # 200 + 29 × 100


def test_the_anomaly_bound_of_a_flat_series_is_floored_at_one_percent_of_the_median():
    bound = spend_anomaly_bound([D(100)] * 28, k=D(5))
    assert (bound.median, bound.spread, bound.threshold) == (D(100), D(1), D(105))


def test_a_step_moves_the_median_and_the_mad():
    bound = spend_anomaly_bound([D(100)] * 14 + [D(200)] * 14, k=D(5))
    assert (bound.median, bound.spread, bound.threshold) == (D(150), D(50), D(400))


def test_a_spike_is_measured_against_the_median_and_mad():
    bound = spend_anomaly_bound([D(v) for v in range(90, 118)], k=D(5))
    # Median (103 + 104) / 2; deviations 0.5, 0.5, 1.5, 1.5 … 13.5: their median (6.5 + 7.5) / 2 = 7.
    assert (bound.median, bound.spread, bound.threshold) == (D("103.5"), D(7), D("138.5"))


def test_mad_zero_falls_back_to_the_mean_absolute_deviation():
    bound = spend_anomaly_bound([D(100)] * 20 + [D(130)] * 8, k=D(5))
    # MAD 0 (20 of 28 days equal the median); mean deviation 240 / 28, × 1.2533.
    assert bound.spread == D("1.2533") * D(240) / 28
    assert bound.threshold == 100 + 5 * bound.spread  # 153.71


def test_less_than_fourteen_days_of_history_is_no_baseline():
    assert spend_anomaly_bound([D(100)] * 13, k=D(5)) is None


@pytest.mark.django_db
def test_the_signal_raises_one_risk_per_project_and_anomalous_day_and_closes_it_after_a_week(settings):
    settings.SPEND_ANOMALY_K = 5
    org = OrganizationFactory(timezone="UTC")
    spiky, flat, young = (ProjectFactory(organization=org, name=n) for n in ("Spiky", "Flat", "Young"))
    today = dt.date(2026, 3, 31)
    for back in range(1, 31):
        day = today - dt.timedelta(days=back)
        CostEntryFactory(project=spiky, date=day, amount=D(1000) if back == 2 else D(100))
        CostEntryFactory(project=flat, date=day, amount=D(100))
        if back <= 10:  # ten days of history only: never judged
            CostEntryFactory(project=young, date=day, amount=D(5000) if back == 2 else D(1))
    with time_machine.travel(dt.datetime(2026, 3, 31, 12, tzinfo=dt.UTC), tick=False):
        risk_signals_evaluate(organization=org, today=today)
        risk_signals_evaluate(organization=org, today=today)  # a second run raises nothing more
    (risk,) = Risk.objects.filter(signal_rule="spend_anomaly")
    assert (risk.project, risk.signal_key) == (spiky, f"spend_anomaly:project:{spiky.pk}:2026-03-29")
    assert "threshold median + 5 × spread = 105.00" in risk.description
    risk_signals_evaluate(organization=org, today=today + dt.timedelta(days=7))
    risk.refresh_from_db()
    assert risk.status == RiskStatus.CLOSED


@pytest.mark.django_db
def test_the_api_budget_fields_carry_the_band_and_the_day_the_budget_runs_out():
    org = OrganizationFactory()
    project = ProjectFactory(organization=org)
    today = dt.date.today()
    start = today - dt.timedelta(days=13)
    BudgetFactory(project=project, period_start=start, period_end=start + dt.timedelta(days=29), amount=D(2500))
    for i in range(14):
        CostEntryFactory(project=project, date=start + dt.timedelta(days=i), amount=D(100))
    row = as_role(org, Role.VIEWER).get(f"/api/v1/projects/{project.pk}/").json()
    # Flat 100 a day: 1,400 + 16 × 100; 1,400 + 100 × 12 first passes 2,500.
    assert (row["budget_forecast"], row["budget_forecast_low"], row["budget_forecast_high"]) == ("3000.00",) * 3
    assert row["budget_runs_out_on"] == (today + dt.timedelta(days=12)).isoformat()
