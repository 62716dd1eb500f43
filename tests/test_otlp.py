"""The OTLP/HTTP receiver: the real OpenTelemetry SDK and JSON bodies in, usage cost entries out (docs/otlp.md)."""

import datetime as dt
import gzip
import json
import threading
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from django.db import OperationalError
from django.test import Client, override_settings
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from rest_framework.settings import api_settings

from ops.models import CostEntry, CostSource, OtlpSpanKey
from ops.services.otlp import otlp_span_keys_purge
from ops.tests.factories import ModelPriceFactory
from projects.models import AuditAction, AuditEvent, Role, TokenScope
from projects.services import api_token_create, project_update, service_token_create
from projects.tests.factories import OrganizationFactory, ProjectFactory, member
from tracker.exceptions import ValidationFailed

URL = "/otlp/v1/traces"
PROTOBUF, JSON = "application/x-protobuf", "application/json"
# The OTLP project's examples/trace.json (open-telemetry/opentelemetry-proto, Apache-2.0): no GenAI attributes.
SAMPLE = Path(__file__).parent / "data" / "otlp-trace-example.json"
YESTERDAY = dt.datetime.now(dt.UTC).replace(hour=10, minute=0, second=0, microsecond=0) - dt.timedelta(days=1)


@pytest.fixture
def setup(db):
    """An organization in Berlin, two projects each naming its service, gpt-4o priced, an ingest token."""
    org = OrganizationFactory(timezone="Europe/Berlin")
    admin = member(org, Role.ADMIN)
    chat = ProjectFactory(organization=org, slug="chat", otel_service_names=["chat-app"])
    search = ProjectFactory(organization=org, slug="search", otel_service_names=["search-api", "search-worker"])
    ModelPriceFactory(
        organization=org,
        model="gpt-4o",
        input_per_mtok=Decimal("2.50"),
        cached_input_per_mtok=Decimal("1.25"),
        output_per_mtok=Decimal("10.00"),
        valid_from=dt.date(2025, 1, 1),
    )
    _, raw = service_token_create(organization=org, scope=TokenScope.INGEST, name="otel", by=admin)
    return {"org": org, "admin": admin, "chat": chat, "search": search, "token": raw}


def _span(n: int, *, end: dt.datetime = YESTERDAY, trace: int = 1, **attributes) -> dict:
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 1_000_000,  # 200,000 of them cached
        "gen_ai.usage.cache_read.input_tokens": 200_000,
        "gen_ai.usage.output_tokens": 100_000,
        **attributes,
    }
    nanos = int(end.timestamp()) * 1_000_000_000
    return {
        "traceId": f"{trace:032x}",
        "spanId": f"{n:016x}",
        "name": "chat gpt-4o",
        "kind": 3,
        "startTimeUnixNano": str(nanos - 1_000_000_000),  # 64-bit integers as strings, as OTLP JSON allows
        "endTimeUnixNano": str(nanos),
        "attributes": [{"key": k, "value": _any(v)} for k, v in attributes.items() if v is not None],
    }


def _any(value) -> dict:
    if isinstance(value, int):
        return {"intValue": str(value)}
    return {"stringValue": value}


def _export(*groups: tuple[dict, list[dict]]) -> dict:
    """OTLP JSON: one resourceSpans per (resource attributes, spans)."""
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": k, "value": _any(v)} for k, v in resource.items()]},
                "scopeSpans": [{"scope": {"name": "openlit"}, "spans": spans, "unknownField": 1}],
            }
            for resource, spans in groups
        ]
    }


def _protobuf(document: dict) -> bytes:
    """The same export as protobuf (ids turned from hex into base64 as proto3 JSON wants)."""
    from ops.otlp import _hex_ids_to_base64

    document = json.loads(json.dumps(document))
    _hex_ids_to_base64(document)
    return json_format.ParseDict(document, ExportTraceServiceRequest(), ignore_unknown_fields=True).SerializeToString()


