"""Budgets, cost entries and model prices, against PostgreSQL."""

import datetime as dt
from decimal import Decimal

import pytest

from ops.models import Budget, CostCategory, CostEntry, CostSource, ModelPrice
from ops.services import budget_create, cost_entry_create, model_price_create
from ops.tests.factories import CostEntryFactory, ModelPriceFactory
from projects.models import Role
from projects.tests.factories import OrganizationFactory, ProjectFactory, member
from tracker.exceptions import Conflict, NotPermitted, ValidationFailed

pytestmark = pytest.mark.django_db

MARCH = dt.date(2026, 3, 15)


# cost_entry_create


def test_cost_entry_create_records_the_cost_and_who_entered_it(project, contributor):
    entry = cost_entry_create(
        project=project,
        by=contributor,
        date=MARCH,
        category=CostCategory.INFERENCE,
        amount=Decimal("1234.5678"),
        model="gpt-4o",
        input_tokens=1_000_000,
        output_tokens=250_000,
        gpu_hours=Decimal("3.5"),
    )

    stored = CostEntry.objects.get(pk=entry.pk)
    assert (stored.amount, stored.source, stored.created_by) == (Decimal("1234.5678"), CostSource.MANUAL, contributor)
    assert (stored.input_tokens, stored.output_tokens, stored.gpu_hours) == (1_000_000, 250_000, Decimal("3.50"))


def test_cost_entry_create_accepts_a_zero_amount(project, contributor):
    cost_entry_create(project=project, by=contributor, date=MARCH, category=CostCategory.LICENSING, amount=Decimal(0))

    assert CostEntry.objects.get(project=project).amount == Decimal(0)


def test_cost_entry_create_refused_to_a_viewer(org, project):
    with pytest.raises(NotPermitted):
        cost_entry_create(
            project=project, by=member(org, Role.VIEWER), date=MARCH, category=CostCategory.INFERENCE, amount=1
        )

    assert not CostEntry.objects.exists()


def test_cost_entry_create_refused_to_a_member_of_another_organization(project):
    outsider = member(OrganizationFactory(), Role.ADMIN)

    with pytest.raises(NotPermitted):
        cost_entry_create(project=project, by=outsider, date=MARCH, category=CostCategory.INFERENCE, amount=1)

    assert not CostEntry.objects.exists()


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"amount": Decimal("-0.01")}, "amount"),
        ({"amount": None}, "amount"),
        ({"amount": Decimal("1.23456")}, "amount"),
        ({"category": "snacks"}, "category"),
        ({"source": "guess"}, "source"),
        ({"input_tokens": -1}, "input_tokens"),
        ({"gpu_hours": Decimal("-1")}, "gpu_hours"),
        ({"energy_kwh": Decimal("-0.5")}, "energy_kwh"),
    ],
)
def test_cost_entry_create_refuses_bad_values_and_writes_nothing(project, contributor, values, field):
    good = {"date": MARCH, "category": CostCategory.INFERENCE, "amount": Decimal("10")}

    with pytest.raises(ValidationFailed) as excinfo:
        cost_entry_create(project=project, by=contributor, **(good | values))

    assert list(excinfo.value.errors) == [field]
    assert not CostEntry.objects.exists()


def test_cost_entry_create_refuses_an_unknown_field(project, contributor):
    with pytest.raises(ValidationFailed) as excinfo:
        cost_entry_create(
            project=project, by=contributor, date=MARCH, category=CostCategory.INFERENCE, amount=1, price_id=1
        )

    assert excinfo.value.errors == {"price_id": ["Unknown field."]}
    assert not CostEntry.objects.exists()


