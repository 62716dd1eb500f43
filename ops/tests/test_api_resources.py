"""Infrastructure, budgets, model prices, quality metrics, risks and reports through the API."""

import datetime as dt
from decimal import Decimal

import pytest

from ops.models import Budget, InfrastructureComponent, ModelPrice, QualityMetric, Report, ReportState, Risk
from ops.tests.factories import (
    BudgetFactory,
    CostEntryFactory,
    ModelPriceFactory,
    ReportFactory,
    RiskFactory,
)
from projects.models import Role
from projects.tests.api_support import _fresh_throttle, as_role, error_fields  # noqa: F401
from projects.tests.factories import OrganizationFactory, ProjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return ProjectFactory(organization=OrganizationFactory(name="Acme"))


def test_infrastructure_create_update_delete(project):
    client = as_role(project.organization)
    body = {
        "project": project.pk,
        "name": "Llama on vLLM",
        "kind": "foundation_model",
        "provider": "on_premises",
        "hosting": "local",
        "frameworks": ["vLLM", "LangChain"],
        "gpu_type": "A100",
        "gpu_count": 4,
    }
    response = client.post("/api/v1/infrastructure/", body, format="json")
    assert response.status_code == 201, response.json()
    pk = response.json()["id"]
    assert client.patch(f"/api/v1/infrastructure/{pk}/", {"environment": "production"}).status_code == 200
    assert InfrastructureComponent.objects.get().environment == "production"
    assert client.get("/api/v1/infrastructure/?provider=on_premises").json()["count"] == 1
    assert client.delete(f"/api/v1/infrastructure/{pk}/").status_code == 204
    assert not InfrastructureComponent.objects.exists()


@pytest.mark.parametrize(
    "fields, field",
    [({"provider": "oracle"}, "provider"), ({"gpu_count": -1}, "gpu_count"), ({"frameworks": "vLLM"}, "frameworks")],
)
def test_bad_infrastructure_is_refused(project, fields, field):
    body = {"project": project.pk, "name": "x", "kind": "compute", "provider": "aws", **fields}
    response = as_role(project.organization).post("/api/v1/infrastructure/", body, format="json")
    assert response.status_code == 400 and field in error_fields(response)
    assert not InfrastructureComponent.objects.exists()


def test_budgets_are_managed_by_managers_only(project):
    body = {"project": project.pk, "period_start": "2026-01-01", "period_end": "2026-12-31", "amount": "50000"}
    assert as_role(project.organization).post("/api/v1/budgets/", body, format="json").status_code == 403
    manager = as_role(project.organization, Role.MANAGER)
    response = manager.post("/api/v1/budgets/", body, format="json")
    assert response.status_code == 201
    pk = response.json()["id"]
    assert manager.patch(f"/api/v1/budgets/{pk}/", {"amount": "60000"}).status_code == 200
    assert Budget.objects.get().amount == Decimal("60000")
    assert manager.patch(f"/api/v1/budgets/{pk}/", {"period_end": "2025-01-01"}).status_code == 400
    assert manager.get("/api/v1/budgets/?active_on=2026-06-01").json()["count"] == 1
    assert manager.delete(f"/api/v1/budgets/{pk}/").status_code == 204


def test_model_prices_managers_only_and_used_prices_are_frozen(project):
    org = project.organization
    body = {
        "provider": "OpenAI",
        "model": "gpt-4o",
        "input_per_mtok": "2.5",
        "output_per_mtok": "10",
        "valid_from": "2026-01-01",
    }
    assert as_role(org).post("/api/v1/model-prices/", body, format="json").status_code == 403
    manager = as_role(org, Role.MANAGER)
    response = manager.post("/api/v1/model-prices/", body, format="json")
    assert response.status_code == 201, response.json()
    assert manager.post("/api/v1/model-prices/", body, format="json").status_code == 409
    price = ModelPrice.objects.get()
    CostEntryFactory(project=project, price=price, source="usage")
    assert manager.patch(f"/api/v1/model-prices/{price.pk}/", {"input_per_mtok": "1"}).status_code == 409
    assert manager.delete(f"/api/v1/model-prices/{price.pk}/").status_code == 409
    assert manager.patch(f"/api/v1/model-prices/{price.pk}/", {"deprecation_date": "2027-01-01"}).status_code == 200
    price.refresh_from_db()
    assert price.input_per_mtok == Decimal("2.5") and price.deprecation_date == dt.date(2027, 1, 1)


def test_unused_price_can_be_corrected_and_deleted(project):
    price = ModelPriceFactory(organization=project.organization)
    manager = as_role(project.organization, Role.MANAGER)
    assert manager.patch(f"/api/v1/model-prices/{price.pk}/", {"output_per_mtok": "-1"}).status_code == 400
    assert manager.patch(f"/api/v1/model-prices/{price.pk}/", {"output_per_mtok": "12"}).status_code == 200
    assert manager.delete(f"/api/v1/model-prices/{price.pk}/").status_code == 204


def test_quality_metric_direction_defaults_to_the_metrics_usual_one(project):
    client = as_role(project.organization)
    body = {"project": project.pk, "date": "2026-03-01", "metric": "hallucination_rate", "value": 0.04}
    response = client.post("/api/v1/metrics/", body, format="json")
    assert response.status_code == 201 and response.json()["higher_is_better"] is False
    custom = {"project": project.pk, "date": "2026-03-01", "metric": "custom", "value": 1}
    assert client.post("/api/v1/metrics/", custom, format="json").status_code == 400
    assert QualityMetric.objects.count() == 1


