"""Streamed exports: costs, usage and risks as CSV/NDJSON, costs as FOCUS 1.0 (ops/exports.py, ops/focus.py)."""

import csv
import datetime as dt
import importlib.util
import io
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext

from ops.models import CostCategory, CostSource
from ops.tests.factories import CostEntryFactory, ModelPriceFactory, RiskFactory
from projects.models import Role
from projects.tests.api_support import _fresh_throttle, as_role, client_for  # noqa: F401
from projects.tests.factories import OrganizationFactory, ProjectFactory, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    return OrganizationFactory(name="Acme", slug="acme", currency="EUR")


@pytest.fixture
def project(org):
    return ProjectFactory(organization=org, name="Support bot", slug="support-bot")


@pytest.fixture
def other_project():
    return ProjectFactory(organization=OrganizationFactory(currency="JPY"), slug="rival")


def body(response) -> str:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content).decode()


def rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(body(response))))


def test_cost_csv_streams_the_filtered_rows_with_the_currency(project, other_project):
    inside = CostEntryFactory(project=project, date=dt.date(2026, 3, 10), amount=Decimal("12.3456"))
    CostEntryFactory(project=project, date=dt.date(2026, 2, 28))  # before date_after
    CostEntryFactory(project=project, date=dt.date(2026, 4, 1))  # after date_before
    CostEntryFactory(project=other_project, date=dt.date(2026, 3, 10))  # another organization's

    response = as_role(project.organization, Role.VIEWER).get(
        "/api/v1/costs/export/", {"date_after": "2026-03-01", "date_before": "2026-03-31", "format": "csv"}
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="costs-')
    assert [(r["id"], r["date"], r["amount"], r["currency"], r["project_slug"]) for r in rows(response)] == [
        (str(inside.pk), "2026-03-10", "12.3456", "EUR", "support-bot")
    ]


def test_formula_cells_are_escaped_in_the_csv(project):
    CostEntryFactory(project=project, description='=HYPERLINK("http://evil")', model="@SUM(A1)")

    [row] = rows(as_role(project.organization).get("/api/v1/costs/export/"))

    assert (row["description"], row["model"]) == ('\'=HYPERLINK("http://evil")', "'@SUM(A1)")


def test_ndjson_parses_line_by_line_with_raw_decimals(project):
    priced = CostEntryFactory(project=project, amount=Decimal("0.0001"), source=CostSource.API)
    unpriced = CostEntryFactory(project=project, amount=None, source=CostSource.USAGE, model="gpt-x")

    response = as_role(project.organization).get("/api/v1/costs/export/", {"format": "ndjson"})

    assert response["Content-Type"] == "application/x-ndjson"
    lines = body(response).splitlines()
    parsed = [json.loads(line) for line in lines]
    assert [(r["id"], r["amount"], r["currency"]) for r in parsed] == [
        (priced.pk, "0.0001", "EUR"),
        (unpriced.pk, None, "EUR"),
    ]
    assert parsed[0]["date"] == "2026-03-15" and parsed[0]["updated_at"].endswith("Z")


def test_usage_export_holds_only_usage_rows(project):
    usage = CostEntryFactory(project=project, source=CostSource.USAGE, model="gpt-4o", input_tokens=1200)
    CostEntryFactory(project=project, source=CostSource.MANUAL)

    [row] = rows(as_role(project.organization).get("/api/v1/usage/export/"))

    assert (row["id"], row["model"], row["input_tokens"], row["currency"]) == (str(usage.pk), "gpt-4o", "1200", "EUR")


def test_risk_export_is_the_callers_register(project, other_project):
    mine = RiskFactory(project=project, title="+cmd|' /C calc'!A0", likelihood=4, impact=5)
    RiskFactory(project=other_project)

    response = as_role(project.organization, Role.VIEWER).get("/api/v1/risks/export/", {"format": "csv"})

    [row] = rows(response)
    assert (row["id"], row["title"], row["score"], row["severity"]) == (
        str(mine.pk),
        "'+cmd|' /C calc'!A0",
        "20",
        "critical",
    )
    ndjson = as_role(project.organization).get("/api/v1/risks/export/", {"format": "ndjson"})
    assert [json.loads(line)["id"] for line in body(ndjson).splitlines()] == [mine.pk]


def test_another_organizations_rows_never_appear(project, other_project):
    CostEntryFactory(project=other_project, description="rival secret")
    RiskFactory(project=other_project, title="rival risk")
    client = as_role(project.organization)

    for path in ("/api/v1/costs/export/", "/api/v1/usage/export/", "/api/v1/risks/export/"):
        for export_format in ("csv", "ndjson"):
            text = body(client.get(path, {"format": export_format}))
            assert "rival" not in text, (path, export_format)
    assert "rival" not in body(client.get("/api/v1/costs/export/", {"format": "focus"}))


def test_filtering_on_another_organizations_project_finds_nothing(project, other_project):
    CostEntryFactory(project=other_project)

    response = as_role(project.organization).get("/api/v1/costs/export/", {"project": other_project.pk})

    assert response.status_code == 200
    assert rows(response) == []


def test_anonymous_and_bad_token_callers_are_refused(project):
    from rest_framework.test import APIClient

    CostEntryFactory(project=project)
    assert APIClient().get("/api/v1/costs/export/").status_code == 401
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert client.get("/api/v1/costs/export/").status_code == 401


@pytest.mark.parametrize(
    "params, field",
    [
        ({"format": "xlsx"}, "format"),
        ({"format": "focus"}, None),  # valid for costs, refused for risks below
        ({"date_after": "yesterday"}, "date_after"),
        ({"bogus": "1"}, "bogus"),
    ],
)
def test_bad_query_strings_are_400s_in_the_error_shape(project, params, field):
    client = as_role(project.organization)
    if field is None:
        response = client.get("/api/v1/risks/export/", params)
        field = "format"
    else:
        response = client.get("/api/v1/costs/export/", params)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert field in response.json()["errors"]


def test_exports_count_against_the_expensive_rate(project, settings):
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "expensive": "2/minute"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    client = as_role(project.organization)

    statuses = [client.get("/api/v1/costs/export/").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]


def test_query_count_does_not_grow_with_the_rows(project):
    client = as_role(project.organization)

    def queries(count: int) -> int:
        CostEntryFactory.create_batch(count, project=project)
        with CaptureQueriesContext(connection) as captured:
            body(client.get("/api/v1/costs/export/", {"format": "focus"}))
        return len(captured)

    queries(0)  # the token's first use is recorded once
    assert queries(1) == queries(30)


def test_focus_export_is_accepted_by_focus_validator(project, tmp_path):
    price = ModelPriceFactory(organization=project.organization, provider="OpenAI")
    CostEntryFactory(
        project=project,
        source=CostSource.USAGE,
        model="gpt-4o",
        price=price,
        input_tokens=1000,
        output_tokens=500,
        amount=Decimal("0.0075"),
    )
    CostEntryFactory(project=project, category=CostCategory.STORAGE, amount=Decimal("40.00"), description="S3")
    CostEntryFactory(project=project, date=dt.date(2026, 12, 31), category=CostCategory.PERSONNEL)
    unpriced = CostEntryFactory(project=project, source=CostSource.USAGE, amount=None, model="gpt-x")

    response = as_role(project.organization).get("/api/v1/costs/export/", {"format": "focus"})

    text = body(response)
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert len(parsed) == 3 and str(unpriced.pk) not in {r["x_CostEntryId"] for r in parsed}  # FOCUS needs a cost
    assert {r["BillingCurrency"] for r in parsed} == {"EUR"}
    assert {r["Tags"] for r in parsed} == {'{"tracker_project": "support-bot"}'}
    december = next(r for r in parsed if r["ChargePeriodStart"].startswith("2026-12-31"))
    assert (december["ChargePeriodEnd"], december["BillingPeriodEnd"]) == ("2027-01-01T00:00:00Z",) * 2
    assert all(name[0].isupper() or name.startswith("x_") for name in parsed[0])

    path = tmp_path / "costs.csv"
    path.write_text(text)
    assert_focus_valid(path)


def assert_focus_valid(path: Path) -> None:
    """Run the real focus-validator CLI on `path` (FOCUS 1.0 rules); it prints failures and exits 0 either way."""
    # It reads its currency list from a path relative to its package's parent directory.
    package = Path(importlib.util.find_spec("focus_validator").origin).parent  # found, not imported (pandas)
    executable = Path(sys.executable).parent / "focus-validator"
    result = subprocess.run(
        [str(executable), "--data-file", str(path), "--validate-version", "1.0"],
        cwd=package.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.strip().endswith("Validation succeeded."), result.stdout + result.stderr


def test_the_validator_does_fail_a_broken_focus_file(project, tmp_path):
    CostEntryFactory(project=project)
    text = body(as_role(project.organization).get("/api/v1/costs/export/", {"format": "focus"}))
    path = tmp_path / "broken.csv"
    path.write_text(text.replace(",EUR,", ",EURO,"))

    with pytest.raises(AssertionError, match="BillingCurrency"):
        assert_focus_valid(path)


def test_a_member_of_two_organizations_gets_each_rows_currency(project, other_project):
    user = member(project.organization, Role.VIEWER)
    from projects.tests.factories import MembershipFactory

    MembershipFactory(user=user, organization=other_project.organization, role=Role.VIEWER)
    CostEntryFactory(project=project)
    CostEntryFactory(project=other_project)

    exported = rows(client_for(user).get("/api/v1/costs/export/"))

    assert sorted((r["project_slug"], r["currency"]) for r in exported) == [("rival", "JPY"), ("support-bot", "EUR")]


def test_the_project_page_offers_managers_the_downloads_that_work_with_their_session(client, project, other_project):
    CostEntryFactory(project=project, amount=Decimal("7.5000"))
    CostEntryFactory(project=other_project)
    manager = member(project.organization, Role.MANAGER)
    client.force_login(manager)

    page = client.get(project.get_absolute_url()).content.decode()

    link = f"/api/v1/costs/export/?project={project.pk}&amp;format=focus"
    assert link in page
    download = client.get(link.replace("&amp;", "&"))
    assert download.status_code == 200
    assert [r["BilledCost"] for r in csv.DictReader(io.StringIO(body(download)))] == ["7.5000"]
    client.force_login(member(project.organization, Role.VIEWER))
    assert "/api/v1/costs/export/" not in client.get(project.get_absolute_url()).content.decode()
