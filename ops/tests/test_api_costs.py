"""Costs, bulk cost ingestion and token usage through the API."""

import datetime as dt
from decimal import Decimal

import pytest

from ops.models import CostEntry, CostSource
from ops.tests.factories import CostEntryFactory, ModelPriceFactory
from projects.models import Role
from projects.tests.api_support import _fresh_throttle, as_role, client_for, error_fields, member  # noqa: F401
from projects.tests.factories import MembershipFactory, OrganizationFactory, ProjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    return OrganizationFactory(name="Acme")


@pytest.fixture
def project(org):
    return ProjectFactory(organization=org)


def cost(project, **fields):
    return {"project": project.pk, "date": "2026-03-01", "category": "inference", "amount": "12.50", **fields}


def test_contributor_records_a_cost(project):
    response = as_role(project.organization).post("/api/v1/costs/", cost(project, external_id="inv-1"), format="json")
    assert response.status_code == 201, response.json()
    entry = CostEntry.objects.get()
    assert (entry.amount, entry.source, entry.external_id) == (Decimal("12.50"), CostSource.API, "inv-1")


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"amount": "-1"}, "amount"),
        ({"amount": "1e20"}, "amount"),
        ({"amount": None}, "amount"),
        ({"category": "snacks"}, "category"),
        ({"date": "01.03.2026"}, "date"),
        ({"input_tokens": -5}, "input_tokens"),
        ({"source": "usage"}, "source"),
        ({"price": 1}, "price"),
    ],
)
def test_bad_cost_is_a_400_and_writes_nothing(project, fields, field):
    response = as_role(project.organization).post("/api/v1/costs/", cost(project, **fields), format="json")
    assert response.status_code == 400, response.json()
    assert field in error_fields(response)
    assert not CostEntry.objects.exists()


def test_resending_a_cost_with_the_same_external_id_is_a_409(project):
    client = as_role(project.organization)
    client.post("/api/v1/costs/", cost(project, external_id="inv-1"), format="json")
    response = client.post("/api/v1/costs/", cost(project, external_id="inv-1"), format="json")
    assert response.status_code == 409
    assert CostEntry.objects.count() == 1


def test_viewer_cannot_record_or_delete_costs(project):
    entry = CostEntryFactory(project=project)
    viewer = as_role(project.organization, Role.VIEWER)
    assert viewer.post("/api/v1/costs/", cost(project), format="json").status_code == 403
    assert viewer.delete(f"/api/v1/costs/{entry.pk}/").status_code == 403
    assert CostEntry.objects.count() == 1


def test_contributor_corrects_and_deletes_a_cost(project):
    entry = CostEntryFactory(project=project)
    client = as_role(project.organization)
    response = client.patch(f"/api/v1/costs/{entry.pk}/", {"amount": "99.00"}, format="json")
    assert response.status_code == 200
    entry.refresh_from_db()
    assert entry.amount == Decimal("99.00")
    assert client.delete(f"/api/v1/costs/{entry.pk}/").status_code == 204
    assert not CostEntry.objects.exists()


def test_costs_filter_by_date_range_and_category(project):
    CostEntryFactory(project=project, date=dt.date(2026, 1, 5), category="storage")
    CostEntryFactory(project=project, date=dt.date(2026, 2, 5), category="inference")
    client = as_role(project.organization, Role.VIEWER)
    assert client.get("/api/v1/costs/?date_after=2026-02-01").json()["count"] == 1
    assert client.get("/api/v1/costs/?category=storage&date_before=2026-01-31").json()["count"] == 1
    assert client.get("/api/v1/costs/?date_after=yesterday").status_code == 400


# --- bulk ---------------------------------------------------------------------------------------


