"""Hostile input through the API and the web forms: NUL bytes, huge numbers, deep JSON, unicode, huge bodies.

Every text and number field of every writable API resource is found from the serializers (and of
every web form from the form classes), so a new field is tried without anyone remembering to. The
answer is always a 400 with nothing written, or a success with the unicode stored and returned
exactly; never a 500.
"""

import copy
import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from itertools import count
from typing import Any
from unittest import mock

import pytest
from django import forms
from django.db import DatabaseError, transaction
from django.db.models import Model
from django.test import Client
from django.urls import reverse
from rest_framework import serializers
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.test import APIClient

from ops.api import imports as ops_imports
from ops.api import serializers as ops_serializers
from ops.api import views as ops_views
from ops.forms import (
    BudgetForm,
    CatalogueForm,
    CostEntryForm,
    InfrastructureForm,
    PriceImportForm,
    QualityMetricForm,
    ReportRequestForm,
    RiskAcceptForm,
    RiskCloseForm,
    RiskEditForm,
    RiskForm,
    UsageForm,
)
from ops.imports.forms import BillingRuleForm, ImportUploadForm
from ops.imports.models import BillingMappingRule, ImportJob
from ops.models import (
    Budget,
    CostEntry,
    InfrastructureComponent,
    ModelPrice,
    QualityMetric,
    Report,
    Risk,
    RiskAssessment,
)
from ops.services import risk_create
from projects import services
from projects.api import serializers as projects_serializers
from projects.api import views as projects_views
from projects.forms import (
    ApiTokenForm,
    CostCentreForm,
    InvitationForm,
    MemberRoleForm,
    NotificationPreferencesForm,
    OrganizationSettingsForm,
    ProjectForm,
    ServiceTokenForm,
    StageMoveForm,
    StatusUpdateForm,
    TeamEditForm,
    TeamForm,
)
from projects.models import (
    ApiToken,
    CostCentre,
    Invitation,
    Membership,
    NotificationSubscription,
    Organization,
    Project,
    StageTransition,
    StatusUpdate,
    Team,
)
from tests.test_tenant_isolation import (
    BODIES,
    Portfolio,
    Route,
    allow_listed,
    portfolio_build,
    routes,
    view_methods,
)
from webhooks.forms import WebhookEndpointForm
from webhooks.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _webhooks_to_loopback(settings, tmp_path):
    """The portfolio's webhook endpoint (and every posted one) points at 127.0.0.1: no name to resolve.

    Uploaded import files are stored under a temporary MEDIA_ROOT.
    """
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    settings.MEDIA_ROOT = tmp_path


NUL = "nul\x00byte"
# Emoji (with a ZWJ sequence and a skin tone), right-to-left scripts and an override, combining
# marks, and characters outside the Basic Multilingual Plane (4 bytes in UTF-8).
UNICODE = "😀👩‍👩‍👧🏽 مرحبا שלום \u202eabc\u202c e\u0301n\u0303 𝕏𠜎𓂀"
HUGE_INTEGERS = (2**63, 10**30, -(2**63) - 1)
# Numbers plain JSON cannot spell but Python's parser reads: infinity and not-a-number.
RAW_NUMBERS = ("1e400", "-1e400", "NaN")
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture
def org_a() -> Portfolio:
    """Organization A's portfolio (every kind of row), as the tenant isolation tests build it."""
    return portfolio_build()


@pytest.fixture
def api(org_a) -> APIClient:
    """A's admin (every role), signed in (tokens are made from a session); 500s come back as answers."""
    client = APIClient()
    client.force_login(org_a.admin)
    client.raise_request_exception = False
    return client


@pytest.fixture
def web(org_a) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(org_a.admin)
    return client


