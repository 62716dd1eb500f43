"""Tenant isolation of every URL of the site and the API, enumerated from the URL resolver.

Every pattern `django.urls.get_resolver()` knows is either exercised here or named in
`NOT_EXERCISED` with the reason; a new endpoint therefore fails
`test_every_url_pattern_is_exercised_or_allow_listed` until it is planned. Each pattern's
kwargs are filled with organization A's objects (a whole portfolio: every kind of row) and
each of GET, POST, PUT, PATCH and DELETE is tried as:

- an admin of organization B (a member of B only), by token and by session: A's objects
  answer 404 (never 403, never their data), writes naming A's rows are refused;
- a viewer of A: reads answer, writes answer 403;
- an anonymous client: the API answers 401 in JSON, the site redirects to the sign-in page;
- a revoked token of A's admin: 401.

After every request A's rows (all of them, field by field) must be as they were, and no
answer to an outsider may contain any of A's identifying strings: they all carry `MARK`.
"""

import dataclasses
import datetime as dt
import inspect
import io
import json
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.db.models import Model, Q
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, path, resolve, reverse
from rest_framework.test import APIClient

from ops.imports.jobs import import_file_run
from ops.imports.models import BilledCost, BillingMappingRule, ImportJob, MappingField
from ops.imports.rules import billing_rule_create
from ops.models import (
    Budget,
    BudgetThresholdCrossing,
    CostEntry,
    InfrastructureComponent,
    ModelPrice,
    QualityMetric,
    Report,
    ReportKind,
    ReportState,
    Risk,
    RiskAssessment,
)
from ops.services import (
    budget_create,
    cost_entry_create,
    infrastructure_component_create,
    model_price_create,
    quality_metric_create,
    report_request,
    risk_create,
)
from ops.services.reports import report_build
from projects import services
from projects.models import (
    ApiToken,
    AuditEvent,
    CostCentre,
    Invitation,
    Membership,
    NotificationSubscription,
    Organization,
    Project,
    Role,
    Stage,
    StageTransition,
    StatusUpdate,
    Team,
)
from projects.tests.api_support import _fresh_throttle  # noqa: F401
from projects.tests.factories import MembershipFactory, OrganizationFactory, ProjectFactory, UserFactory
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import webhook_endpoint_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _webhooks_to_loopback(settings, tmp_path):
    """A's webhook endpoint (and every posted one) points at 127.0.0.1: no name to resolve, no network.

    Uploaded import files (an outsider's, into B) are stored under a temporary MEDIA_ROOT.
    """
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    settings.MEDIA_ROOT = tmp_path


# Every identifying string of organization A carries this (matched case-insensitively).
MARK = "zqxa"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
API_PREFIX = "api/v1/"

# The allow-list: routes not tried here, by route prefix, each with the reason.
NOT_EXERCISED = {
    "admin/": "the admin site: staff only (test_admin_site_refuses_everyone_but_staff, projects/tests/test_admin.py)",
    "accounts/": "Django's sign-in, sign-out and password views: the visitor's own account, no tenant data",
    "account/sign-out-everywhere/": "ends the visitor's own sessions, no tenant data (tests/test_security.py)",
    "members/": "a 301 to settings/members/ (walked), holding no data (tests/test_settings_area.py)",
    "account/service-tokens/": "a 301 to settings/service-tokens/ (walked), holding no data",
    "api/schema/": "the OpenAPI schema: describes the endpoints, holds no rows",
    "api/docs/": "Swagger UI for the schema: a static page",
    "invitations/accept/": "an invitation's link, answered by its key alone (projects/tests/test_members_hardening.py)",
    "otlp/": "the OTLP receiver: protobuf bodies, ingest service tokens only; its tenant isolation is"
    " tests/test_otlp.py::test_a_service_token_cannot_write_into_another_organization",
}
# Not URL patterns at all: the probes are answered by tracker.middleware.ProbeMiddleware and the
# static files by WhiteNoise, before URL resolution (test_probes_hold_no_tenant_data covers the probes).

# The object a web route's `pk` names, by the route's leading path segments (the longest that match).
WEB_OBJECTS: dict[str, type[Model]] = {
    "imports": ImportJob,
    "imports/rules": BillingMappingRule,
    "projects": Project,
    "risks": Risk,
    "reports": Report,
    "account": ApiToken,
    "webhooks": WebhookEndpoint,
    # The settings area: by its first two segments.
    "settings/members": Membership,
    "settings/invitations": Invitation,
    "settings/teams": Team,
    "settings/cost-centres": CostCentre,
    "settings/service-tokens": ApiToken,
}
OTHER_KWARGS = {"format": "json", "fmt": "md", "key": "cost", "change": "pause"}


# --- The routes ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Route:
    route: str  # the full pattern, as ResolverMatch.route spells it
    name: str | None  # namespaced, e.g. "api-projects:project-detail"
    callback: Callable
    kwargs: tuple[str, ...]

    @property
    def api(self) -> bool:
        return self.route.startswith(API_PREFIX)