def test_bulk_records_every_entry(project):
    entries = [cost(project, external_id=f"inv-{i}", amount=f"{i}.25") for i in range(5)]
    response = as_role(project.organization).post("/api/v1/costs/bulk/", {"entries": entries}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["created"] == 5 and body["existing"] == [] and len(body["created_ids"]) == 5
    assert sorted(CostEntry.objects.values_list("amount", flat=True)) == [Decimal(f"{i}.25") for i in range(5)]
    assert set(CostEntry.objects.values_list("source", flat=True)) == {CostSource.API}


def test_one_bad_row_refuses_the_whole_batch_naming_each_bad_row(project):
    entries = [
        cost(project),
        cost(project, amount="-3"),
        cost(project, category="snacks", date="2026-02-30"),
        cost(project, likelihood=3),
        "not an object",
    ]
    response = as_role(project.organization).post("/api/v1/costs/bulk/", {"entries": entries}, format="json")
    assert response.status_code == 400
    assert error_fields(response) == {
        "entries.1.amount",
        "entries.2.category",
        "entries.2.date",
        "entries.3.likelihood",
        "entries.4",
    }
    assert not CostEntry.objects.exists()


def test_resending_a_batch_creates_nothing_and_says_which_were_there(project):
    client = as_role(project.organization)
    first = [cost(project, external_id="a"), cost(project, external_id="b")]
    client.post("/api/v1/costs/bulk/", {"entries": first}, format="json")
    again = [cost(project, external_id="a"), cost(project, external_id="c"), cost(project, external_id="b")]
    response = client.post("/api/v1/costs/bulk/", {"entries": again}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["created"] == 1
    assert [(row["index"], row["external_id"]) for row in body["existing"]] == [(0, "a"), (2, "b")]
    assert sorted(CostEntry.objects.values_list("external_id", flat=True)) == ["a", "b", "c"]
    response = client.post("/api/v1/costs/bulk/", {"entries": again}, format="json")
    assert response.status_code == 200 and response.json()["created"] == 0
    assert CostEntry.objects.count() == 3


def test_an_external_id_twice_in_one_batch_is_refused(project):
    entries = [cost(project, external_id="a"), cost(project, external_id="a")]
    response = as_role(project.organization).post("/api/v1/costs/bulk/", {"entries": entries}, format="json")
    assert response.status_code == 400 and error_fields(response) == {"entries.1.external_id"}
    assert not CostEntry.objects.exists()


def test_bulk_rows_for_another_organizations_project_are_unknown(project):
    foreign = ProjectFactory()
    entries = [cost(project), cost(foreign)]
    response = as_role(project.organization).post("/api/v1/costs/bulk/", {"entries": entries}, format="json")
    assert response.status_code == 400 and error_fields(response) == {"entries.1.project"}
    assert not CostEntry.objects.exists()


def test_bulk_by_a_viewer_is_refused(project):
    response = as_role(project.organization, Role.VIEWER).post(
        "/api/v1/costs/bulk/", {"entries": [cost(project)]}, format="json"
    )
    assert response.status_code == 403
    assert not CostEntry.objects.exists()


@pytest.mark.parametrize(
    "body",
    [{"entries": []}, {"entries": {"project": 1}}, {"rows": []}, {"entries": [], "extra": 1}, [1, 2]],
)
def test_bulk_body_must_be_an_object_with_a_list_of_entries(project, body):
    response = as_role(project.organization).post("/api/v1/costs/bulk/", body, format="json")
    assert response.status_code == 400


def test_bulk_accepts_10000_rows_and_refuses_10001(project):
    client = as_role(project.organization)
    entries = [cost(project, external_id=f"row-{i}") for i in range(10_000)]
    response = client.post("/api/v1/costs/bulk/", {"entries": entries}, format="json")
    assert response.status_code == 201 and response.json()["created"] == 10_000
    response = client.post("/api/v1/costs/bulk/", {"entries": [*entries, cost(project)]}, format="json")
    assert response.status_code == 400 and "entries" in error_fields(response)
    assert CostEntry.objects.count() == 10_000


def test_bulk_runs_a_fixed_number_of_queries(project, django_assert_max_num_queries):
    client = as_role(project.organization)
    with django_assert_max_num_queries(12):
        client.post("/api/v1/costs/bulk/", {"entries": [cost(project, external_id=f"{i}") for i in range(2)]})
    with django_assert_max_num_queries(12):
        client.post("/api/v1/costs/bulk/", {"entries": [cost(project, external_id=f"x{i}") for i in range(500)]})


# --- usage --------------------------------------------------------------------------------------


def usage(project, **fields):
    return {
        "project": project.pk,
        "date": "2026-03-01",
        "model": "gpt-4o",
        "input_tokens": 2_000_000,
        "output_tokens": 500_000,
        **fields,
    }


def test_usage_is_priced_with_the_price_valid_on_its_date(project):
    org = project.organization
    old = ModelPriceFactory(organization=org, valid_from=dt.date(2025, 1, 1), input_per_mtok=Decimal("5"))
    new = ModelPriceFactory(
        organization=org,
        valid_from=dt.date(2026, 2, 1),
        input_per_mtok=Decimal("2.50"),
        output_per_mtok=Decimal("10"),
        cached_input_per_mtok=Decimal("1.25"),
    )
    rows = [usage(project, date="2026-01-15"), usage(project, cached_input_tokens=1_000_000, external_id="gw-1")]
    response = as_role(org).post("/api/v1/usage/", {"entries": rows}, format="json")
    assert response.status_code == 201, response.json()
    january, march = CostEntry.objects.order_by("date")
    assert (january.price, january.amount) == (old, Decimal("15.0000"))  # 2 × 5 + 0.5 × 10
    assert (march.price, march.amount) == (new, Decimal("11.2500"))  # 2 × 2.5 + 0.5 × 10 + 1 × 1.25
    assert {e.category for e in (january, march)} == {"inference"}
    assert {e.source for e in (january, march)} == {CostSource.USAGE}


def test_usage_of_an_unknown_model_or_before_any_price_is_kept_unpriced(project):
    ModelPriceFactory(organization=project.organization, valid_from=dt.date(2026, 1, 1))
    ModelPriceFactory(model="claude-x")  # another organization's price does not count
    rows = [usage(project), usage(project, model="claude-x"), usage(project, date="2025-06-30")]
    response = as_role(project.organization).post("/api/v1/usage/", {"entries": rows}, format="json")
    assert response.status_code == 201, response.json()
    priced, unknown, early = (CostEntry.objects.get(pk=pk) for pk in response.json()["created_ids"])
    assert priced.amount is not None and priced.provider == "openai"
    assert (unknown.amount, unknown.price, unknown.provider) == (None, None, "")
    assert (early.amount, early.price, early.provider) == (None, None, "openai")


def test_usage_resend_is_idempotent(project):
    ModelPriceFactory(organization=project.organization)
    client = as_role(project.organization)
    body = {"entries": [usage(project, external_id="gw-2026-03-01")]}
    assert client.post("/api/v1/usage/", body, format="json").status_code == 201
    response = client.post("/api/v1/usage/", body, format="json")
    assert response.status_code == 200 and response.json()["existing"][0]["external_id"] == "gw-2026-03-01"
    assert CostEntry.objects.count() == 1


@pytest.mark.parametrize(
    "fields, field",
    [({"input_tokens": -1}, "input_tokens"), ({"output_tokens": 1.5}, "output_tokens"), ({"model": ""}, "model")],
)
def test_bad_usage_rows_are_refused(project, fields, field):
    ModelPriceFactory(organization=project.organization)
    response = as_role(project.organization).post("/api/v1/usage/", {"entries": [usage(project, **fields)]})
    assert response.status_code == 400
    assert f"entries.0.{field}" in error_fields(response) or field == "model"
    assert not CostEntry.objects.exists()


def test_usage_costs_only_take_a_new_description(project):
    ModelPriceFactory(organization=project.organization)
    client = as_role(project.organization)
    client.post("/api/v1/usage/", {"entries": [usage(project)]}, format="json")
    entry = CostEntry.objects.get()
    assert client.patch(f"/api/v1/costs/{entry.pk}/", {"amount": "0.01"}, format="json").status_code == 400
    assert client.patch(f"/api/v1/costs/{entry.pk}/", {"description": "Nightly"}, format="json").status_code == 200


def test_usage_for_projects_of_two_organizations_the_caller_belongs_to(project):
    other = ProjectFactory()
    user = member(project.organization)
    MembershipFactory(user=user, organization=other.organization, role=Role.CONTRIBUTOR)
    ModelPriceFactory(organization=project.organization)
    ModelPriceFactory(organization=other.organization, input_per_mtok=Decimal("1"), output_per_mtok=Decimal("1"))
    response = client_for(user).post("/api/v1/usage/", {"entries": [usage(project), usage(other)]}, format="json")
    assert response.status_code == 201
    assert CostEntry.objects.get(project=other).amount == Decimal("2.5000")
