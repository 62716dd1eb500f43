"""Cost analytics (/analytics/costs/): figures against hand-computed data, filters, CSV, query counts."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from ops.models import CostCategory, CostSource, ModelProvider
from ops.selectors.analytics import cost_analytics, cost_analytics_projects
from ops.selectors.portfolio import BudgetStatus
from ops.tests.factories import BudgetFactory, CostEntryFactory
from projects.models import Role
from projects.tests.factories import OrganizationFactory, ProjectFactory, TeamFactory, member

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
URL = reverse("ops:cost-analytics")
FEB, MAR = dt.date(2026, 2, 1), dt.date(2026, 3, 1)


def usage(project, *, day, model, provider, amount, input_tokens, output_tokens, requests):
    return CostEntryFactory(
        project=project,
        date=day,
        category=CostCategory.INFERENCE,
        source=CostSource.USAGE,
        model=model,
        provider=provider,
        amount=amount,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        requests=requests,
    )


@pytest.fixture
def portfolio(db):
    """Two teams' projects; usage of three models (one unpriced), a manual cost, one entry before the window."""
    org = OrganizationFactory(timezone="UTC", currency="USD")
    alpha, beta = TeamFactory(organization=org, name="Alpha"), TeamFactory(organization=org, name="Beta")
    p1 = ProjectFactory(organization=org, team=alpha, name="Assistant")
    p2 = ProjectFactory(organization=org, team=beta, name="Briefings")
    openai, anthropic = ModelProvider.OPENAI, ModelProvider.ANTHROPIC
    usage(p1, day=dt.date(2026, 2, 10), model="gpt-4o", provider=openai, amount=Decimal("2.00"),
          input_tokens=3000, output_tokens=1000, requests=2)  # fmt: skip
    usage(p1, day=dt.date(2026, 3, 5), model="gpt-4o", provider=openai, amount=Decimal("4.00"),
          input_tokens=6000, output_tokens=2000, requests=8)  # fmt: skip
    CostEntryFactory(project=p1, date=dt.date(2026, 3, 1), category=CostCategory.STORAGE, amount=Decimal("50.00"))
    CostEntryFactory(project=p1, date=dt.date(2025, 12, 31), amount=Decimal("1000.00"))  # before the 3 months
    usage(p2, day=dt.date(2026, 3, 2), model="claude-sonnet-4", provider=anthropic, amount=Decimal("6.00"),
          input_tokens=2000, output_tokens=1000, requests=2)  # fmt: skip
    usage(p2, day=dt.date(2026, 3, 3), model="new-model", provider=openai, amount=None,
          input_tokens=1000, output_tokens=0, requests=1)  # fmt: skip
    BudgetFactory(project=p1, period_start=MAR, period_end=dt.date(2026, 3, 31), amount=Decimal("100.00"))
    BudgetFactory(project=p2, period_start=dt.date(2026, 1, 1), period_end=dt.date(2026, 12, 31), amount=1000)
    # Another organization's costs in the same window never show.
    stranger = ProjectFactory(organization=OrganizationFactory(), name="Stranger")
    usage(stranger, day=dt.date(2026, 3, 4), model="gpt-4o", provider=openai, amount=Decimal("999.00"),
          input_tokens=1, output_tokens=1, requests=1)  # fmt: skip
    BudgetFactory(project=stranger, period_start=MAR, period_end=dt.date(2026, 3, 31), amount=1)
    viewer = member(org, Role.VIEWER)
    return org, viewer, alpha, p1, p2


def analytics_of(org, user, **scope):
    projects = cost_analytics_projects(user=user, organization=org, **scope)
    return cost_analytics(projects=projects, organization=org, months=3, today=TODAY)