def routes(resolver: URLResolver | None = None, prefix: str = "", namespace: str = "") -> Iterator[Route]:
    """Walk the resolver recursively: every URL pattern of the site and the API."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        pattern = entry.pattern
        text = str(pattern).removeprefix("^") if prefix else str(pattern)  # as ResolverMatch.route joins them
        names = tuple(getattr(pattern, "converters", {}) or pattern.regex.groupindex)
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from (dataclasses.replace(r, kwargs=names + r.kwargs) for r in routes(entry, prefix + text, inner))
        else:
            assert isinstance(entry, URLPattern)
            name = f"{namespace}{entry.name}" if entry.name else None
            yield Route(prefix + text, name, entry.callback, names)


def allow_listed(route: Route) -> bool:
    return any(route.route.startswith(prefix) for prefix in NOT_EXERCISED)


def _declared_methods(view: Callable, seen: set[int] | None = None) -> frozenset[str] | None:
    """Find the method list of `require_http_methods` (and require_POST…) among the view's decorators."""
    seen = seen if seen is not None else set()
    if id(view) in seen or not inspect.isfunction(view):
        return None
    seen.add(id(view))
    nonlocals = inspect.getclosurevars(view).nonlocals
    if "request_method_list" in nonlocals:
        return frozenset(nonlocals["request_method_list"]) & set(METHODS)
    for inner in [getattr(view, "__wrapped__", None), *nonlocals.values()]:
        if callable(inner) and (found := _declared_methods(inner, seen)) is not None:
            return found
    return None


def view_methods(route: Route) -> tuple[frozenset[str], bool]:
    """Return the methods the view answers, and whether it declares them (a view taking any method only reads)."""
    actions = getattr(route.callback, "actions", None)
    if actions:
        # HEAD mirrors GET (DRF even adds it to the shared map once a request went through).
        return frozenset(method.upper() for method in actions) & set(METHODS), True
    view_class = getattr(route.callback, "view_class", None)
    if view_class is not None:
        handled = {m.upper() for m in view_class.http_method_names if hasattr(view_class, m) and m != "options"}
        return frozenset(handled), True
    declared = _declared_methods(route.callback)
    return (declared, True) if declared is not None else (frozenset(METHODS), False)


def route_model(route: Route) -> type[Model] | None:
    """Return the model whose row a route's `pk` names."""
    view_class = getattr(route.callback, "cls", None)
    if view_class is not None:
        meta = getattr(getattr(view_class, "serializer_class", None), "Meta", None)
        meta = meta or getattr(getattr(view_class, "filterset_class", None), "_meta", None)  # the change feed
        return getattr(meta, "model", None)
    prefixes = sorted((p for p in WEB_OBJECTS if route.route.startswith(f"{p}/")), key=len)
    return WEB_OBJECTS[prefixes[-1]] if prefixes else None


# --- Organization A's portfolio ----------------------------------------------------------------


@dataclasses.dataclass
class Portfolio:
    organization: Organization
    admin: object
    contributor: object
    viewer: object
    objects: dict[type[Model], Model]
    revoked_key: str
    outsider: object
    outsider_key: str
    viewer_key: str

    def snapshot(self) -> str:
        """Return every row of A (and A's audit history) as one text: any insert, update or delete changes it."""
        org = self.organization
        scopes = {
            Organization: Q(pk=org.pk),
            Team: Q(organization=org),
            Membership: Q(organization=org),
            Invitation: Q(organization=org),
            NotificationSubscription: Q(organization=org),
            Project: Q(organization=org),
            StatusUpdate: Q(project__organization=org),
            StageTransition: Q(project__organization=org),
            CostEntry: Q(project__organization=org),
            Budget: Q(project__organization=org),
            CostCentre: Q(organization=org),
            BudgetThresholdCrossing: Q(budget__project__organization=org),
            Risk: Q(organization=org),
            RiskAssessment: Q(risk__organization=org),
            InfrastructureComponent: Q(project__organization=org),
            QualityMetric: Q(project__organization=org),
            ModelPrice: Q(organization=org),
            WebhookEndpoint: Q(organization=org),
            WebhookDelivery: Q(endpoint__organization=org),
            Report: Q(organization=org),
            ApiToken: Q(user__in=[self.admin, self.contributor]),
            ImportJob: Q(organization=org),
            BillingMappingRule: Q(organization=org),
            BilledCost: Q(organization=org),
            AuditEvent: Q(organization=org),
        }
        parts, params = [], []
        for model, scope in scopes.items():
            sql, args = model.objects.filter(scope).order_by("pk").values().query.sql_with_params()
            parts.append(f"(SELECT string_agg(row_to_json(r)::text, ',') FROM ({sql}) r)")
            params.extend(args)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT concat_ws('|', {', '.join(parts)})", params)
            return cursor.fetchone()[0]


def _member(organization: Organization, username: str, role: Role):
    return MembershipFactory(organization=organization, user=UserFactory(username=username), role=role).user


@pytest.fixture
def portfolio() -> Portfolio:
    return portfolio_build()