def send(
    client: Client,
    method: str,
    url: str,
    payload: Any = None,
    *,
    raw: str | None = None,
    api: bool = True,
    multipart: bool = False,
):
    """Send one request in a savepoint, so a database error inside the view cannot poison the next ones.

    A multipart write (an upload) takes its values as form fields: a raw number is sent as typed.
    """
    try:
        with transaction.atomic():
            if not api or method == "GET":
                return getattr(client, method.lower())(url, payload or {})
            if multipart and raw is None:
                return getattr(client, method.lower())(url, payload, format="multipart")
            text = raw if raw is not None else json.dumps(payload)
            return getattr(client, method.lower())(url, text, content_type="application/json")
    except DatabaseError as exc:  # the view swallowed a database error and left the transaction broken
        return mock.Mock(status_code=500, content=str(exc).encode())


# --- What the API accepts -------------------------------------------------------------------------

# Request bodies of actions that do not take the viewset's serializer.
ACTION_SERIALIZERS = {
    (projects_views.ProjectViewSet, "transition"): projects_serializers.TransitionRequestSerializer,
    (ops_views.RiskViewSet, "accept"): ops_serializers.RiskAcceptSerializer,
    (ops_views.RiskViewSet, "close"): ops_serializers.RiskCloseSerializer,
    (ops_views.CostEntryViewSet, "bulk"): ops_serializers.CostBulkSerializer,
    (ops_views.ReportViewSet, "create"): ops_serializers.ReportRequestSerializer,
    (projects_views.InvitationViewSet, "resend"): projects_serializers.InvitationResendSerializer,
    (ops_imports.ImportJobViewSet, "create"): ops_imports.ImportUploadSerializer,
}
TEXT = (serializers.CharField, serializers.ChoiceField, serializers.SlugRelatedField)
NUMBER = (
    serializers.IntegerField,
    serializers.DecimalField,
    serializers.FloatField,
    serializers.PrimaryKeyRelatedField,
)


@dataclasses.dataclass(frozen=True)
class Field:
    path: tuple[str | int, ...]  # where in the body, e.g. ("entries", 0, "description")
    field: serializers.Field
    many: bool  # a list of such values

    @property
    def text(self) -> bool:
        return isinstance(self.field, TEXT)


def input_fields(serializer: serializers.Serializer, prefix: tuple = ()) -> Iterator[Field]:
    """Every writable text and number field of a serializer, nested rows included."""
    for name, field in serializer.fields.items():
        if field.read_only:
            continue
        if isinstance(field, serializers.ListSerializer):
            yield from input_fields(field.child, (*prefix, name, 0))
        elif isinstance(field, serializers.Serializer):
            yield from input_fields(field, (*prefix, name))
        elif isinstance(field, serializers.ListField) and isinstance(field.child, TEXT + NUMBER):
            yield Field((*prefix, name), field.child, many=True)
        elif isinstance(field, TEXT + NUMBER):
            yield Field((*prefix, name), field, many=False)


def request_serializer(route: Route, action: str) -> type[serializers.Serializer]:
    view = route.callback.cls
    if (view, action) in ACTION_SERIALIZERS:
        return ACTION_SERIALIZERS[(view, action)]
    if action == "create" and view.create_serializer_class is not None:
        return view.create_serializer_class
    return view.serializer_class


@dataclasses.dataclass(frozen=True)
class Write:
    route: Route
    method: str
    action: str
    serializer: type[serializers.Serializer]

    @property
    def multipart(self) -> bool:
        """Whether the write takes an upload (multipart only) rather than JSON."""
        return getattr(self.route.callback.cls, "parser_classes", None) == [MultiPartParser]


def api_writes() -> list[Write]:
    """Every POST and PATCH of the API (PUT takes the same fields as PATCH), from the resolver."""
    writes = []
    for route in routes():
        actions = getattr(route.callback, "actions", None) or {}
        if not route.api or "format" in route.kwargs:
            continue
        for method, action in actions.items():
            if method in ("post", "patch"):
                writes.append(Write(route, method.upper(), action, request_serializer(route, action)))
    return writes


def set_path(body: Any, path: tuple, value: Any) -> Any:
    body = copy.deepcopy(body)  # an upload's body holds a file
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return body


