"""The series a chart draws, shaped for `static/js/app.js` (a canvas's `data-chart`).

Every chart also has a table view drawn from the same rows, so the series carry numbers only.
"""

from collections.abc import Iterable
from decimal import Decimal

from ops.models import Severity

# The severities' colours on charts: the heat map's hues, dark enough to read as bars.
SEVERITY_COLOURS = {
    Severity.LOW: "#1b7f3b",
    Severity.MEDIUM: "#b7791f",
    Severity.HIGH: "#c2410c",
    Severity.CRITICAL: "#b42318",
}


def series(label: str, values: Iterable[Decimal | int | None], *, kind: str = "bar", colour: str = "") -> dict:
    """Return one series: its label, its values as numbers (a gap for None), bars or a line, its colour."""
    entry = {"label": label, "data": [None if v is None else float(v) for v in values], "type": kind}
    return entry | ({"colour": colour} if colour else {})


def chart(labels: Iterable[str], all_series: list[dict], *, stacked: bool = False, unit: str = "") -> dict:
    """Return a chart's data: the labels of its x axis, its series, whether bars stack, the unit of its values."""
    return {"labels": list(labels), "series": all_series, "stacked": stacked, "unit": unit}


def risk_trend_chart(weeks: list) -> dict:
    """Open risks per severity at each week's end, stacked (`dashboard.WeekFigure`); a gap without a snapshot."""
    return chart(
        [w.label for w in weeks],
        [
            series(s.label, [None if w.risks is None else w.risks[s.value] for w in weeks], colour=SEVERITY_COLOURS[s])
            for s in Severity
        ],
        stacked=True,
        unit="risks",
    )


def spend_trend_chart(weeks: list, *, currency: str) -> dict:
    """The spend of each week (`dashboard.WeekFigure`)."""
    return chart([w.label for w in weeks], [series("Spend", [w.spend for w in weeks])], unit=currency)


def billing_chart(months: list, *, currency: str) -> dict:
    """Estimated and billed side by side per month (`billing.BillingMonth`); a gap for a month without a bill."""
    return chart(
        [m.month.strftime("%b %Y") for m in months],
        [series("Estimated", [m.estimated for m in months]), series("Billed", [m.billed for m in months])],
        unit=currency,
    )


def breakdown_chart(breakdown, *, tokens: bool = False, unit: str) -> dict:
    """One stacked bar per month of an analytics breakdown (`analytics.Breakdown`): spend, or tokens, per key."""
    return chart(
        [m.strftime("%b %Y") for m in breakdown.months],
        [
            series(
                breakdown.key_label(key),
                [
                    breakdown.cell(month, key).tokens if tokens else breakdown.cell(month, key).spend
                    for month in breakdown.months
                ],
            )
            for key in breakdown.keys
        ],
        stacked=True,
        unit=unit,
    )