def portfolio_build() -> Portfolio:
    """Organization A with one row of every kind, made through the services (so audited), and organization B."""
    org = OrganizationFactory(name="Zqxa Holdings", slug="zqxa-holdings")
    admin = _member(org, "zqxa-admin", Role.ADMIN)
    contributor = _member(org, "zqxa-contributor", Role.CONTRIBUTOR)
    viewer = _member(org, "zqxa-viewer", Role.VIEWER)
    team = services.team_create(organization=org, name="Zqxa team", by=admin, description="Zqxa platform team")
    centre = services.cost_centre_create(organization=org, by=admin, code="ZQXA-1", name="Zqxa centre")
    project = services.project_create(
        organization=org,
        by=admin,
        name="Zqxa assistant",
        summary="Zqxa secret plans",
        team=team,
        cost_centre=centre,
        tags={"env": "zqxa-value"},
    )
    status = services.status_update_create(
        project=project, by=contributor, date=dt.date(2026, 3, 2), health="amber", progress=20, summary="Zqxa status"
    )
    transition = services.project_transition(
        project=project, to_stage=Stage.DATA_PREPARATION, by=contributor, note="Zqxa move"
    )
    budget = budget_create(
        project=project,
        by=admin,
        period_start=dt.date(2026, 1, 1),
        period_end=dt.date(2026, 12, 31),
        amount=Decimal(1000),
        notes="Zqxa budget",
    )
    price = model_price_create(
        organization=org,
        by=admin,
        provider="groq",
        model="zqxa-model",
        input_per_mtok=Decimal(1),
        output_per_mtok=Decimal(2),
        valid_from=dt.date(2026, 1, 1),
    )
    cost = cost_entry_create(
        project=project,
        by=contributor,
        date=dt.date(2026, 3, 3),
        category="inference",
        amount=Decimal(10),
        description="Zqxa invoice",
        model="zqxa-model",
        external_id="zqxa-inv-1",
    )
    endpoint, _ = webhook_endpoint_create(
        organization=org, by=admin, url="http://127.0.0.1/zqxa-hook", events=["risk.created"], description="Zqxa hook"
    )
    risk = risk_create(  # after the endpoint: its risk.created event is the endpoint's delivery
        project=project,
        by=contributor,
        title="Zqxa leaks",
        category="security",
        likelihood=4,
        impact=4,
        mitigation_plan="Zqxa plan",
    )
    infra = infrastructure_component_create(
        project=project, by=contributor, name="Zqxa endpoint", kind="compute", provider="aws"
    )
    metric = quality_metric_create(
        project=project, by=contributor, date=dt.date(2026, 3, 1), metric="accuracy", value=0.9, notes="Zqxa eval"
    )
    report = report_request(
        organization=org,
        kind=ReportKind.STATUS,
        period_start=dt.date(2026, 3, 2),
        period_end=dt.date(2026, 3, 8),
        by=admin,
        enqueue=False,
    )
    report = report_build(report_id=report.pk)
    assert report.state == ReportState.READY and MARK in json.dumps(report.data).lower()
    token, _ = services.api_token_create(user=contributor, name="Zqxa gateway")
    revoked, revoked_key = services.api_token_create(user=admin, name="Zqxa old")
    services.api_token_revoke(token=revoked, by=admin)
    invitation = services.invitation_create(
        organization=org, email="zqxa-invitee@example.com", role=Role.CONTRIBUTOR, by=admin
    )
    rule = billing_rule_create(
        organization=org, field=MappingField.SUB_ACCOUNT_ID, value="zqxa-account", project=project, by=admin
    )
    bill = (
        "BilledCost,BillingCurrency,BillingPeriodStart,BillingPeriodEnd,ChargePeriodStart,ChargePeriodEnd,"
        "ChargeCategory,ServiceName,SubAccountId\n"
        "12.50,USD,2026-03-01T00:00:00Z,2026-04-01T00:00:00Z,2026-03-02T00:00:00Z,2026-03-03T00:00:00Z,"
        "Usage,Zqxa inference,zqxa-account\n"
    )
    job = import_file_run(
        organization=org, format="focus", binary=io.BytesIO(bill.encode()), filename="zqxa-bill.csv", by=admin
    )
    assert BilledCost.objects.get(organization=org).project == project and MARK in json.dumps(job.summary)
    assert AuditEvent.objects.filter(organization=org).count() >= 8

    other = OrganizationFactory(name="Other Corp", slug="other-corp")
    outsider = MembershipFactory(organization=other, user=UserFactory(username="outsider"), role=Role.ADMIN).user
    ProjectFactory(organization=other, name="Other project")
    _, outsider_key = services.api_token_create(user=outsider, name="outsider's")
    _, viewer_key = services.api_token_create(user=viewer, name="viewer's")
    objects = {
        Organization: org,
        Team: team,
        CostCentre: centre,
        Membership: Membership.objects.get(organization=org, user=contributor),
        Project: project,
        StatusUpdate: status,
        StageTransition: transition,
        Budget: budget,
        ModelPrice: price,
        CostEntry: cost,
        Risk: risk,
        InfrastructureComponent: infra,
        QualityMetric: metric,
        Report: report,
        ApiToken: token,
        Invitation: invitation,
        AuditEvent: AuditEvent.objects.filter(organization=org).earliest("at"),
        WebhookEndpoint: endpoint,
        WebhookDelivery: WebhookDelivery.objects.get(endpoint=endpoint),
        ImportJob: job,
        BillingMappingRule: rule,
    }
    return Portfolio(org, admin, contributor, viewer, objects, revoked_key, outsider, outsider_key, viewer_key)


# --- Bodies ---------------------------------------------------------------------------------------

# A valid body per write (route name, method): a refusal must come from who asks, never from the input.
# Bodies that name a parent name A's, so an outsider's attempt is refused by the scoping.
BODIES: dict[tuple[str, str], Callable[[Portfolio], dict]] = {}


def body(name: str, *methods: str):
    def register(make: Callable[[Portfolio], dict]) -> Callable[[Portfolio], dict]:
        for method in methods:
            BODIES[(name, method)] = make
        return make

    return register