@pytest.mark.parametrize("likelihood", [0, 6, "high", None])
def test_risk_with_likelihood_out_of_range_is_refused(project, likelihood):
    body = {"project": project.pk, "title": "t", "category": "security", "likelihood": likelihood, "impact": 3}
    response = as_role(project.organization).post("/api/v1/risks/", body, format="json")
    assert response.status_code == 400 and "likelihood" in error_fields(response)
    assert not Risk.objects.exists()


def test_risk_create_scores_and_reassesses(project):
    client = as_role(project.organization)
    body = {
        "project": project.pk,
        "title": "Prompt injection through tickets",
        "category": "security",
        "likelihood": 4,
        "impact": 5,
        "owasp_refs": ["LLM01"],
    }
    response = client.post("/api/v1/risks/", body, format="json")
    assert response.status_code == 201, response.json()
    risk = response.json()
    assert (risk["score"], risk["severity"], risk["status"]) == (20, "critical", "open")
    response = client.patch(f"/api/v1/risks/{risk['id']}/", {"likelihood": 2, "note": "Input filter live"})
    assert response.status_code == 200 and response.json()["severity"] == "high"
    assert Risk.objects.get().assessments.count() == 2
    assert client.patch(f"/api/v1/risks/{risk['id']}/", {"status": "closed"}).status_code == 400
    assert client.post("/api/v1/risks/", {**body, "owasp_refs": ["LLM11"]}, format="json").status_code == 400


def test_portfolio_wide_risk_belongs_to_the_organization(project):
    body = {"organization": project.organization.pk, "title": "One vendor", "category": "vendor_lock_in"}
    body |= {"likelihood": 3, "impact": 4}
    response = as_role(project.organization).post("/api/v1/risks/", body, format="json")
    assert response.status_code == 201 and response.json()["project"] is None


def test_only_managers_accept_risks_and_anyone_contributing_closes(project):
    risk = RiskFactory(project=project)
    body = {"justification": "Low exposure", "expires": (dt.date.today() + dt.timedelta(days=90)).isoformat()}
    url = f"/api/v1/risks/{risk.pk}/"
    assert as_role(project.organization).post(url + "accept/", body, format="json").status_code == 403
    response = as_role(project.organization, Role.MANAGER).post(url + "accept/", body, format="json")
    assert response.status_code == 200 and response.json()["status"] == "accepted"
    assert as_role(project.organization).post(url + "close/", {}, format="json").status_code == 400
    # An accepted risk is reopened (which ends the acceptance) before it is closed.
    assert as_role(project.organization).post(url + "close/", {"note": "Gone"}, format="json").status_code == 409
    assert as_role(project.organization).patch(url, {"status": "open"}, format="json").status_code == 200
    response = as_role(project.organization).post(url + "close/", {"note": "Feature removed"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "closed"
    assert as_role(project.organization).delete(url).status_code == 405


def test_risks_filter_by_severity_and_status(project):
    RiskFactory(project=project, likelihood=5, impact=5)
    RiskFactory(project=project, likelihood=1, impact=1)
    client = as_role(project.organization, Role.VIEWER)
    assert client.get("/api/v1/risks/?severity=critical").json()["count"] == 1
    assert client.get("/api/v1/risks/?status=open&ordering=-score").json()["results"][0]["score"] == 25
    assert client.get("/api/v1/risks/?severity=dreadful").status_code == 400


def test_manager_requests_a_report_and_it_is_stored_pending(project):
    body = {"kind": "risk", "period_start": "2026-03-02", "period_end": "2026-03-08"}
    assert as_role(project.organization).post("/api/v1/reports/", body, format="json").status_code == 403
    manager = as_role(project.organization, Role.MANAGER)
    response = manager.post("/api/v1/reports/", body, format="json")
    assert response.status_code == 202
    assert response.json()["state"] == "pending" and response.json()["data"] is None
    again = manager.post("/api/v1/reports/", body, format="json")
    assert again.json()["id"] == response.json()["id"]
    assert Report.objects.count() == 1
    bad = manager.post("/api/v1/reports/", {**body, "period_end": "2026-03-01"}, format="json")
    assert bad.status_code == 400 and Report.objects.count() == 1


def test_report_data_shows_only_once_ready(project):
    pending = ReportFactory(organization=project.organization, data={"draft": True})
    ready = ReportFactory(
        organization=project.organization, kind="risk", state=ReportState.READY, data={"top_risks": []}
    )
    client = as_role(project.organization, Role.VIEWER)
    assert client.get(f"/api/v1/reports/{pending.pk}/").json()["data"] is None
    assert client.get(f"/api/v1/reports/{ready.pk}/").json()["data"] == {"top_risks": []}
    assert client.patch(f"/api/v1/reports/{ready.pk}/", {"state": "failed"}).status_code == 405


def test_budget_list_shows_only_the_callers_organizations(project):
    BudgetFactory(project=project)
    BudgetFactory()
    assert as_role(project.organization, Role.VIEWER).get("/api/v1/budgets/").json()["count"] == 1
