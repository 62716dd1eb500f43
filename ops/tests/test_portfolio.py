"""The portfolio rules against hand-computed values, and one answer everywhere they show (issue 11)."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from ops.models import CostCategory, CostSource, MetricKind, ReportKind, Risk, RiskSource, RiskStatus
from ops.selectors.portfolio import (
    BudgetStatus,
    attention_reasons,
    latest_metrics,
    project_cost_figures,
    status_stale,
    usage_price,
    week_before,
)
from ops.selectors.reports import report_csv, report_headline, report_markdown, status_sections
from ops.services import report_build, risk_signals_evaluate
from ops.tests.factories import (
    BudgetFactory,
    CostEntryFactory,
    ModelPriceFactory,
    QualityMetricFactory,
    ReportFactory,
)
from projects.models import Role, Stage
from projects.services import status_update_create
from projects.tests.api_support import _fresh_throttle, client_for  # noqa: F401
from projects.tests.factories import OrganizationFactory, ProjectFactory, member
from tracker.formatting import money

pytestmark = pytest.mark.django_db

UTC = dt.UTC
# Sunday 8 March 2026: the status report of the week 2–8 March reads as of today, like the pages.
NOW = dt.datetime(2026, 3, 8, 15, 0, tzinfo=UTC)
TODAY = NOW.date()
WEEK = (dt.date(2026, 3, 2), TODAY)
CREATED = dt.datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
MARCH = (dt.date(2026, 3, 1), dt.date(2026, 3, 31))


def cost(project, date, amount, category=CostCategory.INFERENCE):
    """Record a cost; `amount` None is token usage no price covered."""
    if amount is None:
        return CostEntryFactory(
            project=project, date=date, amount=None, category=category, source=CostSource.USAGE, input_tokens=10
        )
    return CostEntryFactory(project=project, date=date, amount=Decimal(amount), category=category)


# The rules, one by one


def test_usage_price_excludes_cached_tokens_from_input_and_prices_them_apart():
    price = ModelPriceFactory.build(
        input_per_mtok=Decimal("2.50"), cached_input_per_mtok=Decimal("1.25"), output_per_mtok=Decimal("10")
    )
    # 1M input × 2.50 + 2M cached × 1.25 + 0.5M output × 10 = 2.50 + 2.50 + 5 = 10.
    assert usage_price(price=price, input_tokens=1_000_000, cached_input_tokens=2_000_000, output_tokens=500_000) == 10
    # Without a cached price, cached tokens cost the input price; a zero cached price stays zero.
    price.cached_input_per_mtok = None
    assert usage_price(price=price, input_tokens=0, cached_input_tokens=1_000_000, output_tokens=0) == Decimal("2.5")
    price.cached_input_per_mtok = Decimal(0)
    assert usage_price(price=price, input_tokens=0, cached_input_tokens=1_000_000, output_tokens=0) == 0
    assert usage_price(price=price, input_tokens=1, cached_input_tokens=0, output_tokens=0) == Decimal("0.0000")


def test_week_before_follows_the_organization_timezone():
    auckland = OrganizationFactory(timezone="Pacific/Auckland")
    utc = OrganizationFactory(timezone="UTC")
    # Sunday 8 March 20:00 UTC is already Monday 9 March in Auckland.
    now = dt.datetime(2026, 3, 8, 20, 0, tzinfo=UTC)
    assert week_before(organization=utc, now=now) == (dt.date(2026, 2, 23), dt.date(2026, 3, 1))
    assert week_before(organization=auckland, now=now) == WEEK


def test_status_stale_counts_from_creation_without_a_status():
    assert status_stale(last_status_date=dt.date(2026, 2, 22), created_on=dt.date(2026, 1, 1), as_of=TODAY) is False
    assert status_stale(last_status_date=dt.date(2026, 2, 21), created_on=dt.date(2026, 1, 1), as_of=TODAY) is True
    assert status_stale(last_status_date=None, created_on=dt.date(2026, 3, 1), as_of=TODAY) is False
    assert status_stale(last_status_date=None, created_on=dt.date(2026, 2, 1), as_of=TODAY) is True


def test_attention_reasons_in_order():
    assert attention_reasons(
        health="red", over_budget=True, stale=True, overdue_reviews=True, unmet_gates=["budget"]
    ) == ["health_red", "over_budget", "stale", "overdue_reviews", "blocked_gates"]
    assert (
        attention_reasons(health="green", over_budget=False, stale=False, overdue_reviews=False, unmet_gates=[]) == []
    )


def test_budget_status_picks_the_covering_budget_and_computes_its_figures():
    project = ProjectFactory()
    BudgetFactory(project=project, period_start=dt.date(2026, 1, 1), period_end=dt.date(2026, 1, 31), amount=50)
    BudgetFactory(project=project, period_start=dt.date(2026, 1, 1), period_end=dt.date(2026, 12, 31), amount=9000)
    current = BudgetFactory(project=project, period_start=MARCH[0], period_end=MARCH[1], amount=1000, tolerance_pct=10)
    BudgetFactory(
        project=project, category=CostCategory.TRAINING, period_start=MARCH[0], period_end=MARCH[1], amount=100
    )
    cost(project, dt.date(2026, 1, 10), "400")  # before the current period
    cost(project, dt.date(2026, 3, 2), "700")
    cost(project, dt.date(2026, 3, 5), "120", CostCategory.TRAINING)
    cost(project, dt.date(2026, 3, 6), None)  # unpriced: flagged, never costed
    cost(project, dt.date(2026, 3, 20), "999")  # after the as-of date
    figures = project_cost_figures(project=project, as_of=TODAY)
    budgets = figures.budgets
    overall = budgets.overall
    assert overall.budget_id == current.pk and overall.spend == Decimal("820")
    # 82.0 % used; the line through 1–8 March's daily spend (0, 700, 0, 0, 120, 0, 0, 0) falls to 0 by
    # 7 March, so nothing more is forecast: 820 at the period's end. Under 1000, so neither flag.
    assert (overall.used_pct, overall.forecast) == (Decimal("82.0"), Decimal("820.00"))
    assert (overall.over_budget, overall.over_tolerance) == (False, False)
    (training,) = budgets.categories
    assert training.spend == Decimal("120") and training.over_budget and training.over_tolerance  # 120 > 110
    assert training.category_label == "Training"
    spend = figures.spend
    assert (spend.amount, spend.unpriced_entries, spend.incomplete) == (Decimal("1220"), 1, True)
    assert project_cost_figures(project=project, as_of=dt.date(2027, 1, 1)).budgets.overall is None


def test_over_budget_within_tolerance_is_not_over_tolerance():
    status = BudgetStatus(
        period_start=MARCH[0],
        period_end=MARCH[1],
        amount=Decimal(100),
        tolerance_pct=Decimal(10),
        spend=Decimal(105),
        as_of=TODAY,
    )
    assert (status.over_budget, status.over_tolerance, status.limit) == (True, False, Decimal("110.0"))
    assert status.as_fields()["budget_used_pct"] == "105.0"


def test_latest_metrics_takes_the_newest_value_per_kind_by_the_date():
    project = ProjectFactory()
    QualityMetricFactory(
        project=project, metric=MetricKind.ACCURACY, value=0.7, threshold=0.8, date=dt.date(2026, 3, 1)
    )
    QualityMetricFactory(
        project=project, metric=MetricKind.ACCURACY, value=0.9, threshold=0.8, date=dt.date(2026, 3, 5)
    )
    QualityMetricFactory(
        project=project, metric=MetricKind.ACCURACY, value=0.1, threshold=0.8, date=dt.date(2026, 3, 9)
    )
    (accuracy,) = latest_metrics(project=project, as_of=TODAY)
    assert (accuracy.value, accuracy.breached) == (0.9, False)
    assert latest_metrics(project=project, as_of=dt.date(2026, 3, 2))[0].breached is True


# The cross-check: every figure, read everywhere it shows, is the same


FIELDS = [
    "spend_to_date",
    "budget_period_start",
    "budget_period_end",
    "budget_amount",
    "budget_spend",
    "budget_used_pct",
    "budget_forecast",
    "budget_forecast_low",
    "budget_forecast_high",
    "budget_runs_out_on",
    "over_budget",
    "over_tolerance",
    "budget_spend_incomplete",
]


def _fields(spend, status: BudgetStatus | None) -> dict:
    empty = dict.fromkeys(FIELDS[1:10]) | {
        "over_budget": False,
        "over_tolerance": False,
        "budget_spend_incomplete": False,
    }
    return {"spend_to_date": str(Decimal(spend).quantize(Decimal("0.01")))} | (status.as_fields() if status else empty)


@pytest.fixture
def portfolio():
    with time_machine.travel(CREATED, tick=False):
        org = OrganizationFactory(timezone="UTC")
        manager = member(org, Role.MANAGER)
        over = ProjectFactory(organization=org, name="Over")
        under = ProjectFactory(organization=org, name="Under")
        bare = ProjectFactory(organization=org, name="Bare", stage=Stage.EVALUATION)
        edge = ProjectFactory(organization=org, name="Edge")
    # Over: a past budget, the current one and an inference budget; 1200 spent in March > 1000 + 10 %.
    BudgetFactory(project=over, period_start=dt.date(2026, 1, 1), period_end=dt.date(2026, 1, 31), amount=100)
    BudgetFactory(project=over, period_start=MARCH[0], period_end=MARCH[1], amount=1000, tolerance_pct=10)
    BudgetFactory(project=over, category=CostCategory.INFERENCE, period_start=MARCH[0], period_end=MARCH[1], amount=200)
    cost(over, dt.date(2026, 1, 15), "500")
    cost(over, dt.date(2026, 3, 3), "900")
    cost(over, dt.date(2026, 3, 5), "300", CostCategory.TRAINING)
    cost(over, dt.date(2026, 3, 4), None)
    # Under: two overlapping overall budgets (the later-starting one counts), a breached metric, no status.
    BudgetFactory(project=under, period_start=dt.date(2026, 1, 1), period_end=dt.date(2026, 12, 31), amount=20000)
    BudgetFactory(project=under, period_start=dt.date(2026, 2, 1), period_end=dt.date(2026, 4, 30), amount=5000)
    cost(under, dt.date(2026, 1, 20), "50")
    cost(under, dt.date(2026, 2, 10), "200")
    cost(under, dt.date(2026, 3, 2), "100")
    QualityMetricFactory(
        project=under,
        metric=MetricKind.HALLUCINATION_RATE,
        value=0.01,
        threshold=0.05,
        higher_is_better=False,
        date=dt.date(2026, 3, 1),
    )
    QualityMetricFactory(
        project=under,
        metric=MetricKind.HALLUCINATION_RATE,
        value=0.08,
        threshold=0.05,
        higher_is_better=False,
        date=dt.date(2026, 3, 6),
    )
    # Bare: no budget at all, amber, gates unmet for pilot.
    cost(bare, dt.date(2026, 3, 1), "50")
    # Edge: over budget but inside its tolerance.
    BudgetFactory(project=edge, period_start=MARCH[0], period_end=MARCH[1], amount=100, tolerance_pct=10)
    cost(edge, dt.date(2026, 3, 7), "105")
    with time_machine.travel(NOW, tick=False):
        for project, health in [(over, "green"), (bare, "amber"), (edge, "green")]:
            status_update_create(
                project=project, by=manager, date=dt.date(2026, 3, 6), health=health, progress=10, summary="s"
            )
    return org, manager, [over, under, bare, edge]


def test_every_figure_is_the_same_everywhere_it_shows(portfolio, client):
    org, manager, projects = portfolio
    names = {p.pk: p.name for p in projects}
    api = client_for(manager)
    client.force_login(manager)
    with time_machine.travel(NOW, tick=False):
        dashboard = client.get(reverse("projects:dashboard")).context["overview"].needs_attention
        html_rows = list(client.get(reverse("projects:list")).context["page"])
        api_rows = api.get("/api/v1/projects/").json()["results"]
        api_details = {p.pk: api.get(f"/api/v1/projects/{p.pk}/").json() for p in projects}
        pages = {p.pk: client.get(p.get_absolute_url()).context["detail"] for p in projects}
        report = report_build(
            report_id=ReportFactory(
                organization=org, kind=ReportKind.STATUS, period_start=WEEK[0], period_end=WEEK[1]
            ).pk
        )
        risk_signals_evaluate(organization=org, today=TODAY)
    sections = {s["id"]: s for s in report.data["projects"]}
    by_source = {
        "project list (HTML)": {r.pk: _fields(r.spend_to_date, r.budget) for r in html_rows},
        "project list (API)": {r["id"]: {f: r[f] for f in FIELDS} for r in api_rows},
        "project detail (API)": {pk: {f: r[f] for f in FIELDS} for pk, r in api_details.items()},
        "project page": {pk: _fields(d["spend"].amount, d["budgets"].overall) for pk, d in pages.items()},
        "status report": {pk: {f: s[f] for f in FIELDS} for pk, s in sections.items()},
    }
    expected = by_source["status report"]
    for source, figures in by_source.items():
        assert figures == expected, source

    # The hand-computed answers: one per project, whoever asks.
    over, under, bare, edge = (expected[p.pk] for p in projects)
    assert over == {
        "spend_to_date": "1700.00",
        "budget_period_start": "2026-03-01",
        "budget_period_end": "2026-03-31",
        "budget_amount": "1000.00",
        "budget_spend": "1200.00",
        "budget_used_pct": "120.0",
        # 1–8 March's daily spend 0, 0, 900, 0, 300, 0, 0, 0: the line 250 − 28.57 x (x = 0 on 1 March)
        # adds 21.43 on 9 March and nothing after (docs/money.md); spend is already over, so out today.
        # The band's low end never goes below the spend already made.
        "budget_forecast": "1221.43",
        "budget_forecast_low": "1200.00",
        "budget_forecast_high": "4371.59",  # + t(6) 1.943 × residual sd 338.06 × √23 days left
        "budget_runs_out_on": "2026-03-08",
        "over_budget": True,
        "over_tolerance": True,
        "budget_spend_incomplete": True,  # its unpriced usage falls in the budget's period
    }
    assert (under["budget_amount"], under["budget_spend"], under["budget_period_start"]) == (
        "5000.00",
        "300.00",
        "2026-02-01",
    )
    assert bare["budget_amount"] is None and bare["spend_to_date"] == "50.00"
    assert (edge["over_budget"], edge["over_tolerance"]) == (True, False)
    assert sections[projects[0].pk]["cost_incomplete"] is True and sections[projects[0].pk]["unpriced_entries_to_date"]

    # Needs attention: the dashboard and the report give the same reasons, in the same order.
    report_attention = [(a["name"], a["reasons"]) for a in report.data["needs_attention"]]
    assert [(p.name, p.attention) for p in dashboard] == report_attention
    assert dict(report_attention) == {
        "Bare": ["health_amber", "blocked_gates"],
        "Over": ["over_budget"],
        "Edge": ["over_budget"],
        "Under": ["stale"],
    }
    assert {p.name: p.stale for p in dashboard} == {
        n: s["stale"] for n, s in ((s["name"], s) for s in sections.values()) if n in {p.name for p in dashboard}
    }

    # The digest leads with the same totals.
    headline = dict(report_headline(report))
    total = sum(Decimal(r["spend_to_date"]) for r in api_rows)
    assert headline["Spend to date"].startswith(money(total, org))
    assert headline["Needs attention"] == str(len(dashboard))

    # The signals: over tolerance ⇔ budget_overrun, the same stale projects, the same breached latest metrics.
    signals = Risk.objects.filter(organization=org, source=RiskSource.SIGNAL, status=RiskStatus.OPEN)
    rules = {(r.signal_rule, r.project_id) for r in signals}
    overruns = {names[pk] for rule, pk in rules if rule == "budget_overrun"}
    assert overruns == {names[pk] for pk, f in expected.items() if f["over_tolerance"]} == {"Over"}
    # Over's inference budget (900 > 220) raised its own risk, keyed by that budget.
    assert {r.signal_key for r in signals if r.signal_rule == "budget_overrun"} == {
        f"budget_overrun:budget:{b['budget_id']}" for b in _budget_ids(pages[projects[0].pk])
    }
    assert {names[pk] for rule, pk in rules if rule == "stale_status"} == {
        s["name"] for s in sections.values() if s["stale"]
    }
    breached = {pk for pk, s in sections.items() if any(m["breached"] for m in s["metrics"])}
    assert {pk for rule, pk in rules if rule == "metric_breach"} == breached == {projects[1].pk}
    assert {pk for pk, d in pages.items() if any(m.breached for m in d["metrics"])} == breached


def _budget_ids(detail) -> list[dict]:
    return [{"budget_id": b.budget_id} for b in [detail["budgets"].overall, *detail["budgets"].categories]]


# Query counts stay constant as the portfolio grows


def _grow(org, n: int) -> None:
    for _ in range(n):
        p = ProjectFactory(organization=org)
        BudgetFactory(
            project=p,
            period_start=dt.date.today().replace(day=1),
            period_end=dt.date.today().replace(day=1) + dt.timedelta(days=40),
            amount=100,
        )
        BudgetFactory(project=p, category=CostCategory.TRAINING, amount=10)
        CostEntryFactory(project=p, date=dt.date.today(), amount=Decimal(500))


def test_project_list_api_costs_the_same_queries_for_3_and_30_projects(django_assert_num_queries):
    org = OrganizationFactory()
    api = client_for(member(org, Role.VIEWER))
    _grow(org, 3)
    api.get("/api/v1/projects/")  # warm the per-process caches (content types, throttles)
    with django_assert_num_queries(3) as few:
        assert len(api.get("/api/v1/projects/").json()["results"]) == 3
    _grow(org, 27)
    with django_assert_num_queries(len(few.captured_queries)):
        assert api.get("/api/v1/projects/").json()["count"] == 30


def test_dashboard_costs_the_same_queries_for_3_and_30_projects(client, django_assert_num_queries):
    org = OrganizationFactory()
    client.force_login(member(org, Role.VIEWER))
    _grow(org, 3)
    client.get(reverse("projects:dashboard"))
    # With the manager's week: risk counts, risk snapshots, weekly spend (two without snapshots), overdue, moves.
    with django_assert_num_queries(16) as few:
        assert client.get(reverse("projects:dashboard")).status_code == 200
    _grow(org, 27)
    with django_assert_num_queries(len(few.captured_queries)):
        assert len(client.get(reverse("projects:dashboard")).context["overview"].needs_attention) == 8


def test_a_report_stored_with_the_old_budget_names_still_renders(portfolio, client):
    org, manager, (over, *_) = portfolio
    with time_machine.travel(NOW, tick=False):
        report = report_build(
            report_id=ReportFactory(
                organization=org, kind=ReportKind.STATUS, period_start=WEEK[0], period_end=WEEK[1]
            ).pk
        )
    # The shape reports had before the shared names: `budget`, `budget_period`, `forecast_*`, no flags.
    for section in report.data["projects"]:
        start, end = section.pop("budget_period_start"), section.pop("budget_period_end")
        section["budget_period"] = [start, end] if start else None
        section["budget"] = section.pop("budget_amount")
        section["forecast_spend"] = section.pop("budget_forecast")
        section["forecast_pct"] = None
        for key in ("over_budget", "over_tolerance", "budget_categories", "stale"):
            section.pop(key)
    report.save(update_fields=["data"])
    (old,) = [s for s in status_sections(report.data) if s["id"] == over.pk]
    assert (old["budget_amount"], old["budget_period_start"], old["budget_forecast"]) == (
        "1000.00",
        "2026-03-01",
        "1221.43",
    )
    assert old["over_budget"] is True and old["over_tolerance"] is None
    client.force_login(manager)
    page = client.get(report.get_absolute_url())
    assert page.status_code == 200 and "$1,221" in page.content.decode()
    assert "| 120.0% | $1,221.43 |" in report_markdown(report)
    assert ",1000.00,1200.00,120.0,1221.43," in report_csv(report)