def _project(p: Portfolio) -> int:
    return p.objects[Project].pk


body("api-projects:organization-detail", "PUT", "PATCH")(lambda p: {"name": "Posted", "currency": "USD"})
body("api-projects:team-list", "POST")(lambda p: {"organization": p.organization.pk, "name": "Posted team"})
body("api-projects:team-detail", "PUT", "PATCH")(lambda p: {"name": "Posted team", "description": "posted"})
body("api-projects:cost-centre-list", "POST")(
    lambda p: {"organization": p.organization.pk, "code": "P-1", "name": "Posted"}
)
body("api-projects:cost-centre-detail", "PUT", "PATCH")(lambda p: {"code": "P-1", "name": "Posted centre"})
body("api-projects:invitation-list", "POST")(
    lambda p: {"organization": p.organization.pk, "email": "posted@example.com", "role": "admin"}
)
body("api-projects:invitation-resend", "POST")(lambda p: {})
body("api-projects:membership-detail", "PUT", "PATCH")(lambda p: {"role": "admin"})
body("api-projects:project-list", "POST")(lambda p: {"organization": p.organization.pk, "name": "Posted project"})
body("api-projects:project-detail", "PUT", "PATCH")(lambda p: {"name": "Posted project", "summary": "posted"})
body("api-projects:project-transition", "POST")(lambda p: {"to_stage": "retired", "note": "posted"})
body("api-projects:status-update-list", "POST")(
    lambda p: {"project": _project(p), "date": "2026-03-04", "health": "red", "progress": 50, "summary": "posted"}
)
PASSWORD = "correct-horse-battery"  # every factory user's: minting a token asks for it
body("api-projects:api-token-list", "POST")(lambda p: {"name": "posted", "password": PASSWORD})
body("api-projects:service-token-list", "POST")(
    lambda p: {"organization": p.organization.pk, "name": "posted", "scope": "read", "password": PASSWORD}
)
body("api-ops:infrastructure-list", "POST")(
    lambda p: {"project": _project(p), "name": "posted", "kind": "compute", "provider": "gcp"}
)
body("api-ops:infrastructure-detail", "PUT", "PATCH")(
    lambda p: {"name": "posted", "kind": "compute", "provider": "gcp"}
)


def _in_a_month() -> str:
    """An acceptance expiry inside the allowed range whenever the suite runs."""
    return str(dt.date.today() + dt.timedelta(days=30))


BUDGET = {"period_start": "2027-01-01", "period_end": "2027-12-31", "amount": "5.00"}
body("api-ops:budget-list", "POST")(lambda p: {"project": _project(p), **BUDGET})
body("api-ops:budget-detail", "PUT", "PATCH")(lambda p: BUDGET)
# A read with its query: the caller's (only) organization's month; an outsider gets B's, never A's.
CHARGEBACK = {"month": "2026-03", "group_by": "cost_centre"}
body("api-ops:chargeback", "GET")(lambda p: CHARGEBACK)
body("api-ops:chargeback-export", "GET")(lambda p: {**CHARGEBACK, "group_by": "tag:env"})
body("ops:chargeback", "GET")(lambda p: {"month": "2026-03", "group_by": "tag", "tag": "env"})
COST = {"date": "2026-03-05", "category": "storage", "amount": "2.00"}
body("api-ops:cost-list", "POST")(lambda p: {"project": _project(p), **COST})
body("api-ops:cost-detail", "PUT", "PATCH")(lambda p: COST)
body("api-ops:cost-bulk", "POST")(lambda p: {"entries": [{"project": _project(p), **COST, "external_id": "posted"}]})
body("api-ops:usage-list", "POST")(
    lambda p: {
        "entries": [
            {"project": _project(p), "date": "2026-03-05", "model": "zqxa-model", "input_tokens": 1, "output_tokens": 1}
        ]
    }
)
PRICE = {
    "provider": "openai",
    "model": "posted",
    "input_per_mtok": "1",
    "output_per_mtok": "1",
    "valid_from": "2026-02-01",
}
body("api-ops:model-price-list", "POST")(lambda p: {"organization": p.organization.pk, **PRICE})
body("api-ops:model-price-detail", "PUT", "PATCH")(lambda p: {**PRICE, "deprecation_date": "2027-01-01"})
body("api-ops:model-price-reprice", "POST")(lambda p: {"organization": p.organization.pk, "dry_run": True})
body("api-ops:model-price-import", "POST")(
    lambda p: {"organization": p.organization.pk, "source": "genai-prices", "dry_run": True}
)
METRIC = {"date": "2026-03-05", "metric": "accuracy", "value": 0.1}
body("api-ops:metric-list", "POST")(lambda p: {"project": _project(p), **METRIC})
body("api-ops:metric-detail", "PUT", "PATCH")(lambda p: METRIC)
RISK = {"title": "posted", "category": "cost", "likelihood": 1, "impact": 1}
body("api-ops:risk-list", "POST")(lambda p: {"project": _project(p), **RISK})
body("api-ops:risk-detail", "PUT", "PATCH")(lambda p: RISK)
body("api-ops:risk-accept", "POST")(lambda p: {"justification": "posted", "expires": _in_a_month()})
body("api-ops:risk-close", "POST")(lambda p: {"note": "posted"})
body("api-ops:report-list", "POST")(
    lambda p: {"kind": "risk", "project": _project(p), "period_start": "2026-03-09", "period_end": "2026-03-15"}
)
HOOK = {"url": "http://127.0.0.1/posted", "events": ["risk.closed"], "description": "posted"}
body("api-webhooks:webhook-endpoint-list", "POST")(lambda p: {"organization": p.organization.pk, **HOOK})
body("api-webhooks:webhook-endpoint-detail", "PUT", "PATCH")(lambda p: HOOK)
body("api-webhooks:webhook-endpoint-detail", "DELETE")(lambda p: {})
for _name in ("rotate", "pause", "resume", "redeliver"):
    body(f"api-webhooks:webhook-endpoint-{_name}", "POST")(lambda p: {})
