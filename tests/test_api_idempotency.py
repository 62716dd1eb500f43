"""Idempotency-Key on every POST of /api/v1/, and external ids resent with other content in bulk ingest."""

import datetime as dt
import threading

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

import ops.services
import projects.tasks  # noqa: F401 - registers the purge task
from ops.models import CostEntry, Risk
from projects import idempotency
from projects.models import ApiToken, AuditEvent, IdempotencyKey, Role
from projects.tests.api_support import _fresh_throttle, as_role, client_for  # noqa: F401
from projects.tests.factories import OrganizationFactory, ProjectFactory, member
from tests.concurrency import at_once
from tracker.api_conditional import IdempotentMixin
from tracker.celery import app
from tracker.exceptions import Conflict, ServiceUnavailable, Unprocessable

RISKS = "/api/v1/risks/"


@pytest.fixture
def project():
    return ProjectFactory(organization=OrganizationFactory(name="Acme"))


def risk_body(project) -> dict:
    return {"project": project.pk, "title": "Prompt injection", "category": "security", "likelihood": 4, "impact": 5}


def post(client, url, body, key, **headers):
    return client.post(url, body, format="json", headers={"Idempotency-Key": key, **headers})


@pytest.mark.django_db
def test_a_retry_with_the_same_key_and_body_gets_the_first_answer_and_writes_nothing(
    project, django_assert_num_queries
):
    client = as_role(project.organization)
    first = post(client, RISKS, risk_body(project), "create-risk-1")
    assert first.status_code == 201 and "Idempotent-Replayed" not in first
    events = AuditEvent.objects.count()

    # The token with its user, the claim's INSERT finding the row, reading it: nothing else.
    with django_assert_num_queries(3):
        again = post(client, RISKS, risk_body(project), "create-risk-1")

    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.content == first.content and again["Content-Type"] == first["Content-Type"]
    assert "RateLimit-Remaining" in again and "X-Request-ID" in again  # the moment's headers, not stored ones
    assert Risk.objects.count() == 1 and AuditEvent.objects.count() == events


@pytest.mark.django_db
def test_the_same_json_with_other_spacing_and_key_order_is_the_same_body(project):
    client = as_role(project.organization)
    body = risk_body(project)
    assert post(client, RISKS, body, "k").status_code == 201
    reordered = '{"impact": 5,   "likelihood": 4, "category": "security", "title": "Prompt injection", '
    reordered += f'"project": {project.pk}}}'
    again = client.post(RISKS, reordered, content_type="application/json", headers={"Idempotency-Key": "k"})
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert Risk.objects.count() == 1


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_a_422_and_writes_nothing(project):
    client = as_role(project.organization)
    assert post(client, RISKS, risk_body(project), "k").status_code == 201

    other = post(client, RISKS, {**risk_body(project), "impact": 1}, "k")

    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused" and set(other.json()) == {"detail", "code", "errors"}
    assert Risk.objects.get().impact == 5 and Risk.objects.count() == 1


@pytest.mark.django_db
def test_a_key_is_scoped_to_its_caller_and_its_path(project):
    org = project.organization
    alice, bob = client_for(member(org, Role.MANAGER)), client_for(member(org, Role.MANAGER))
    assert post(alice, RISKS, risk_body(project), "shared").status_code == 201
    assert post(bob, RISKS, risk_body(project), "shared").status_code == 201  # another caller: it runs
    risk = Risk.objects.order_by("pk").first()
    accept = {"justification": "Low exposure", "expires": (dt.date.today() + dt.timedelta(days=30)).isoformat()}
    answer = post(alice, f"{RISKS}{risk.pk}/accept/", accept, "shared")  # another path: it runs
    assert answer.status_code == 200 and "Idempotent-Replayed" not in answer
    assert Risk.objects.count() == 2 and IdempotencyKey.objects.count() == 3


@pytest.mark.django_db
def test_each_service_token_is_a_caller_of_its_own(project):
    from projects.models import TokenScope
    from projects.services import service_token_create

    admin = member(project.organization, Role.ADMIN)
    clients = []
    for name in ("gateway", "importer"):
        _, key = service_token_create(by=admin, organization=project.organization, name=name, scope=TokenScope.INGEST)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        clients.append(client)
    rows = {"entries": [{"project": project.pk, "date": "2026-03-01", "category": "inference", "amount": "1"}]}
    assert [post(c, "/api/v1/costs/bulk/", rows, "nightly").status_code for c in clients] == [201, 201]
    assert CostEntry.objects.count() == 2  # same service user, two tokens: two callers


@pytest.mark.django_db
def test_an_error_answer_is_kept_and_replayed_too(project):
    client = as_role(project.organization)
    bad = {**risk_body(project), "likelihood": 9}
    first = post(client, RISKS, bad, "bad")
    assert first.status_code == 400
    again = post(client, RISKS, bad, "bad")
    assert again.status_code == 400 and again["Idempotent-Replayed"] == "true" and again.content == first.content
    assert not Risk.objects.exists()