def get_path(body: Any, path: tuple) -> Any:
    for step in path:
        body = body[step]
    return body


class Attempts:
    """Objects an attempt may change for good (a risk accepted, a project retired): a fresh one each time."""

    def __init__(self, org_a: Portfolio):
        self.p = org_a
        self.n = count(1)

    def url(self, write: Write) -> str:
        if "pk" not in write.route.kwargs:
            return reverse(write.route.name)
        model = write.serializer.Meta.model if hasattr(write.serializer, "Meta") else None
        model = model or write.route.callback.cls.serializer_class.Meta.model
        # A's webhook endpoint takes its pause, resume, rotate and redeliver over and over.
        obj = self.fresh(model) if write.method == "POST" and model is not WebhookEndpoint else self.p.objects[model]
        kwargs = {"pk": obj.pk}
        if "delivery_id" in write.route.kwargs:
            kwargs["delivery_id"] = self.p.objects[WebhookDelivery].pk
        return reverse(write.route.name, kwargs=kwargs)

    def fresh(self, model: type[Model]) -> Model:
        n = next(self.n)
        if model is Risk:
            return risk_create(
                project=self.p.objects[Project], by=self.p.admin, title=f"r{n}", category="cost", likelihood=1, impact=1
            )
        if model is Invitation:
            return services.invitation_create(
                organization=self.p.organization, email=f"i{n}@example.com", by=self.p.admin
            )
        return services.project_create(organization=self.p.organization, by=self.p.admin, name=f"p{n}")

    def body(self, write: Write) -> dict:
        """A valid body for A's admin, made unique so that repeating it is never a duplicate."""
        n = next(self.n)
        made = BODIES[(write.route.name, write.method)](self.p)
        unique = {
            "name": f"name {n}",
            "model": f"model-{n}",
            "title": f"title {n}",
            "external_id": f"x-{n}",
            "valid_from": str(dt.date(2020, 1, 1) + dt.timedelta(days=n)),
            # Reports cover a Monday-to-Sunday week inside the offered range (2000-01-03 is a Monday).
            "period_start": str(dt.date(2000, 1, 3) + dt.timedelta(weeks=n)),
            "period_end": str(dt.date(2000, 1, 9) + dt.timedelta(weeks=n)),
        }
        if write.route.name == "api-projects:invitation-list":
            made["email"] = f"invitee{n}@example.com"
        if write.route.name == "api-projects:project-transition":
            return {"to_stage": "data_preparation", "note": "next"}
        if write.route.name == "api-ops:budget-list" or write.route.name == "api-ops:budget-detail":
            unique["period_start"], unique["period_end"] = "2027-01-01", "2027-12-31"
        if write.route.name in ("api-ops:cost-bulk", "api-ops:usage-list"):
            made["entries"][0]["external_id"] = f"x-{n}"
            return made
        return {k: unique.get(k, v) for k, v in made.items()}


def refused_cleanly(response) -> bool:
    """A 400 in the API's error shape (or a 409 when the input collides with a row, e.g. a frozen price, or an
    external_id an earlier walk step recorded with other content)."""
    code = response.json().get("code")
    return (response.status_code, code) in {
        (400, "invalid"),
        (400, "parse_error"),
        (409, "conflict"),
        (409, "external_id_conflict"),
    }


# --- Tests: the API ---------------------------------------------------------------------------------


def test_every_api_write_is_planned():
    writes = api_writes()
    assert {(w.route.name, w.method) for w in writes} <= set(BODIES), "add a valid body to BODIES"
    assert sum(len(list(input_fields(w.serializer()))) for w in writes) > 50


