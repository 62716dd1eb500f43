"""The cursor page's Python-side figures, made cheaper (issue 14's benchmark): the same values as the plain rule."""

import datetime as dt
from decimal import Decimal

from ops.selectors.portfolio import _line, daily_series, forecast_window


def test_line_sxx_in_closed_form_equals_the_sum_of_squares():
    for n in range(3, 40):
        daily = [Decimal(f"{(x * 37) % 11}.{x % 7}5") for x in range(n)]
        mean_x = Decimal(n - 1) / 2
        mean_y = sum(daily, Decimal(0)) / n
        sxx = sum(((x - mean_x) ** 2 for x in range(n)), Decimal(0))
        slope = sum(((x - mean_x) * (y - mean_y) for x, y in enumerate(daily)), Decimal(0)) / sxx
        intercept = mean_y - slope * mean_x
        squares = sum(((y - intercept - slope * x) ** 2 for x, y in enumerate(daily)), Decimal(0))
        assert _line(daily) == (intercept, slope, (squares / (n - 2)).sqrt())


def test_daily_series_has_one_value_per_window_day_and_zero_where_nothing_was_spent():
    start, as_of = dt.date(2026, 2, 20), dt.date(2026, 3, 5)  # across the end of February
    spend = {dt.date(2026, 2, 28): Decimal("3.5"), dt.date(2026, 3, 1): Decimal("1"), dt.date(2026, 1, 1): Decimal(9)}
    series = daily_series(spend, period_start=start, as_of=as_of)
    first = forecast_window(period_start=start, as_of=as_of)
    days = [first + dt.timedelta(days=i) for i in range((as_of - first).days + 1)]
    assert series == tuple(spend.get(day, Decimal(0)) for day in days)
    assert len(series) == 14 and sum(series) == Decimal("4.5")
    assert daily_series({}, period_start=as_of, as_of=as_of) == (Decimal(0),)


def test_line_of_a_flat_window_equals_the_sums():
    for n in range(3, 20):
        for level in (Decimal(0), Decimal("12.34"), Decimal("0.3333333333")):
            daily = [level] * n
            mean_x = Decimal(n - 1) / 2
            mean_y = sum(daily, Decimal(0)) / n
            sxx = Decimal(n * (n * n - 1)) / 12
            slope = sum(((x - mean_x) * (y - mean_y) for x, y in enumerate(daily)), Decimal(0)) / sxx
            intercept = mean_y - slope * mean_x
            squares = sum(((y - intercept - slope * x) ** 2 for x, y in enumerate(daily)), Decimal(0))
            assert _line(daily) == (intercept, slope, (squares / (n - 2)).sqrt()) == (level, 0, 0)
