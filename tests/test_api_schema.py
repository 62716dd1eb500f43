"""The OpenAPI schema validates, and a schema-driven fuzz run finds no 5xx and no off-schema answer."""

import datetime as dt
from io import StringIO

import pytest
import schemathesis
from django.core import signals
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ops.tests.factories import BudgetFactory, CostEntryFactory, ModelPriceFactory, ReportFactory, RiskFactory
from projects.models import Role
from projects.services import api_token_create
from projects.tests.api_support import _fresh_throttle, member  # noqa: F401
from projects.tests.factories import OrganizationFactory, ProjectFactory, TeamFactory

# Django's WSGI handler, not tracker.wsgi's: that would put the web processes' statement ceiling on this
# pytest process's connections (tracker/db.py).
application = get_wsgi_application()


def test_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out), stderr=StringIO())
    text = out.read_text()
    for path in ("/api/v1/costs/bulk/", "/api/v1/usage/", "/api/v1/projects/{id}/transition/", "/api/v1/reports/"):
        assert path in text
    assert "ErrorResponse" in text or "Error" in text


@pytest.mark.django_db
def test_schema_and_swagger_ui_are_served(client):
    assert client.get("/api/schema/").status_code == 200
    page = client.get("/api/docs/")
    assert page.status_code == 200 and b"swagger" in page.content.lower() and b"cdn" not in page.content.lower()


@pytest.fixture
def wsgi_keeps_test_connection(db):
    """Keep the test's database connection open across WSGI requests, as Django's test client does."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


# Loaded from the running app's own /api/schema/ (no database needed to serve it).
fuzz = schemathesis.openapi.from_wsgi("/api/schema/", application)
# The coverage phase alone sends thousands of boundary requests; the fuzzing phase (valid and invalid
# data) and the schema's examples keep the run to a few hundred.
fuzz.config.phases.coverage.enabled = False


@pytest.fixture
def portfolio_token(wsgi_keeps_test_connection):
    """An admin's token over a small portfolio, so generated ids sometimes hit real rows."""
    organization = OrganizationFactory(name="Fuzz Co")
    for _ in range(3):
        project = ProjectFactory(organization=organization)
        CostEntryFactory(project=project)
        BudgetFactory(project=project)
        RiskFactory(project=project)
    TeamFactory(organization=organization)
    ModelPriceFactory(organization=organization, valid_from=dt.date(2020, 1, 1))
    ReportFactory(organization=organization)
    return api_token_create(user=member(organization, Role.ADMIN), name="fuzz")[1]


# About 70 operations × 6 examples: a few hundred authenticated requests.
@fuzz.parametrize()
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_generated_requests_get_no_5xx_and_answers_match_the_schema(case, portfolio_token):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {portfolio_token}"},
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