def _attempts(api, org_a, values: Callable[[Field], list[tuple[str, Any]]]) -> tuple[int, int, list[str]]:
    """Put each value in each input field of each write; return how many requests, how many were taken, the faults."""
    attempts, failures, tried, taken = Attempts(org_a), [], 0, 0
    for write in api_writes():
        for field in input_fields(write.serializer()):
            for label, value in values(field):
                url, body = attempts.url(write), attempts.body(write)
                if write.method == "PATCH":
                    body = {}
                    if len(field.path) > 1:
                        continue
                payload = set_path(body, field.path, [value] if field.many else value)
                raw = None
                if label == "raw" and write.multipart:
                    payload = set_path(body, field.path, value)  # a form field is text: sent as typed
                elif label == "raw":
                    payload = set_path(payload, field.path, "__RAW__")
                    raw = json.dumps(payload).replace('"__RAW__"', value)
                before = org_a.snapshot()
                response = send(api, write.method, url, payload, raw=raw, multipart=write.multipart)
                tried += 1
                where = f"{write.method} {url} {'.'.join(map(str, field.path))}={label}"
                if response.status_code >= 500:
                    failures.append(f"{where}: {response.status_code} {response.content[:300]!r}")
                elif response.status_code >= 400:
                    if not refused_cleanly(response):
                        failures.append(f"{where}: {response.status_code} {response.content[:300]!r}")
                    if org_a.snapshot() != before:
                        failures.append(f"{where}: refused, yet something was written")
                elif label == "nul":
                    failures.append(f"{where}: a NUL byte was accepted ({response.status_code})")
                else:
                    taken += 1
                if response.status_code < 300 and label == "unicode" and not round_trips(response, write, field, value):
                    failures.append(f"{where}: not stored and returned exactly: {response.content[:300]!r}")
    return tried, taken, failures


# Where an action's input shows in its answer.
ROUND_TRIP_NAMES = {("accept", "justification"): "acceptance_justification", ("close", "note"): "status_note"}
# Kept only when it was used: a transition with no unmet gate records no override reason.
NOT_ECHOED = {("transition", "override_reason")}


def round_trips(response, write: Write, field: Field, value: str) -> bool:
    body = response.json()
    if "created_ids" in body:  # bulk: read the rows back
        name = field.path[-1]
        return all(getattr(CostEntry.objects.get(pk=pk), name) == value for pk in body["created_ids"])
    name = ROUND_TRIP_NAMES.get((write.action, field.path[-1]), field.path[-1])
    if name not in body or (write.action, name) in NOT_ECHOED:
        return True  # a write-only field (e.g. a reassessment note): the 2xx is the outcome
    stored = body[name]
    return stored == ([value] if field.many else value)


def test_nul_bytes_in_every_api_text_field_are_refused_and_write_nothing(api, org_a):
    tried, _, failures = _attempts(api, org_a, lambda f: [("nul", NUL)] if f.text else [])
    print(f"\nNUL bytes: {tried} requests")
    assert tried > 40
    assert not failures, "\n".join(failures)


def test_unicode_in_every_api_text_field_round_trips_or_is_refused(api, org_a):
    tried, taken, failures = _attempts(api, org_a, lambda f: [("unicode", UNICODE)] if f.text else [])
    print(f"\nunicode: {tried} requests, {taken} stored")
    assert tried > 40 and taken > 30  # free text takes it; choices, slugs and codes refuse it
    assert not failures, "\n".join(failures)


@pytest.fixture(autouse=True)
def _unthrottled(expensive_unthrottled, settings):
    """These tests send hundreds of bulk and report requests from one organization, and over 1,200 reads a minute."""
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "api": "1000000/minute"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}


def test_huge_and_non_finite_numbers_in_every_api_number_field_never_fail(api, org_a):
    def values(field: Field) -> list[tuple[str, Any]]:
        if field.text:
            return []
        return [("huge", v) for v in HUGE_INTEGERS] + [("raw", v) for v in RAW_NUMBERS]

    tried, _, failures = _attempts(api, org_a, values)
    print(f"\nhuge numbers: {tried} requests")
    assert tried > 40
    assert not failures, "\n".join(failures)