body("webhooks:endpoints", "POST")(lambda p: {**HOOK, "events": "risk.closed"})
body("webhooks:endpoint-detail", "POST")(lambda p: {**HOOK, "events": "risk.closed"})
body("webhooks:endpoint-change", "POST")(lambda p: {})
body("webhooks:redeliver", "POST")(lambda p: {})
for _name in (
    "api-projects:team-detail",
    "api-projects:cost-centre-detail",
    "api-projects:membership-detail",
    "api-projects:invitation-detail",
):
    body(_name, "DELETE")(lambda p: {})
for _name in ("api-ops:infrastructure-detail",):
    body(_name, "DELETE")(lambda p: {})
for _name in ("api-ops:budget-detail", "api-ops:cost-detail", "api-ops:model-price-detail", "api-ops:metric-detail"):
    body(_name, "DELETE")(lambda p: {})
body("api-projects:api-token-detail", "DELETE")(lambda p: {})
body("api-projects:service-token-detail", "DELETE")(lambda p: {})

body("projects:organization-switch", "POST")(lambda p: {"organization": p.organization.pk, "next": "/"})
PROJECT_FORM = {"name": "Posted project", "industry": "other", "use_case": "other", "ai_act_tier": "unassessed"}
body("projects:create", "POST")(lambda p: PROJECT_FORM)
body("projects:edit", "POST")(lambda p: PROJECT_FORM)
body("projects:status-create", "POST")(
    lambda p: {"date": "2026-03-04", "health": "red", "progress": 50, "summary": "posted"}
)
body("projects:transition", "POST")(lambda p: {"to_stage": "retired", "note": "posted"})
body("projects:checkin", "POST")(lambda p: {"date": "2026-03-04", "health": "red", "progress": 50, "summary": "posted"})
IN_30_DAYS = (dt.date.today() + dt.timedelta(days=30)).isoformat()
body("projects:tokens", "POST")(lambda p: {"name": "posted", "expires_at": IN_30_DAYS, "password": PASSWORD})
body("projects:token-revoke", "POST")(lambda p: {})
# Every choice as it is by default: a member's own choices, unchanged, write nothing (a viewer's would be A's rows).
body("projects:notifications", "POST")(lambda p: {"status_digest": "on", "risk_digest": "on", "review_reminder": "on"})
ORGANIZATION_FORM = {"name": "Posted", "timezone": "UTC", "locale": "en", "currency": "USD"}
body("settings:organization", "POST")(lambda p: ORGANIZATION_FORM)
body("settings:service-tokens", "POST")(lambda p: {"name": "posted", "scope": "read", "password": PASSWORD})
body("settings:service-token-revoke", "POST")(lambda p: {})
body("settings:members", "POST")(lambda p: {"email": "posted@example.com", "role": "admin"})
body("settings:member-role", "POST")(lambda p: {"role": "admin"})
body("settings:member-remove", "POST")(lambda p: {})
body("settings:invitation-revoke", "POST")(lambda p: {})
body("settings:invitation-resend", "POST")(lambda p: {})
body("settings:teams", "POST")(lambda p: {"name": "Posted team"})
body("settings:team-edit", "POST")(lambda p: {"name": "Posted team", "description": "posted"})
body("settings:team-delete", "POST")(lambda p: {})
body("settings:cost-centres", "POST")(lambda p: {"code": "P-1", "name": "Posted centre"})
body("settings:cost-centre-edit", "POST")(lambda p: {"code": "P-1", "name": "Posted centre"})
body("settings:cost-centre-delete", "POST")(lambda p: {})
body("ops:cost-create", "POST")(lambda p: COST)
body("ops:usage-create", "POST")(
    lambda p: {"date": "2026-03-05", "model": "zqxa-model", "input_tokens": "1", "output_tokens": "1"}
)
body("ops:prices", "POST")(lambda p: {"entries": str(p.objects[CostEntry].pk)})
body("ops:prices-import", "POST")(lambda p: {"source": "genai-prices"})  # a preview: the diff, nothing written
body("ops:budget-create", "POST")(lambda p: {**BUDGET, "tolerance_pct": "10"})
RISK_FORM = {**RISK, "treatment": "mitigate"}
body("ops:risk-create", "POST")(lambda p: RISK_FORM)
body("ops:risk-catalogue", "POST")(lambda p: {"key": "prompt_injection"})
body("ops:infrastructure-create", "POST")(
    lambda p: (
        {"name": "posted", "kind": "compute", "provider": "gcp", "hosting": "cloud", "environment": "dev"}
        | {"gpu_count": 0}
    )
)
body("ops:metric-create", "POST")(lambda p: METRIC)
body("ops:risk-edit", "POST")(lambda p: {**RISK_FORM, "status": "mitigating", "note": "posted"})
body("ops:risk-accept", "POST")(lambda p: {"justification": "posted", "expires": _in_a_month()})
body("ops:risk-close", "POST")(lambda p: {"note": "posted"})
body("ops:report-create", "POST")(lambda p: {"kind": "risk", "week": "2026-03-10"})
RULE = {"field": "ServiceName", "value": "posted"}
body("api-ops:billing-rule-list", "POST")(lambda p: {"project": _project(p), **RULE})
body("api-ops:billing-rule-detail", "DELETE")(lambda p: {})
body("ops:billing-rule-add", "POST")(lambda p: {"project": _project(p), **RULE})
body("ops:billing-rule-delete", "POST")(lambda p: {})


