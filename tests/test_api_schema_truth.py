"""The OpenAPI schema tells the truth: Spectral finds nothing, and what it says is what the API answers.

Every API answer of the suite is also validated against it (tests/openapi_check.py); these tests pin the
points an integrator's tools tripped on (issue 14), and that the validation itself catches a lie.
"""

import datetime as dt
import json
import shutil
import subprocess  # nosec B404: runs the pinned Spectral over a file this test writes
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.http import JsonResponse
from django.test import RequestFactory
from kombu.exceptions import OperationalError as KombuOperationalError
from rest_framework.test import APIClient

from ops.models import Report, ReportState
from ops.tests.factories import CostEntryFactory
from projects.models import Role
from projects.tests.api_support import _fresh_throttle, as_role, member  # noqa: F401
from projects.tests.factories import OrganizationFactory, ProjectFactory
from tests.openapi_check import api_schema, response_check

ROOT = Path(settings.BASE_DIR)
SPECTRAL = ROOT / "node_modules" / ".bin" / "spectral"
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def schema() -> dict:
    return api_schema()


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def component(schema: dict, ref: str) -> dict:
    return schema["components"]["schemas"][ref.rpartition("/")[2]]


def codes(schema: dict, error: dict) -> list[str]:
    """Return the enum of an error component's `code` (a named enum component)."""
    return component(schema, error["properties"]["code"]["allOf"][0]["$ref"])["enum"]


def error_ref(operation: dict, status: str) -> str:
    """Return the error component of a status (the first of a oneOf: a refused move's, before the key's 409)."""
    schema = operation["responses"][status]["content"]["application/json"]["schema"]
    return schema["oneOf"][0]["$ref"] if "oneOf" in schema else schema["$ref"]