def _post(token: str | None, body: bytes, content_type: str = PROTOBUF, **headers):
    if token:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return Client().post(URL, body, content_type=content_type, **headers)


def _usage(project) -> list[tuple]:
    return list(
        CostEntry.objects.filter(project=project)
        .order_by("model", "date", "provider")
        .values_list(
            "date", "provider", "model", "input_tokens", "cached_input_tokens", "output_tokens", "requests", "amount"
        )
    )


def _partial(response) -> tuple[int, str]:
    answer = ExportTraceServiceResponse()
    if response["Content-Type"] == JSON:
        json_format.Parse(response.content, answer)
    else:
        answer.ParseFromString(response.content)
    return answer.partial_success.rejected_spans, answer.partial_success.error_message


def _status(response) -> status_pb2.Status:
    status = status_pb2.Status()
    if response["Content-Type"] == JSON:
        json_format.Parse(response.content, status)
    else:
        status.ParseFromString(response.content)
    return status


# --- The real SDK -------------------------------------------------------------------------------


def _sdk_spans(service: str, count: int, first: int = 0) -> list:
    """Finished SDK spans of `service`: `count` chat calls, each 1,000 input (100 cached) and 50 output tokens."""
    collected = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(collected))
    tracer = provider.get_tracer("test")
    end = int(YESTERDAY.timestamp()) * 1_000_000_000
    with tracer.start_as_current_span("invoke_agent helper", start_time=end - 10**10) as agent:
        # The agent span sums its model calls: it must not be counted again.
        agent.set_attributes({"gen_ai.operation.name": "invoke_agent", "gen_ai.usage.input_tokens": 10**6})
        for n in range(first, first + count):
            span = tracer.start_span(f"chat {n}", start_time=end - 10**9)
            span.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.system": "openai",  # the older generation of the conventions
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.response.model": "gpt-4o",
                    "gen_ai.usage.input_tokens": 1000,
                    "gen_ai.usage.cache_read.input_tokens": 100,
                    "gen_ai.usage.output_tokens": 50,
                }
            )
            span.end(end_time=end)
            tracer.start_span("GET /db").end(end_time=end)  # not usage: ignored
    return collected.get_finished_spans()


@pytest.mark.django_db(transaction=True)
def test_the_sdk_exporter_records_two_services_into_two_projects_exactly_once(setup, live_server):
    exporter = OTLPSpanExporter(
        endpoint=f"{live_server.url}{URL}", headers={"Authorization": f"Bearer {setup['token']}"}, timeout=10
    )
    chat_spans, search_spans = _sdk_spans("chat-app", 4), _sdk_spans("search-worker", 2)
    assert exporter.export([*chat_spans, *search_spans]) == SpanExportResult.SUCCESS
    assert exporter.export([*chat_spans, *search_spans]) == SpanExportResult.SUCCESS  # resent: a no-op
    day = YESTERDAY.astimezone(setup["org"].tzinfo).date()
    # 900 input at 2.50, 100 cached at 1.25 (not charged twice), 50 output at 10.00 per million, per call.
    per_call = (900 * Decimal("2.50") + 100 * Decimal("1.25") + 50 * Decimal("10.00")) / 10**6
    assert _usage(setup["chat"]) == [
        (day, "openai", "gpt-4o", 3600, 400, 200, 4, (4 * per_call).quantize(Decimal("0.0001")))
    ]
    assert _usage(setup["search"]) == [
        (day, "openai", "gpt-4o", 1800, 200, 100, 2, (2 * per_call).quantize(Decimal("0.0001")))
    ]
    assert OtlpSpanKey.objects.count() == 6
    events = AuditEvent.objects.filter(action=AuditAction.BATCH, object_type="ops.costentry")
    assert [(e.project_id, len(e.changes["created"]), e.changes["spans"]) for e in events] == [(None, 2, 6)]
    assert "service token" in events[0].actor_repr
    exporter.shutdown()