def test_deeply_nested_json_is_a_400_on_every_api_write(api, org_a):
    attempts = Attempts(org_a)
    for write in api_writes():
        url = attempts.url(write)
        before = org_a.snapshot()
        for raw in (DEEP, json.dumps({"entries": [{"description": json.loads("[" * 500 + "]" * 500)}]})):
            response = send(api, write.method, url, raw=raw)
            # An upload takes multipart only: JSON is refused unread.
            clean = response.status_code == 415 if write.multipart else refused_cleanly(response)
            assert clean, (write.method, url, response.status_code, response.content[:300])
        assert org_a.snapshot() == before, url


def test_hostile_query_strings_on_every_api_list_never_fail(api, org_a):
    lists = [
        r
        for r in routes()
        if r.api and not r.kwargs and (getattr(r.callback, "actions", None) or {}).get("get") == "list"
    ]
    tried = 0
    for route in lists:
        view = route.callback.cls
        params = {"search", "ordering", "page", "page_size"}
        if getattr(view, "filterset_class", None) is not None:
            params |= set(view.filterset_class.base_filters)
        for value in (NUL, UNICODE, str(2**63), str(10**30), "-1", "1e400"):
            for param in sorted(params):
                url = reverse(route.name)
                response = send(api, "GET", url + "?" + _query(param, value))
                tried += 1
                assert response.status_code in (200, 400, 404), (url, param, value, response.status_code)
    for url in ("/api/v1/projects/99999999999999999999999/", f"/api/v1/risks/{2**63}/", "/api/v1/costs/-1/"):
        assert send(api, "GET", url).status_code == 404, url
    print(f"\nquery strings: {tried} requests")


def _query(param: str, value: str) -> str:
    from urllib.parse import urlencode

    return urlencode({param: value})


def test_a_50_mb_json_body_is_refused_before_it_is_parsed(api, web, org_a):
    body = json.dumps({"name": "x" * (50 * 1024 * 1024)})
    before = org_a.snapshot()
    with mock.patch.object(JSONParser, "parse", autospec=True, side_effect=JSONParser.parse) as parse:
        response = api.post("/api/v1/projects/", body, content_type="application/json")
        assert response.status_code == 413 and response.json()["code"] == "request_too_large"
        form = web.post(f"/projects/{org_a.objects[Project].pk}/status/", {"summary": "x" * (50 * 1024 * 1024)})
        assert form.status_code == 413
    assert parse.call_count == 0
    assert org_a.snapshot() == before


# --- Tests: the web forms ---------------------------------------------------------------------------