def test_spectral_oas_finds_nothing_but_trailing_slashes(schema, tmp_path):
    assert SPECTRAL.exists(), "node_modules is missing: run `npm ci` (make test does)"
    target = tmp_path / "schema.json"
    target.write_text(json.dumps(schema))
    run = subprocess.run(  # nosec B603: fixed arguments
        [str(SPECTRAL), "lint", str(target), "--ruleset", str(ROOT / ".spectral.yaml"), "--format", "json", "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    findings = json.loads(run.stdout or "[]")
    others = [(f["code"], f["severity"], f["path"][:4], f["message"]) for f in findings]
    others = [f for f in others if f[0] != "path-keys-no-trailing-slash"]
    assert others == [], others
    # Django's convention: every path ends with a slash, the one warning allowed.
    assert {f["severity"] for f in findings} <= {1}
    ruleset = (ROOT / ".spectral.yaml").read_text()
    assert "spectral:oas" in ruleset and shutil.which("node")


def test_every_operation_has_a_description_a_tag_and_its_errors(schema):
    tags = {tag["name"] for tag in schema["tags"]}
    for path, method, operation in operations(schema):
        assert operation.get("description"), (method, path)
        assert operation["tags"] and set(operation["tags"]) <= tags, (method, path)
        statuses = set(operation["responses"])
        assert {"401", "403", "404", "429", "503"} <= statuses, (method, path)
        if method != "delete":
            assert "400" in statuses, (method, path)
        if method in {"post", "put", "patch"}:
            assert {"409", "413", "415"} <= statuses, (method, path)
        if method == "post":
            assert "422" in statuses, (method, path)  # an Idempotency-Key sent again with another body
        for status, response in operation["responses"].items():
            headers = response.get("headers", {})
            assert "X-Request-ID" in headers, (method, path, status)
            assert ("WWW-Authenticate" in headers) == (status == "401"), (method, path, status)
            assert ("Retry-After" in headers) == (status == "429"), (method, path, status)
            assert ("RateLimit-Remaining" in headers) == (status not in {"401", "406", "413"}), (method, path, status)
            assert response["description"], (method, path, status)
    exports = schema["paths"]["/api/v1/costs/export/"]["get"]["responses"]
    assert "406" not in exports  # ?format= picks the file; nothing is negotiated from Accept
    assert "406" in schema["paths"]["/api/v1/costs/"]["get"]["responses"]
    assert set(schema["components"]["headers"]) >= {
        "X-Request-ID",
        "Retry-After",
        "WWW-Authenticate",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
    }


def test_conflicts_have_their_own_component_and_transitions_theirs(schema):
    conflict = component(schema, error_ref(schema["paths"]["/api/v1/projects/"]["post"], "409"))
    assert codes(schema, conflict) == [
        "conflict",
        "too_many_pending_reports",
        "external_id_conflict",
        "idempotency_key_in_use",
    ]
    assert "missing" not in conflict["properties"]
    examples = schema["paths"]["/api/v1/projects/"]["post"]["responses"]["409"]["content"]["application/json"]
    assert {"SlugTaken", "ExternalIdRecorded", "PriceDateTaken", "PriceInUse", "LastAdmin"} <= set(examples["examples"])
    transition = schema["paths"]["/api/v1/projects/{id}/transition/"]["post"]
    refused = component(schema, error_ref(transition, "409"))
    assert codes(schema, refused) == ["transition_refused"] and "missing" in refused["required"]
    gate = component(schema, refused["properties"]["missing"]["items"]["$ref"])
    assert {"budget", "infrastructure", "risk_review"} <= set(gate["properties"]["key"]["enum"])


def test_every_error_code_is_an_enum_per_status_and_errors_name_real_keys(schema):
    costs = schema["paths"]["/api/v1/costs/bulk/"]["post"]
    invalid = component(schema, error_ref(costs, "400"))
    assert codes(schema, invalid) == ["invalid", "parse_error", "bad_request"]
    assert "entries.<index>.<field>" in invalid["properties"]["errors"]["description"]
    assert codes(schema, component(schema, error_ref(costs, "401"))) == [
        "not_authenticated",
        "authentication_failed",
        "token_expired",
    ]
    assert codes(schema, component(schema, error_ref(costs, "413"))) == ["request_too_large"]
    risk = schema["components"]["schemas"]["Risk"]["properties"]
    assert risk["severity"]["allOf"][0]["$ref"].endswith("/SeverityEnum")
    assert any(choice.get("$ref", "").endswith("/SignalRuleEnum") for choice in risk["signal_rule"]["oneOf"])
    event = schema["components"]["schemas"]["AuditEvent"]["properties"]
    assert "ops.risk" in event["object_type"]["enum"]


def test_fields_and_parameters_say_what_the_api_takes(schema):
    assert schema["components"]["schemas"]["CostEntry"]["properties"]["amount"]["nullable"] is True
    costs = {p["name"]: p["schema"] for p in schema["paths"]["/api/v1/costs/"]["get"]["parameters"]}
    assert costs["project"] == {"type": "integer"}
    assert costs["page_size"] == {"type": "integer", "minimum": 1, "maximum": 200}
    assert {"updated_at", "-updated_at", "date", "-amount"} <= set(costs["ordering"]["enum"])
    risks = {p["name"]: p["schema"] for p in schema["paths"]["/api/v1/risks/"]["get"]["parameters"]}
    assert risks["owner"] == risks["organization"] == {"type": "integer"}
    # A history lists its own parameters: its id and page numbers, not its parent list's filters.
    for path in ("/api/v1/projects/{id}/history/", "/api/v1/risks/{id}/history/"):
        names = [p["name"] for p in schema["paths"][path]["get"]["parameters"] if p["in"] != "header"]
        assert sorted(names) == ["id", "page", "page_size"], (path, names)


def test_one_creator_name_and_the_old_ones_deprecated(schema):
    components = schema["components"]["schemas"]
    for name, old in [
        ("Transition", "by"),
        ("StatusUpdate", "author"),
        ("Report", "requested_by"),
        ("AuditEvent", "actor"),
        ("Invitation", "invited_by"),
    ]:
        fields = components[name]["properties"]
        assert fields["created_by"]["type"] == "integer" and not fields["created_by"].get("deprecated"), name
        assert fields[old]["deprecated"] is True, name
    assert components["CostEntry"]["properties"]["created_by"]["type"] == "integer"


@pytest.mark.django_db
def test_aliases_carry_the_same_creator(org, project, manager):
    client = APIClient()
    client.force_authenticate(manager)
    created = client.post(
        "/api/v1/status-updates/",
        {"project": project.pk, "date": str(dt.date.today()), "health": "green", "progress": 10, "summary": "On track"},
    )
    assert created.status_code == 201, created.content
    assert created.json()["created_by"] == created.json()["author"] == manager.pk
    history = client.get(f"/api/v1/projects/{project.pk}/history/").json()["results"]
    assert history and all(event["created_by"] == event["actor"] for event in history)
    assert client.get(f"/api/v1/projects/{project.pk}/history/", {"cursor": "x"}).status_code == 400


@pytest.mark.django_db
def test_the_schema_is_served_as_json(client):
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200 and response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    assert json.loads(response.content)["components"]["headers"]["X-Request-ID"]


@pytest.mark.django_db
def test_a_body_over_the_limit_is_a_413_in_the_error_shape(org, settings):
    settings.MAX_REQUEST_BODY_BYTES = 100
    client = as_role(org)
    response = client.post("/api/v1/costs/bulk/", {"entries": [{"description": "x" * 200}]})
    assert response.status_code == 413
    assert response.json() == {
        "detail": response.json()["detail"],
        "code": "request_too_large",
        "errors": {},
    }
    assert response["X-Request-ID"]


@pytest.mark.django_db(transaction=True)  # the build is enqueued when the request's transaction commits
def test_a_report_refused_by_a_queue_down_names_the_saved_report(org):
    client = as_role(org, Role.MANAGER)
    monday = dt.date(2026, 3, 2)
    body = {"kind": "status", "period_start": str(monday), "period_end": str(monday + dt.timedelta(days=6))}
    with mock.patch("celery.canvas.Signature.delay", side_effect=KombuOperationalError("broker down")):
        response = client.post("/api/v1/reports/", body)
    assert response.status_code == 503
    answer = response.json()
    assert answer["code"] == "queue_unavailable"
    report = Report.objects.get(pk=answer["report"])
    assert report.state == ReportState.PENDING and report.organization == org
    assert client.get(f"/api/v1/reports/{answer['report']}/").status_code == 200


@pytest.mark.django_db
def test_the_response_check_catches_an_answer_off_the_schema():
    organization = OrganizationFactory()
    entry = CostEntryFactory(project=ProjectFactory(organization=organization))
    client = APIClient()
    client.force_authenticate(member(organization, Role.VIEWER))
    good = client.get(f"/api/v1/costs/{entry.pk}/")
    assert good.status_code == 200
    request = RequestFactory().get(f"/api/v1/costs/{entry.pk}/")
    lie = JsonResponse({**good.json(), "amount": 12.5}, status=200)  # a number where the schema says a decimal string
    lie.wsgi_request, lie["X-Request-ID"] = request, "abc"
    with pytest.raises(AssertionError, match=r"off the schema.*12\.5"):
        response_check(lie)
    unknown_code = JsonResponse({"detail": "x", "code": "teapot", "errors": {}}, status=404)
    unknown_code.wsgi_request, unknown_code["X-Request-ID"] = request, "abc"
    with pytest.raises(AssertionError, match="'teapot' is not one of"):
        response_check(unknown_code)