def _bill() -> SimpleUploadedFile:
    return SimpleUploadedFile("bill.csv", b"date,category,amount\n2026-03-05,storage,2.00\n", "text/csv")


# An upload names A's organization (API) or A's project (page): refused to an outsider by the scoping.
body("api-ops:import-list", "POST")(
    lambda p: {"organization": p.organization.pk, "format": "csv", "file": _bill(), "project": p.objects[Project].slug}
)
body("ops:imports", "POST")(lambda p: {"format": "csv", "file": _bill(), "project": p.objects[Project].slug})
body("ops:import-csv", "POST")(
    lambda p: {
        "file": SimpleUploadedFile("costs.csv", b"date,category,amount\n2026-03-05,storage,2.00\n", "text/csv"),
        "project": p.objects[Project].slug,
    }
)


# --- Who asks, and what they must get -----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Caller:
    role: str
    api: bool  # tries the API's routes (else the site's)
    outsider: bool  # must see nothing of A


CALLERS = (
    Caller("outsider-token", api=True, outsider=True),
    Caller("outsider-session", api=True, outsider=True),
    Caller("viewer-token", api=True, outsider=False),
    Caller("anonymous", api=True, outsider=True),
    Caller("revoked-token", api=True, outsider=True),
    Caller("outsider-session", api=False, outsider=True),
    Caller("viewer-session", api=False, outsider=False),
    Caller("anonymous", api=False, outsider=True),
    Caller("revoked-token", api=False, outsider=True),
)


def client_for(caller: Caller, p: Portfolio) -> Client:
    client = APIClient() if caller.api else Client()
    client.raise_request_exception = False  # a 500 is a finding to list with the others, not a crash
    if caller.role == "outsider-token":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {p.outsider_key}")
    elif caller.role == "viewer-token":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {p.viewer_key}")
    elif caller.role == "revoked-token":
        if caller.api:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {p.revoked_key}")
        else:
            client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {p.revoked_key}"
    elif caller.role == "outsider-session":
        client.force_login(p.outsider)
    elif caller.role == "viewer-session":
        client.force_login(p.viewer)
    return client


# Writes any signed-in user may make for themselves (their own tokens, their current organization),
# and the tokens of someone else (the portfolio's token is the contributor's): 404 like any other's row.
VIEWER_EXCEPTIONS = {
    ("projects:create", "GET"): {403},  # the project form pages are for contributors
    ("projects:edit", "GET"): {403},
    ("projects:form", "GET"): {403},  # a project-page form (here a cost's) is a contributor's
    ("projects:checkin", "GET"): {403},  # the check-in dialog's status form is a contributor's
    ("projects:transition-preview", "GET"): {403},  # the stage form's preview too
    ("ops:prices-import", "GET"): {403},  # importing a price book is the managers'
    ("projects:tokens", "POST"): {200},
    ("projects:organization-switch", "POST"): {302},
    ("projects:token-revoke", "POST"): {404},
    ("api-projects:api-token-detail", "GET"): {404},
    ("api-projects:api-token-detail", "DELETE"): {404},
    # Service tokens are their admins' only: to a viewer, the portfolio's token is any other's row.
    ("api-projects:service-token-detail", "GET"): {404},
    ("api-projects:service-token-detail", "DELETE"): {404},
    # The change feed is the managers': a viewer's feed is empty, so one event named by id is "not found".
    ("api-projects:event-detail", "GET"): {404},
    # Members and invitations are the admins' (invitees' addresses are personal data): a viewer gets
    # the members page refused and sees no invitation at all, so one named by id is "not found".
    ("settings:members", "GET"): {403},
    # The rest of the settings area is the managers' to read (service tokens the admins'); a member's own
    # e-mail choices are theirs to make.
    ("settings:organization", "GET"): {403},
    ("settings:teams", "GET"): {403},
    ("settings:team-edit", "GET"): {403},
    ("settings:cost-centres", "GET"): {403},
    ("settings:cost-centre-edit", "GET"): {403},
    ("settings:service-tokens", "GET"): {403},
    ("projects:notifications", "POST"): {302},
    ("ops:import-csv", "GET"): {403},  # importing is the managers'
    ("api-projects:invitation-detail", "GET"): {404},
    ("api-projects:invitation-detail", "DELETE"): {404},
    ("api-projects:invitation-resend", "POST"): {404},
    # Webhook endpoints are the admins' (their URLs and deliveries may carry anything).
    ("api-webhooks:webhook-endpoint-list", "GET"): {403},
    ("api-webhooks:webhook-endpoint-detail", "GET"): {403},
    ("api-webhooks:webhook-endpoint-deliveries", "GET"): {403},
    ("webhooks:endpoints", "GET"): {403},
    ("webhooks:endpoint-detail", "GET"): {403},
}
# An outsider's writes on their own side: they land in B (or nowhere), never in A.
OUTSIDER_COLLECTION_WRITES = {
    ("projects:organization-switch", "POST"): {404},
    ("projects:create", "POST"): {302},
    ("projects:tokens", "POST"): {200},
    ("settings:service-tokens", "POST"): {200},  # a service token of B, the outsider's organization
    ("settings:organization", "POST"): {302},  # B's settings
    ("settings:teams", "POST"): {302},  # a team of B
    ("settings:cost-centres", "POST"): {302},  # a cost centre of B
    ("projects:notifications", "POST"): {302},  # the outsider's own choices in B
    ("ops:report-create", "POST"): {302},
    ("ops:prices", "POST"): {302},  # reprices B's entries only: A's ids are not B's
    ("ops:prices-import", "POST"): {200},  # previews an import into B
    ("ops:import-csv", "POST"): {400},  # the file is for A's project, none of B's to choose
    ("ops:imports", "POST"): {400},  # likewise
    ("ops:billing-rule-add", "POST"): {400},  # the rule names A's project, none of B's
    ("settings:members", "POST"): {302},  # an invitation to B
    ("webhooks:endpoints", "POST"): {200},  # an endpoint of B, its secret shown once
}