# Each form of the site: its class, the route it posts to, and the rows it writes.
FORMS: dict[str, tuple[type[forms.Form], type[Model]]] = {
    "projects:create": (ProjectForm, Project),
    "projects:edit": (ProjectForm, Project),
    "projects:status-create": (StatusUpdateForm, StatusUpdate),
    "projects:checkin": (StatusUpdateForm, StatusUpdate),  # the same form, from the lists' dialog
    "projects:transition": (StageMoveForm, StageTransition),
    "projects:tokens": (ApiTokenForm, ApiToken),
    "settings:service-tokens": (ServiceTokenForm, ApiToken),
    "ops:cost-create": (CostEntryForm, CostEntry),
    "ops:usage-create": (UsageForm, CostEntry),
    "ops:budget-create": (BudgetForm, Budget),
    "ops:risk-create": (RiskForm, Risk),
    "ops:risk-catalogue": (CatalogueForm, Risk),
    "ops:infrastructure-create": (InfrastructureForm, InfrastructureComponent),
    "ops:metric-create": (QualityMetricForm, QualityMetric),
    "ops:risk-edit": (RiskEditForm, Risk),
    "ops:risk-accept": (RiskAcceptForm, Risk),
    "ops:risk-close": (RiskCloseForm, Risk),
    "ops:report-create": (ReportRequestForm, Report),
    "ops:prices-import": (PriceImportForm, ModelPrice),
    "ops:imports": (ImportUploadForm, ImportJob),
    "ops:billing-rule-add": (BillingRuleForm, BillingMappingRule),
    "settings:members": (InvitationForm, Invitation),
    "settings:member-role": (MemberRoleForm, Membership),
    "settings:organization": (OrganizationSettingsForm, Organization),
    "settings:teams": (TeamForm, Team),
    "settings:team-edit": (TeamEditForm, Team),
    "settings:cost-centres": (CostCentreForm, CostCentre),
    "settings:cost-centre-edit": (CostCentreForm, CostCentre),
    "projects:notifications": (NotificationPreferencesForm, NotificationSubscription),  # checkboxes only
    "webhooks:endpoints": (WebhookEndpointForm, WebhookEndpoint),
}
FORM_TEXT = (forms.CharField, forms.ChoiceField)
FORM_NUMBER = (forms.IntegerField, forms.DecimalField, forms.FloatField)
# Where a form field is stored when not under its own name; None: not kept as typed (an override
# reason is recorded only when a gate was overridden, and this project has none unmet).
STORED_AS: dict[tuple[str, str], tuple[type[Model], str] | None] = {
    ("ops:risk-accept", "justification"): (Risk, "acceptance_justification"),
    ("ops:risk-close", "note"): (Risk, "status_note"),
    ("ops:risk-edit", "note"): (RiskAssessment, "note"),
    ("projects:transition", "override_reason"): None,
    ("ops:imports", "source"): (ImportJob, "options__source"),
}


# Web writes that take no typed input: a choice of organization, a token to revoke.
FORMLESS = {
    "ops:prices",  # applies a dry run: the entry ids it listed, no typed input
    "ops:import-csv",  # a file and a choice of project: its rows go through the ingest rules (test_imports_csv.py)
    "ops:billing-rule-delete",  # removes a rule, no typed input
    "projects:organization-switch",
    "projects:token-revoke",
    "settings:service-token-revoke",
    "settings:invitation-revoke",
    "settings:invitation-resend",
    "settings:member-remove",  # the member is the URL
    "settings:team-delete",  # the team is the URL
    "settings:cost-centre-delete",  # the cost centre is the URL
    "webhooks:endpoint-change",  # pause, resume or rotate: the action is the URL, no typed input
    "webhooks:redeliver",  # sends a delivery again, no typed input
}


def test_every_web_form_is_planned():
    posted = {
        r.name
        for r in routes()
        if not r.api and not allow_listed(r) and "POST" in view_methods(r)[0] and view_methods(r)[1]
    }
    assert posted - FORMLESS == set(FORMS)


def test_hostile_input_in_every_web_form_field_is_refused_or_stored_exactly(web, org_a):
    n, tried, stored, failures = count(1), 0, 0, []
    for name, (form_class, model) in FORMS.items():
        for field_name, field in form_class.base_fields.items():
            if isinstance(field, FORM_TEXT):
                values = [("nul", NUL), ("unicode", UNICODE)]
            elif isinstance(field, FORM_NUMBER):
                values = [("huge", str(v)) for v in HUGE_INTEGERS] + [("raw", v) for v in ("1e400", "NaN", "inf")]
            else:
                continue
            for label, value in values:
                url = _web_url(name, org_a, next(n))
                data = {**BODIES[(name, "POST")](org_a), "name": f"form {next(n)}", field_name: value}
                before = org_a.snapshot()
                response = send(web, "POST", url, data, api=False)
                tried += 1
                where = f"POST {url} {field_name}={label}"
                # Whether the form was taken shows in the rows (the token page answers 200 either way).
                written = org_a.snapshot() != before
                if response.status_code >= 500:
                    failures.append(f"{where}: {response.status_code} {response.content[:300]!r}")
                elif not written:
                    continue
                elif label == "nul":
                    failures.append(f"{where}: a NUL byte was accepted")
                elif label == "unicode" and isinstance(field, forms.CharField):
                    target = STORED_AS.get((name, field_name), (model, field_name))
                    # Lists: frameworks split at commas, service names at line ends.
                    lookup = "__contains" if field_name in ("frameworks", "otel_service_names") else ""
                    if target and not target[0].objects.filter(**{f"{target[1]}{lookup}": value}).exists():
                        failures.append(f"{where}: not stored exactly")
                    stored += 1
    for url in ("/projects/99999999999999999999/", f"/risks/{2**63}/", f"/reports/{10**30}/"):
        assert send(web, "GET", url, api=False).status_code == 404, url
    for query in ({"q": NUL}, {"q": UNICODE}, {"page": str(10**30)}, {"team": str(2**63)}, {"sort": NUL}):
        assert send(web, "GET", "/projects/", query, api=False).status_code == 200, query
    for query in ({"project": str(2**63)}, {"owner": NUL}, {"likelihood": str(10**30)}, {"page": NUL}):
        assert send(web, "GET", "/risks/", query, api=False).status_code == 200, query
    print(f"\nweb forms: {tried} requests, unicode stored in {stored} fields")
    assert stored > 15
    assert not failures, "\n".join(failures)