def test_the_figures_equal_the_hand_computed_ones(portfolio):
    org, viewer, *_ = portfolio
    data = analytics_of(org, viewer)
    assert (data.start, data.end) == (dt.date(2026, 1, 1), TODAY)
    assert data.total.spend == Decimal("62.00") and data.total.unpriced_entries == 1
    model = data.by_model
    assert model.keys == ["gpt-4o", "claude-sonnet-4", "new-model"]  # spend 6, 6 (fewer tokens), then 0
    assert (model.cell(FEB, "gpt-4o").spend, model.cell(MAR, "gpt-4o").spend) == (Decimal(2), Decimal(4))
    assert model.cell(MAR, "gpt-4o").tokens == 8000 and model.cell(FEB, "claude-sonnet-4").tokens == 0
    assert model.cell(MAR, "new-model").unpriced_tokens == 1000 and model.cell(MAR, "new-model").incomplete
    assert [(m, [u.spend for u in cells]) for m, cells in model.pivot()] == [
        (dt.date(2026, 1, 1), [0, 0, 0]),
        (FEB, [2, 0, 0]),
        (MAR, [4, 6, 0]),
    ]
    # Unit costs: priced spend over the priced entries' tokens and requests only (the unpriced 1,000 tokens out).
    usage_total = {key: u for key, _, u in model.key_totals()}
    gpt = usage_total["gpt-4o"]
    assert (gpt.spend, gpt.tokens, gpt.requests) == (Decimal(6), 12000, 10)
    assert gpt.cost_per_1k_tokens == Decimal("0.5") and gpt.cost_per_request == Decimal("0.6")
    assert usage_total["new-model"].cost_per_1k_tokens is None
    assert data.usage.cost_per_1k_tokens == Decimal("0.8")  # 12 over 15,000 priced tokens
    assert data.usage.cost_per_request == Decimal("1")  # 12 over 12 priced requests
    provider = data.by_provider
    assert {key: provider.totals[key].spend for key in provider.keys} == {
        "": Decimal(50),
        "openai": Decimal(6),
        "anthropic": Decimal(6),
    }
    assert provider.key_label("") == "Not token usage" and provider.key_label("openai") == "OpenAI"
    category = data.by_category
    assert {key: category.totals[key].spend for key in category.keys} == {"storage": 50, "inference": 12}
    assert [name for _, name, _ in data.unpriced] == ["new-model"]


def test_budgets_read_the_portfolio_budget_status(portfolio):
    org, viewer, *_ = portfolio
    budgets = {b.project.name: b.budget for b in analytics_of(org, viewer).budgets}
    assert set(budgets) == {"Assistant", "Briefings"}
    march = budgets["Assistant"]
    assert isinstance(march, BudgetStatus)
    # 54 spent in the 10 days of March so far: 5.40 a day. The forecast is the one of
    # `portfolio.spend_forecast`: the trend of [50, 0, 0, 0, 4, 0, 0, 0, 0, 0] falls to 0 before today,
    # so nothing more is expected and 100 is not reached.
    assert (march.spend, march.burn_rate, march.forecast) == (Decimal(54), Decimal("5.40"), Decimal("54.00"))
    assert march.run_out_date is None
    year = budgets["Briefings"]
    # 6 in 69 days (unpriced usage left out and flagged). The 14-day window holds 6 on its sixth day:
    # slope -9/227.5, intercept 0.6857, so days 14-17 ahead add 0.29 and the line is 0 after: 6.29.
    assert (year.spend, year.burn_rate, year.forecast) == (Decimal(6), Decimal("0.09"), Decimal("6.29"))
    assert year.run_out_date is None and year.incomplete


def test_team_and_project_filters_narrow_every_figure(portfolio, client):
    _, viewer, alpha, _, p2 = portfolio
    client.force_login(viewer)
    with time_machine.travel(NOW, tick=False):
        by_team = client.get(URL, {"team": alpha.pk, "months": 3}).context["data"]
        by_project = client.get(URL, {"project": p2.pk, "months": 3}).context["data"]
    assert by_team.total.spend == Decimal(56) and by_team.by_model.keys == ["gpt-4o"]
    assert [b.project.name for b in by_team.budgets] == ["Assistant"]
    assert by_project.total.spend == Decimal(6) and by_project.by_model.keys == ["claude-sonnet-4", "new-model"]
    assert [b.project.name for b in by_project.budgets] == ["Briefings"]