@pytest.mark.django_db
def test_a_5xx_answer_is_not_kept_so_the_retry_runs(project, monkeypatch):
    client = as_role(project.organization)
    real = ops.services.risk_create

    def down(**kwargs):
        raise ServiceUnavailable("The request took too long in the database.", code="statement_timeout")

    monkeypatch.setattr(ops.services, "risk_create", down)
    assert post(client, RISKS, risk_body(project), "k").status_code == 503
    assert not IdempotencyKey.objects.exists()

    def bug(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(ops.services, "risk_create", bug)
    with pytest.raises(RuntimeError):
        post(client, RISKS, risk_body(project), "k")
    assert not IdempotencyKey.objects.exists()

    monkeypatch.setattr(ops.services, "risk_create", real)
    answer = post(client, RISKS, risk_body(project), "k")
    assert answer.status_code == 201 and "Idempotent-Replayed" not in answer and Risk.objects.count() == 1


@pytest.mark.django_db
def test_a_malformed_key_is_a_400(project):
    client = as_role(project.organization)
    for key in ("", "with space", "x" * 256, "naïve"):
        answer = post(client, RISKS, risk_body(project), key)
        assert answer.status_code == 400 and set(answer.json()["errors"]) == {"Idempotency-Key"}, key
    assert not Risk.objects.exists() and not IdempotencyKey.objects.exists()


@pytest.mark.django_db
def test_a_replayed_token_creation_leaves_the_key_out():
    user = member(OrganizationFactory(), Role.VIEWER)
    user.set_password("correct horse battery")
    user.save()
    client = APIClient()
    client.force_login(user)
    body = {"name": "laptop", "password": "correct horse battery"}
    first = post(client, "/api/v1/auth/tokens/", body, "mint-1")
    assert first.status_code == 201 and first.json()["key"]
    again = post(client, "/api/v1/auth/tokens/", body, "mint-1")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json() == {name: value for name, value in first.json().items() if name != "key"}
    assert ApiToken.objects.filter(user=user).count() == 1
    assert first.json()["key"].encode() not in bytes(IdempotencyKey.objects.get().body)


def _post_routes(resolver: URLResolver, prefix: str = "") -> list[tuple[str, type]]:
    found = []
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            found += _post_routes(pattern, route)
        elif isinstance(pattern, URLPattern) and route.startswith("api/v1/"):
            cls, actions = getattr(pattern.callback, "cls", None), getattr(pattern.callback, "actions", None) or {}
            if cls is not None and ("post" in actions or (not actions and hasattr(cls, "post"))):
                found.append((route, cls))
    return found


def test_every_post_of_the_api_takes_an_idempotency_key():
    routes = _post_routes(get_resolver())
    assert len(routes) >= 15  # creates, bulk ingest, actions
    assert [route for route, cls in routes if not issubclass(cls, IdempotentMixin)] == []


# --- The claim itself -----------------------------------------------------------------------------


def claim(**changes):
    return idempotency.idempotency_key_claim(
        **{"caller": "user:1", "path": "/api/v1/risks/", "key": "k", "fingerprint": "f" * 64, **changes}
    )


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_claims_of_one_key_let_exactly_one_run():
    outcomes = at_once(claim, claim)
    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["Claim", "Conflict"]
    assert IdempotencyKey.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_retry_while_the_first_request_runs_is_a_409(monkeypatch):
    project = ProjectFactory(organization=OrganizationFactory())
    user = member(project.organization, Role.CONTRIBUTOR)
    first_client, second_client = client_for(user), client_for(user)  # one caller, two connections
    inside, release = threading.Event(), threading.Event()
    real = ops.services.risk_create

    def slow(**kwargs):
        inside.set()
        assert release.wait(30)
        return real(**kwargs)

    monkeypatch.setattr(ops.services, "risk_create", slow)

    def first():
        return post(first_client, RISKS, risk_body(project), "k").status_code

    def second():
        assert inside.wait(30)
        try:
            answer = post(second_client, RISKS, risk_body(project), "k")
            return answer.status_code, answer.json()["code"]
        finally:
            release.set()

    assert at_once(first, second) == [201, (409, "idempotency_key_in_use")]
    assert Risk.objects.count() == 1
    assert post(second_client, RISKS, risk_body(project), "k")["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_a_claim_whose_request_never_answered_is_taken_over_after_the_lock_window(settings):
    now = timezone.now()
    first = claim(now=now)
    with pytest.raises(Conflict):
        claim(now=now + dt.timedelta(seconds=settings.API_IDEMPOTENCY_LOCK_SECONDS - 1))
    taken = claim(now=now + dt.timedelta(seconds=settings.API_IDEMPOTENCY_LOCK_SECONDS + 1))
    assert taken == first and IdempotencyKey.objects.count() == 1


@pytest.mark.django_db
def test_a_key_expires_after_24_hours_even_before_the_purge(settings):
    assert settings.API_IDEMPOTENCY_KEY_HOURS == 24
    now = timezone.now()
    first = claim(now=now)
    idempotency.idempotency_key_store(claim=first, answer=idempotency.StoredAnswer(201, {}, b"{}"))
    with pytest.raises(Unprocessable):
        claim(now=now + dt.timedelta(hours=23), fingerprint="0" * 64)
    fresh = claim(now=now + dt.timedelta(hours=24, seconds=1), fingerprint="0" * 64)
    assert isinstance(fresh, idempotency.Claim) and fresh != first
    assert IdempotencyKey.objects.get().fingerprint == "0" * 64


@pytest.mark.django_db
def test_the_hourly_purge_deletes_keys_older_than_24_hours():
    now = timezone.now()
    claim(key="old", now=now - dt.timedelta(hours=24, minutes=1))
    claim(key="young", now=now - dt.timedelta(hours=23))
    entry = next(e for e in app.conf.beat_schedule.values() if e["task"] == "projects.idempotency_keys_purge")
    assert entry["task"] in app.tasks

    assert app.tasks[entry["task"]].apply().get() == 1

    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["young"]


# --- External ids resent with other content -------------------------------------------------------


def cost(project, external_id: str, amount: str = "12.50", **extra) -> dict:
    row = {"project": project.pk, "date": "2026-03-01", "category": "inference", "amount": amount}
    return {**row, "external_id": external_id, **extra}


@pytest.mark.django_db
def test_an_external_id_resent_as_recorded_is_existing_and_with_other_content_a_409_naming_the_rows(project):
    client = as_role(project.organization)
    sent = [cost(project, "a"), cost(project, "b", description="GPU"), cost(project, "c")]
    assert client.post("/api/v1/costs/bulk/", {"entries": sent}, format="json").status_code == 201

    same = client.post("/api/v1/costs/bulk/", {"entries": [cost(project, "b", "12.5000", description="GPU")]})
    assert same.status_code == 200 and same.json()["existing"][0]["external_id"] == "b"

    rows = [cost(project, "new"), cost(project, "a", "13"), cost(project, "b"), cost(project, "c")]
    answer = client.post("/api/v1/costs/bulk/", {"entries": rows}, format="json")

    assert answer.status_code == 409 and answer.json()["code"] == "external_id_conflict"
    ids = dict(CostEntry.objects.values_list("external_id", "pk"))
    assert answer.json()["errors"] == {
        "entries.1.external_id": [f"Recorded as entry {ids['a']} with another amount."],
        "entries.2.external_id": [f"Recorded as entry {ids['b']} with another description."],
    }
    assert CostEntry.objects.count() == 3 and not CostEntry.objects.filter(external_id="new").exists()


@pytest.mark.django_db
def test_usage_resent_with_other_tokens_is_a_409_and_as_recorded_is_existing(project):
    client = as_role(project.organization)
    row = {"project": project.pk, "date": "2026-03-01", "model": "gpt-x", "provider": "openai"}
    row |= {"input_tokens": 10, "output_tokens": 5, "external_id": "u1"}
    assert client.post("/api/v1/usage/", {"entries": [row]}, format="json").status_code == 201
    assert client.post("/api/v1/usage/", {"entries": [row]}, format="json").status_code == 200
    answer = client.post("/api/v1/usage/", {"entries": [{**row, "output_tokens": 6}]}, format="json")
    assert answer.status_code == 409 and list(answer.json()["errors"]) == ["entries.0.external_id"]
    assert "output_tokens" in answer.json()["errors"]["entries.0.external_id"][0]
    assert CostEntry.objects.get().output_tokens == 5


def test_the_schema_documents_idempotency_keys_on_every_post_and_etags_on_json_gets(settings):
    from tracker.api_conditional import document_conditional_requests

    hooks = settings.SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]
    assert "tracker.api_conditional.document_conditional_requests" in hooks
    json_body = {"content": {"application/json": {"schema": {}}}}
    schema = {
        "paths": {
            "/api/v1/risks/": {
                "post": {"responses": {"201": json_body, "400": json_body, "409": json_body}},
                "get": {"parameters": [{"name": "page"}], "responses": {"200": json_body}},
            },
            "/api/v1/costs/export/": {"get": {"responses": {"200": {"content": {"text/csv": {}}}}}},
        }
    }

    paths = document_conditional_requests(schema, None, None, True)["paths"]

    post, get = paths["/api/v1/risks/"]["post"], paths["/api/v1/risks/"]["get"]
    assert [p["name"] for p in post["parameters"]] == ["Idempotency-Key"]
    assert list(post["responses"]) == ["201", "400", "409"]  # the 422 is ApiAutoSchema's, on every POST
    assert all("Idempotent-Replayed" in post["responses"][code]["headers"] for code in ("201", "400", "409"))
    assert "IdempotencyKeyInUse" in post["responses"]["409"]["content"]["application/json"]["examples"]
    assert [p["name"] for p in get["parameters"]] == ["page", "If-None-Match"]
    assert "ETag" in get["responses"]["200"]["headers"] and "304" in get["responses"]
    assert paths["/api/v1/costs/export/"]["get"] == {"responses": {"200": {"content": {"text/csv": {}}}}}