@pytest.mark.django_db(transaction=True)
def test_two_exporters_sending_at_once_neither_lose_nor_double(setup, live_server):
    shared = _export(({"service.name": "chat-app"}, [_span(n) for n in range(1, 201)]))
    own = [_export(({"service.name": "chat-app"}, [_span(n, trace=t) for n in range(1, 101)])) for t in (2, 3)]
    bodies = [[_protobuf(shared), _protobuf(own[i]), _protobuf(shared)] for i in range(2)]
    answers: list[int] = []

    def send(mine: list[bytes]) -> None:
        with requests.Session() as session:
            for body in mine:
                answers.append(
                    session.post(
                        f"{live_server.url}{URL}",
                        data=body,
                        headers={"Authorization": f"Bearer {setup['token']}", "Content-Type": PROTOBUF},
                        timeout=30,
                    ).status_code
                )

    threads = [threading.Thread(target=send, args=(mine,)) for mine in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * 6
    [(_, _, _, input_tokens, cached, output, calls, amount)] = _usage(setup["chat"])
    assert (calls, input_tokens, cached, output) == (400, 400 * 800_000, 400 * 200_000, 400 * 100_000)
    assert amount == Decimal("3.25") * 400


# --- JSON bodies and the mapping ------------------------------------------------------------------


def test_a_json_export_maps_projects_models_and_reports_unknown_services(setup):
    body = _export(
        ({"service.name": "chat-app"}, [_span(1), _span(2, **{"gen_ai.response.model": "gpt-4o-2024"})]),
        ({"service.name": "nobody"}, [_span(3), _span(4, **{"gen_ai.usage.output_tokens": None})]),
        ({"service.name": "nobody", "tracker.project": "search"}, [_span(5, **{"gen_ai.provider.name": None})]),
        ({"service.name": "chat-app"}, [_span(6, **{"tracker.project": str(setup["search"].pk)})]),
    )
    response = _post(setup["token"], json.dumps(body).encode(), JSON)
    assert response.status_code == 200 and response["Content-Type"] == JSON
    assert _partial(response) == (2, "2 usage span(s): no project names this service.name or tracker.project")
    day = YESTERDAY.astimezone(setup["org"].tzinfo).date()
    assert _usage(setup["chat"]) == [
        (day, "openai", "gpt-4o", 800_000, 200_000, 100_000, 1, Decimal("3.2500")),
        # The response model wins over the requested one; no price for it: kept, unpriced.
        (day, "openai", "gpt-4o-2024", 800_000, 200_000, 100_000, 1, None),
    ]
    assert _usage(setup["search"]) == [
        (day, "openai", "gpt-4o", 800_000, 200_000, 100_000, 1, Decimal("3.2500")),
        (day, "other", "gpt-4o", 800_000, 200_000, 100_000, 1, Decimal("3.2500")),
    ]
    assert CostEntry.objects.filter(source=CostSource.USAGE, amount=None).count() == 1


def test_the_day_is_the_span_end_in_the_organizations_timezone(setup):
    late = YESTERDAY.replace(hour=23, minute=30)  # 00:30 or 01:30 the next day in Berlin
    _post(setup["token"], _protobuf(_export(({"service.name": "chat-app"}, [_span(1, end=late)]))))
    assert CostEntry.objects.get().date == late.date() + dt.timedelta(days=1)


def test_the_sample_trace_is_accepted_and_yields_nothing(setup):
    response = _post(setup["token"], SAMPLE.read_bytes(), JSON)
    assert response.status_code == 200 and json.loads(response.content) == {}
    assert not CostEntry.objects.exists() and not OtlpSpanKey.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.BATCH).exists()