def test_cost_entry_create_refuses_a_resent_external_id_as_a_conflict(project, contributor):
    cost_entry_create(
        project=project, by=contributor, date=MARCH, category=CostCategory.INFERENCE, amount=5, external_id="inv-7"
    )

    with pytest.raises(Conflict) as excinfo:
        cost_entry_create(
            project=project, by=contributor, date=MARCH, category=CostCategory.STORAGE, amount=9, external_id="inv-7"
        )

    assert list(excinfo.value.errors) == ["external_id"]
    assert list(CostEntry.objects.values_list("category", "amount")) == [(CostCategory.INFERENCE, Decimal(5))]


def test_cost_entry_create_allows_the_same_external_id_in_another_project(org, project, contributor):
    other = ProjectFactory(organization=org)
    for target in (project, other):
        cost_entry_create(
            project=target, by=contributor, date=MARCH, category=CostCategory.INFERENCE, amount=5, external_id="inv-7"
        )

    assert CostEntry.objects.filter(external_id="inv-7").count() == 2


def test_cost_entry_create_allows_many_entries_without_external_id(project, contributor):
    for _ in range(3):
        cost_entry_create(project=project, by=contributor, date=MARCH, category=CostCategory.INFERENCE, amount=5)

    assert CostEntry.objects.filter(project=project, external_id="").count() == 3


def test_cost_entry_create_conflict_keeps_the_surrounding_transaction_usable(project, contributor):
    CostEntryFactory(project=project, external_id="dup")

    with pytest.raises(Conflict):
        cost_entry_create(
            project=project, by=contributor, date=MARCH, category=CostCategory.INFERENCE, amount=1, external_id="dup"
        )

    # The failed insert ran in a savepoint: the caller can carry on in the same transaction.
    cost_entry_create(project=project, by=contributor, date=MARCH, category=CostCategory.INFERENCE, amount=2)
    assert CostEntry.objects.filter(project=project).count() == 2


# budget_create


def test_budget_create_by_a_manager(project, manager):
    budget = budget_create(
        project=project,
        by=manager,
        period_start=dt.date(2026, 1, 1),
        period_end=dt.date(2026, 12, 31),
        amount=Decimal("250000"),
        category=CostCategory.INFERENCE,
        tolerance_pct=Decimal("5"),
    )

    stored = Budget.objects.get(pk=budget.pk)
    assert (stored.amount, stored.category, stored.tolerance_pct) == (
        Decimal("250000.00"),
        CostCategory.INFERENCE,
        Decimal("5.00"),
    )


def test_budget_create_allowed_to_an_admin(org, project):
    budget_create(
        project=project, by=member(org, Role.ADMIN), period_start=MARCH, period_end=dt.date(2026, 4, 1), amount=1
    )

    assert Budget.objects.filter(project=project).count() == 1


@pytest.mark.parametrize("role", [Role.VIEWER, Role.CONTRIBUTOR])
def test_budget_create_refused_below_manager(org, project, role):
    with pytest.raises(NotPermitted):
        budget_create(
            project=project, by=member(org, role), period_start=MARCH, period_end=dt.date(2026, 4, 1), amount=100
        )

    assert not Budget.objects.exists()


@pytest.mark.parametrize("period_end", [MARCH, MARCH - dt.timedelta(days=1)])
def test_budget_create_refuses_a_period_not_ending_after_its_start(project, manager, period_end):
    with pytest.raises(ValidationFailed) as excinfo:
        budget_create(project=project, by=manager, period_start=MARCH, period_end=period_end, amount=100)

    assert excinfo.value.errors == {"period_end": ["The period must end after it starts."]}
    assert not Budget.objects.exists()


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"amount": Decimal("-1")}, "amount"),
        ({"tolerance_pct": Decimal("-0.5")}, "tolerance_pct"),
        ({"category": "snacks"}, "category"),
    ],
)
def test_budget_create_refuses_bad_values_and_writes_nothing(project, manager, values, field):
    good = {"period_start": MARCH, "period_end": dt.date(2026, 6, 30), "amount": Decimal("100")}

    with pytest.raises(ValidationFailed) as excinfo:
        budget_create(project=project, by=manager, **(good | values))

    assert list(excinfo.value.errors) == [field]
    assert not Budget.objects.exists()