def _web_url(name: str, p: Portfolio, n: int) -> str:
    project = p.objects[Project]
    if name in ("ops:risk-accept", "ops:risk-close", "ops:risk-edit"):
        # Scored 2×2, so the edit form's 1×1 is a reassessment, whose note is kept.
        risk = risk_create(project=project, by=p.admin, title=f"w{n}", category="cost", likelihood=2, impact=2)
        return f"/risks/{risk.pk}/{name.split('-')[1]}/"
    if name == "projects:transition":
        project = services.project_create(organization=p.organization, by=p.admin, name=f"t{n}")
    paths = {
        "projects:create": "/projects/new/",
        "projects:tokens": "/account/tokens/",
        "settings:service-tokens": "/settings/service-tokens/",
        "settings:members": "/settings/members/",
        "settings:member-role": f"/settings/members/{p.objects[Membership].pk}/role/",
        "settings:organization": "/settings/",
        "settings:teams": "/settings/teams/",
        "settings:team-edit": f"/settings/teams/{p.objects[Team].pk}/",
        "settings:cost-centres": "/settings/cost-centres/",
        "settings:cost-centre-edit": f"/settings/cost-centres/{p.objects[CostCentre].pk}/",
        "projects:notifications": "/account/notifications/",
        "ops:report-create": "/reports/new/",
        "ops:prices-import": "/prices/import/",
        "ops:imports": "/imports/",
        "ops:billing-rule-add": "/imports/rules/",
        "webhooks:endpoints": "/webhooks/",
        "projects:edit": f"/projects/{project.pk}/edit/",
        "projects:status-create": f"/projects/{project.pk}/status/",
        "projects:checkin": f"/projects/{project.pk}/check-in/",
        "projects:transition": f"/projects/{project.pk}/stage/",
        "ops:cost-create": f"/projects/{project.pk}/costs/",
        "ops:usage-create": f"/projects/{project.pk}/usage/",
        "ops:budget-create": f"/projects/{project.pk}/budgets/",
        "ops:risk-create": f"/projects/{project.pk}/risks/",
        "ops:risk-catalogue": f"/projects/{project.pk}/risks/catalogue/",
        "ops:infrastructure-create": f"/projects/{project.pk}/infrastructure/",
        "ops:metric-create": f"/projects/{project.pk}/metrics/",
    }
    return paths[name]


def test_decimal_inputs_keep_their_value(api, org_a):
    """A control for the numbers above: an ordinary amount is stored as sent."""
    response = api.post(
        "/api/v1/costs/",
        {"project": org_a.objects[Project].pk, "date": "2026-03-05", "category": "storage", "amount": "12.3456"},
        format="json",
    )
    assert response.status_code == 201
    assert CostEntry.objects.get(pk=response.json()["id"]).amount == Decimal("12.3456")