def expected(caller: Caller, route: Route, method: str, has_object: bool) -> set[int]:
    """Return the statuses `caller` may get for `method` on `route` (documented in docs/api.md and docs/ui.md)."""
    allowed, declared = view_methods(route)
    key = (route.name, method)
    if route.api and route.name is None:
        return {404}  # the API's catch-all: a JSON 404 for any unknown path, whoever asks
    if caller.role in ("anonymous", "revoked-token"):
        return {401} if route.api else {302}
    if method not in allowed:
        return {405}
    write = declared and method != "GET"
    if caller.role.startswith("viewer"):
        return VIEWER_EXCEPTIONS.get(key, {403} if write else {200})
    if has_object:
        return {404}
    if not write:
        return {200}
    if route.name == "api-projects:api-token-list":
        return {403} if caller.role == "outsider-token" else {201}  # tokens are made from a session only
    if route.name == "api-projects:service-token-list":
        return {403} if caller.role == "outsider-token" else {400}  # and only in the admin's own organization
    return OUTSIDER_COLLECTION_WRITES.get(key, {400} if route.api else set())


# --- The plan -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Target:
    route: Route
    url: str
    has_object: bool


def plan(p: Portfolio, urlconf: str | None = None) -> tuple[list[Target], list[str]]:
    """Fill every route's kwargs with A's objects; return the targets and what could not be planned."""
    targets, problems = [], []
    for route in routes(get_resolver(urlconf)):
        if allow_listed(route):
            continue
        kwargs, missing = {}, []
        for name in route.kwargs:
            if name == "pk" and (model := route_model(route)) in p.objects:
                kwargs[name] = p.objects[model].pk
            elif name in OTHER_KWARGS:
                kwargs[name] = OTHER_KWARGS[name]
            elif name == "delivery_id":
                kwargs[name] = p.objects[WebhookDelivery].pk
            else:
                missing.append(name)
        if missing:
            problems.append(f"{route.route}: no value of A for {missing}")
            continue
        if route.name is None:
            if route.route != f"{API_PREFIX}.*$":
                problems.append(f"{route.route}: unnamed, cannot be reversed")
                continue
            url = f"/{API_PREFIX}no-such-resource/1/"
        else:
            url = reverse(route.name, kwargs=kwargs, urlconf=urlconf)
            if resolve(url, urlconf=urlconf).route != route.route:
                problems.append(f"{route.route}: {url} resolves elsewhere")
                continue
        allowed, declared = view_methods(route)
        writes = [m for m in allowed if declared and m != "GET"]
        problems += [f"{route.route}: no body for {m} in BODIES" for m in writes if (route.name, m) not in BODIES]
        targets.append(Target(route, url, "pk" in kwargs))
    return targets, problems


def send(client: Client, method: str, url: str, data: dict, api: bool):
    if api:
        upload = any(isinstance(value, SimpleUploadedFile) for value in data.values())
        return getattr(client, method.lower())(url, data, format="multipart" if upload else "json")
    if method in ("GET", "POST"):
        return getattr(client, method.lower())(url, data)
    return getattr(client, method.lower())(url)


def leaks(response) -> bool:
    text = response.getvalue().decode(errors="replace") + response.get("Location", "")
    return MARK in text.lower()


def run(caller: Caller, p: Portfolio) -> tuple[int, list[str]]:
    """Try every planned route with every method as `caller`; return how many requests and what went wrong."""
    targets, problems = plan(p)
    assert not problems, problems
    client = client_for(caller, p)
    before = p.snapshot()
    failures, tried = [], 0
    for target in (t for t in targets if t.route.api == caller.api):
        for method in METHODS:
            data = BODIES.get((target.route.name, method), lambda _: {})(p)
            response = send(client, method, target.url, data, caller.api)
            tried += 1
            where = f"{caller.role} {method} {target.url}"
            want = expected(caller, target.route, method, target.has_object)
            if response.status_code not in want:
                body = response.getvalue()[:300]
                failures.append(f"{where}: {response.status_code}, expected {sorted(want)}: {body!r}")
            if caller.outsider and leaks(response):
                failures.append(f"{where}: the answer holds A's data")
            json_error = response.get("Content-Type") == "application/json" and "code" in response.json()
            if caller.api and response.status_code >= 400 and not json_error:
                failures.append(f"{where}: the error is not the API's JSON shape")
            signed_out = caller.role in ("anonymous", "revoked-token")
            if response.status_code == 302 and signed_out and not response["Location"].startswith(settings.LOGIN_URL):
                failures.append(f"{where}: redirected to {response['Location']}, not to sign in")
            if p.snapshot() != before:
                failures.append(f"{where}: A's rows changed")
                before = p.snapshot()
    return tried, failures