def test_another_organizations_project_or_team_is_refused_and_narrows_nothing(portfolio, client):
    _, viewer, *_ = portfolio
    other = ProjectFactory(organization=OrganizationFactory(), name="Elsewhere")
    foreign_team = TeamFactory(organization=other.organization)
    client.force_login(viewer)
    with time_machine.travel(NOW, tick=False):
        response = client.get(URL, {"project": other.pk, "team": foreign_team.pk, "months": 3})
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"project", "team"}
    assert response.context["data"].total.spend == Decimal(62)  # the organization's own, nothing of the other's
    body = response.content.decode()
    assert "Elsewhere" not in body and "Stranger" not in body and "999" not in body


def test_each_chart_downloads_its_rows_as_csv(portfolio, client):
    _, viewer, *_ = portfolio
    client.force_login(viewer)
    with time_machine.travel(NOW, tick=False):
        response = client.get(URL, {"months": 3, "download": "model"})
        budgets = client.get(URL, {"months": 3, "download": "budgets"})
        missing = client.get(URL, {"download": "nothing"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="costs-model-2026-01-2026-03-10.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows == [
        [
            "month",
            "model",
            "spend",
            "input_tokens",
            "cached_input_tokens",
            "output_tokens",
            "requests",
            "unpriced_entries",
            "unpriced_tokens",
            "currency",
        ],
        ["2026-02-01", "gpt-4o", "2.0000", "3000", "0", "1000", "2", "0", "0", "USD"],
        ["2026-03-01", "gpt-4o", "4.0000", "6000", "0", "2000", "8", "0", "0", "USD"],
        ["2026-03-01", "claude-sonnet-4", "6.0000", "2000", "0", "1000", "2", "0", "0", "USD"],
        ["2026-03-01", "new-model", "0", "1000", "0", "0", "1", "1", "1000", "USD"],
    ]
    budget_rows = list(csv.DictReader(io.StringIO(budgets.content.decode())))
    assert [
        (r["project"], r["spend"], r["burn_rate_per_day"], r["forecast"], r["run_out_date"]) for r in budget_rows
    ] == [
        ("Assistant", "54.0000", "5.40", "54.00", ""),
        ("Briefings", "6.0000", "0.09", "6.29", ""),
    ]
    assert missing.status_code == 404


def test_the_page_draws_each_chart_with_its_table_and_calls_out_unpriced_usage(portfolio, client):
    _, viewer, *_ = portfolio
    client.force_login(viewer)
    with time_machine.travel(NOW, tick=False):
        body = client.get(URL, {"months": 3}).content.decode()
    for key in ("model", "tokens", "provider", "category"):
        assert f'data-testid="chart-{key}"' in body and f"download={key}" in body
    assert body.count("<canvas data-chart=") == 4 and body.count("As a table") == 4
    assert 'data-testid="unpriced"' in body and "new-model" in body
    assert "$62" in body and "$0.80" in body and "$1.00" in body  # total spend, per 1,000 tokens, per request


@pytest.mark.parametrize("extra", [0, 12])
def test_the_query_count_does_not_grow_with_the_portfolio(portfolio, client, django_assert_num_queries, extra):
    org, viewer, alpha, *_ = portfolio
    for n in range(extra):
        project = ProjectFactory(organization=org, team=alpha)
        usage(project, day=dt.date(2026, 3, 4), model=f"model-{n}", provider=ModelProvider.OPENAI,
              amount=Decimal(n + 1), input_tokens=10, output_tokens=10, requests=1)  # fmt: skip
        BudgetFactory(project=project, period_start=MAR, period_end=dt.date(2026, 3, 31), amount=10)
    client.force_login(viewer)
    # Session, user, memberships; the usage rows of every chart; the budget statuses; the estimates and bills;
    # the two selects.
    with time_machine.travel(NOW, tick=False), django_assert_num_queries(QUERIES):
        assert client.get(URL, {"months": 3}).status_code == 200


QUERIES = 9  # estimated vs billed (`billing.billed_vs_estimated`) adds two: the estimates and the bills


def test_the_unfiltered_page_shows_the_period_it_computes(portfolio, client):
    _, viewer, *_ = portfolio
    client.force_login(viewer)
    with time_machine.travel(NOW, tick=False):
        response = client.get(URL)
    assert response.context["data"].start == dt.date(2025, 10, 1)  # six months, as the select says
    assert '<option value="6" selected>Last 6 months</option>' in response.content.decode()