def test_bad_spans_are_refused_one_by_one_and_the_rest_recorded(setup):
    spans = [
        _span(1),
        {**_span(2), "spanId": ""},  # no span id
        _span(3, **{"gen_ai.usage.cache_read.input_tokens": 2_000_000}),  # more cached than input
        _span(4, **{"gen_ai.request.model": None}),
        _span(5, end=YESTERDAY - dt.timedelta(days=30)),  # older than the span keys are kept
    ]
    response = _post(setup["token"], _protobuf(_export(({"service.name": "chat-app"}, spans))))
    rejected, message = _partial(response)
    assert response.status_code == 200 and rejected == 4
    assert "invalid trace or span id" in message and "ended before the 7-day window" in message
    assert CostEntry.objects.get().requests == 1


def test_a_service_token_cannot_write_into_another_organization(setup):
    other = OrganizationFactory()
    _, raw = service_token_create(organization=other, scope=TokenScope.INGEST, name="x", by=member(other, Role.ADMIN))
    ProjectFactory(organization=other, otel_service_names=["mine"])
    body = _protobuf(
        _export(
            ({"service.name": "chat-app"}, [_span(1)]),  # setup's service name, not the other organization's
            ({"service.name": "mine", "tracker.project": str(setup["chat"].pk)}, [_span(2)]),
            ({"service.name": "mine"}, [_span(3)]),
        )
    )
    response = _post(raw, body)
    assert _partial(response)[0] == 2
    assert not CostEntry.objects.filter(project__organization=setup["org"]).exists()
    # The same trace and span ids in the token's own organization still count there: keys are per organization.
    assert _partial(_post(setup["token"], body))[0] == 1
    assert CostEntry.objects.filter(project=setup["chat"]).get().requests == 2


# --- Answers per the spec -------------------------------------------------------------------------


def test_gzip_bodies_are_read_and_their_decompressed_size_capped(setup, settings):
    body = _protobuf(_export(({"service.name": "chat-app"}, [_span(1)])))
    assert _post(setup["token"], gzip.compress(body), HTTP_CONTENT_ENCODING="gzip").status_code == 200
    settings.OTLP_MAX_DECOMPRESSED_BYTES = 10_000
    bomb = gzip.compress(b"\x00" * 1_000_000)  # about 1 kB sent
    refused = _post(setup["token"], bomb, HTTP_CONTENT_ENCODING="gzip")
    assert refused.status_code == 413 and "decompressed" in _status(refused).message
    truncated = _post(setup["token"], gzip.compress(body)[:-10], HTTP_CONTENT_ENCODING="gzip")
    assert truncated.status_code == 400
    settings.OTLP_MAX_BODY_BYTES = 100
    assert _post(setup["token"], body).status_code == 413
    assert CostEntry.objects.get().requests == 1


def test_a_malformed_body_is_a_400_in_the_requests_encoding(setup):
    refused = _post(setup["token"], b"\xff\xff\xff")
    assert refused.status_code == 400 and refused["Content-Type"] == PROTOBUF
    assert _status(refused).code == 3 and "protobuf" in _status(refused).message
    refused = _post(setup["token"], b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]}', JSON)
    assert refused.status_code == 400 and refused["Content-Type"] == JSON and _status(refused).message
    assert _post(setup["token"], b"{}", "text/plain").status_code == 415


def test_without_a_valid_ingest_service_token_the_answer_is_401_or_403(setup):
    body = _protobuf(_export(({"service.name": "chat-app"}, [_span(1)])))
    missing, wrong = _post(None, body), _post("nope", body)
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert missing["WWW-Authenticate"].startswith("Bearer") and _status(missing).code == 16
    _, reader = service_token_create(organization=setup["org"], scope=TokenScope.READ, name="r", by=setup["admin"])
    _, personal = api_token_create(user=setup["admin"], name="mine")
    assert (_post(reader, body).status_code, _post(personal, body).status_code) == (403, 403)
    assert not CostEntry.objects.exists()