# --- Tests ----------------------------------------------------------------------------------------


def test_every_url_pattern_is_exercised_or_allow_listed(portfolio):
    every = list(routes())
    targets, problems = plan(portfolio)
    assert not problems, problems
    exercised = {t.route.route for t in targets}
    assert {r.route for r in every} == exercised | {r.route for r in every if allow_listed(r)}
    api = sum(t.route.api for t in targets)
    callers_api = sum(c.api for c in CALLERS)
    callers_web = len(CALLERS) - callers_api
    requests = (api * callers_api + (len(targets) - api) * callers_web) * len(METHODS)
    print(
        f"\n{len(every)} URL patterns, {len(every) - len(targets)} allow-listed; exercised: {api} API × "
        f"{callers_api} callers + {len(targets) - api} web × {callers_web} callers, × {len(METHODS)} methods "
        f"= {requests} requests"
    )


# A URLconf with one endpoint more than the site: the plan must refuse to leave it out.
def _sneaky(request, pk, thing):  # pragma: no cover - never called
    raise AssertionError


urlpatterns = [*get_resolver().url_patterns, path("sneaky/<int:pk>/<slug:thing>/", _sneaky, name="sneaky")]


def test_a_new_endpoint_fails_the_plan_until_it_is_exercised(portfolio):
    _, problems = plan(portfolio, urlconf=__name__)
    assert problems == ["sneaky/<int:pk>/<slug:thing>/: no value of A for ['pk', 'thing']"]


@pytest.mark.parametrize("caller", CALLERS, ids=lambda c: f"{'api' if c.api else 'web'}-{c.role}")
def test_every_route_and_method_keeps_organization_a_private(caller, portfolio):
    tried, failures = run(caller, portfolio)
    print(f"\n{caller.role} on the {'API' if caller.api else 'site'}: {tried} requests")
    assert tried > 0
    assert not failures, "\n".join(failures)


def test_outsider_cannot_make_a_current_by_setting_the_session(portfolio):
    client = Client()
    client.force_login(portfolio.outsider)
    session = client.session
    session["organization_id"] = portfolio.organization.pk
    session.save()
    for url in ("/", "/projects/", "/risks/", "/reports/"):
        response = client.get(url)
        assert response.status_code == 200 and not leaks(response), url


def test_probes_hold_no_tenant_data(portfolio):
    client = Client()
    for url in ("/healthz", "/readyz", "/metrics"):
        response = client.get(url)
        assert response.status_code < 500 and not leaks(response), url


def test_admin_site_refuses_everyone_but_staff(portfolio):
    # Its sign-in and sign-out pages answer everyone, as the site's own do.
    admin_routes = [
        r for r in routes() if r.route.startswith("admin/") and r.name not in ("admin:login", "admin:logout")
    ]
    assert admin_routes
    tried = 0
    for who in (None, portfolio.outsider, portfolio.admin):
        client = Client()
        if who is not None:
            client.force_login(who)
        for route in admin_routes:
            url = "/" + route.route.replace("<path:content_type_id>", "1").replace("<path:object_id>", "1")
            url = url.replace("<id>", "1").replace("^(?P<app_label>auth|projects|ops)/$", "projects/")
            url = url.replace("(?P<url>.*)$", "anything/")
            before = portfolio.snapshot()
            for method in ("GET", "POST"):
                response = getattr(client, method.lower())(url)
                tried += 1
                assert response.status_code in (302, 404), (url, method, response.status_code)
                assert not leaks(response), (url, method)
                if response.status_code == 302:
                    assert response["Location"].startswith("/admin/login/"), (url, response["Location"])
            assert portfolio.snapshot() == before, url
    print(f"\nadmin: {len(admin_routes)} patterns × 3 non-staff callers × 2 methods = {tried} requests")


def test_cost_analytics_and_the_manager_dashboard_never_reach_another_organization(portfolio):
    """An outsider naming A's project or team in the analytics' filters (and each CSV) gets only B's figures."""
    client = Client()
    client.force_login(portfolio.outsider)
    url = reverse("ops:cost-analytics")
    project, team = portfolio.objects[Project], portfolio.objects[Team]
    for params in (
        {"project": project.pk},
        {"team": team.pk},
        *({"project": project.pk, "team": team.pk, "months": 12, "download": key} for key in CSV_DOWNLOADS),
    ):
        response = client.get(url, params)
        assert response.status_code == 200 and not leaks(response), params
        if "download" not in params:
            assert response.context["data"].total.spend == 0 and response.context["form"].errors, params
    for url in ("/", "/risks/?severity=high", "/risks/?severity=critical"):
        response = client.get(url)
        assert response.status_code == 200 and not leaks(response), url


CSV_DOWNLOADS = ("model", "tokens", "provider", "category", "budgets")