# model_price_create


def test_model_price_create_by_a_manager(org, manager):
    price = model_price_create(
        organization=org,
        by=manager,
        provider="OpenAI",
        model="gpt-4o",
        input_per_mtok=Decimal("2.50"),
        output_per_mtok=Decimal("10"),
        valid_from=dt.date(2025, 1, 1),
        cached_input_per_mtok=Decimal("1.25"),
        deprecation_date=dt.date(2026, 10, 1),
        regions=["eu-west-1"],
    )

    stored = ModelPrice.objects.get(pk=price.pk)
    assert (stored.organization, stored.cached_input_per_mtok, stored.regions) == (org, Decimal("1.25"), ["eu-west-1"])


@pytest.mark.parametrize("role", [Role.VIEWER, Role.CONTRIBUTOR])
def test_model_price_create_refused_below_manager(org, role):
    with pytest.raises(NotPermitted):
        model_price_create(
            organization=org,
            by=member(org, role),
            provider="OpenAI",
            model="gpt-4o",
            input_per_mtok=1,
            output_per_mtok=2,
            valid_from=MARCH,
        )

    assert not ModelPrice.objects.exists()


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"input_per_mtok": Decimal("-1")}, "input_per_mtok"),
        ({"output_per_mtok": Decimal("-0.01")}, "output_per_mtok"),
        ({"cached_input_per_mtok": Decimal("-1")}, "cached_input_per_mtok"),
        ({"model": ""}, "model"),
        ({"provider": ""}, "provider"),
    ],
)
def test_model_price_create_refuses_bad_values_and_writes_nothing(org, manager, values, field):
    good = {"provider": "OpenAI", "model": "gpt-4o", "input_per_mtok": 1, "output_per_mtok": 2, "valid_from": MARCH}

    with pytest.raises(ValidationFailed) as excinfo:
        model_price_create(organization=org, by=manager, **(good | values))

    assert list(excinfo.value.errors) == [field]
    assert not ModelPrice.objects.exists()


def test_model_price_create_refuses_an_unknown_field(org, manager):
    with pytest.raises(ValidationFailed) as excinfo:
        model_price_create(
            organization=org,
            by=manager,
            provider="OpenAI",
            model="gpt-4o",
            input_per_mtok=1,
            output_per_mtok=2,
            valid_from=MARCH,
            discount=0.5,
        )

    assert excinfo.value.errors == {"discount": ["Unknown field."]}
    assert not ModelPrice.objects.exists()


def test_model_price_create_refuses_a_second_price_for_the_same_model_and_day(org, manager):
    ModelPriceFactory(organization=org, model="gpt-4o", valid_from=MARCH, input_per_mtok=Decimal("2.5"))

    with pytest.raises(Conflict) as excinfo:
        model_price_create(
            organization=org,
            by=manager,
            provider="OpenAI",
            model="gpt-4o",
            input_per_mtok=Decimal("3"),
            output_per_mtok=Decimal("12"),
            valid_from=MARCH,
        )

    assert list(excinfo.value.errors) == ["valid_from"]
    assert list(ModelPrice.objects.values_list("input_per_mtok", flat=True)) == [Decimal("2.5")]


def test_model_price_create_keeps_history_and_other_organizations_apart(org, manager):
    ModelPriceFactory(organization=org, model="gpt-4o", valid_from=MARCH)
    ModelPriceFactory(organization=OrganizationFactory(), model="gpt-4o", valid_from=dt.date(2026, 4, 1))

    model_price_create(
        organization=org,
        by=manager,
        provider="OpenAI",
        model="gpt-4o",
        input_per_mtok=Decimal("2"),
        output_per_mtok=Decimal("8"),
        valid_from=dt.date(2026, 4, 1),
    )

    assert list(ModelPrice.objects.filter(organization=org).values_list("valid_from", flat=True)) == [
        dt.date(2026, 4, 1),
        MARCH,
    ]