def test_overload_answers_429_and_503_with_retry_after(setup, monkeypatch):
    body = _protobuf(_export(({"service.name": "chat-app"}, [_span(1)])))
    rates = {**api_settings.DEFAULT_THROTTLE_RATES, "otlp": "1/minute"}
    from django.conf import settings

    with override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}):
        assert _post(setup["token"], body).status_code == 200
        throttled = _post(setup["token"], body)
    assert throttled.status_code == 429 and int(throttled["Retry-After"]) > 0 and _status(throttled).code == 8

    def unavailable(**kwargs):
        raise OperationalError("canceling statement due to lock timeout")

    monkeypatch.setattr("ops.api.otlp.otlp_traces_ingest", unavailable)
    refused = _post(setup["token"], body)
    assert refused.status_code == 503 and refused["Retry-After"] == "5" and _status(refused).code == 14


def test_an_export_costs_a_fixed_number_of_queries(setup, django_assert_num_queries):
    body = _protobuf(
        _export(
            ({"service.name": "chat-app"}, [_span(n) for n in range(1, 300)]),
            ({"service.name": "search-api"}, [_span(n, trace=2) for n in range(1, 300)]),
        )
    )
    _post(setup["token"], _protobuf(_export(({"service.name": "chat-app"}, [_span(999)]))))  # the entry exists
    # token, savepoint, projects, prices, span keys and upsert (one statement), re-price, the snapshots' lock
    # and days, history, release.
    with django_assert_num_queries(10):
        assert _post(setup["token"], body).status_code == 200


# --- Span keys and service names -------------------------------------------------------------------


def test_span_keys_are_purged_after_the_retention(setup):
    _post(setup["token"], _protobuf(_export(({"service.name": "chat-app"}, [_span(1)]))))
    assert otlp_span_keys_purge(today=YESTERDAY.date() + dt.timedelta(days=7)) == 0
    assert otlp_span_keys_purge(today=YESTERDAY.date() + dt.timedelta(days=8)) == 1


def test_a_service_name_belongs_to_one_project_of_an_organization(setup):
    with pytest.raises(ValidationFailed) as refused:
        project_update(project=setup["chat"], by=setup["admin"], otel_service_names=[" search-api ", "new"])
    assert refused.value.errors == {"otel_service_names": ["“search-api” belongs to another project."]}
    project_update(project=setup["chat"], by=setup["admin"], otel_service_names=[" chat-app ", "new", "new"])
    setup["chat"].refresh_from_db()
    assert setup["chat"].otel_service_names == ["chat-app", "new"]
    elsewhere = ProjectFactory(organization=OrganizationFactory())
    project_update(project=elsewhere, by=member(elsewhere.organization, Role.ADMIN), otel_service_names=["new"])


def test_service_names_are_edited_in_the_api_and_on_the_project_form(setup):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(setup["admin"])
    answer = api.patch(f"/api/v1/projects/{setup['chat'].pk}/", {"otel_service_names": ["chat-v2"]}, format="json")
    assert answer.status_code == 200 and answer.json()["otel_service_names"] == ["chat-v2"]
    taken = api.patch(f"/api/v1/projects/{setup['chat'].pk}/", {"otel_service_names": ["search-api"]}, format="json")
    assert taken.status_code == 400 and "otel_service_names" in taken.json()["errors"]
    browser = Client()
    browser.force_login(setup["admin"])
    page = browser.get(f"/projects/{setup['chat'].pk}/edit/")
    assert "chat-v2" in page.content.decode()
    form = {"name": setup["chat"].name, "industry": "other", "use_case": "other", "ai_act_tier": "unassessed"}
    browser.post(f"/projects/{setup['chat'].pk}/edit/", {**form, "otel_service_names": "chat-v2\nchat-v3\n"})
    setup["chat"].refresh_from_db()
    assert setup["chat"].otel_service_names == ["chat-v2", "chat-v3"]
