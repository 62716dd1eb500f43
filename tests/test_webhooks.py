"""Signed webhooks (issue 15): a real HTTP receiver verifies every delivery with the `standardwebhooks` package."""

import datetime as dt
import http.server
import json
import os
import signal
import threading
import time
from decimal import Decimal

import pytest
import time_machine
from celery import Celery
from django.core import mail
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from ops.api.serializers import RiskSerializer
from ops.models import ReportKind
from ops.services import risk_accept, risk_close, risk_create, risk_update
from ops.services.budgets import budget_thresholds_evaluate
from ops.services.reports import report_build
from ops.services.signals import risk_signals_evaluate
from ops.tests.factories import BudgetFactory, CostEntryFactory, ReportFactory
from projects.models import AuditEvent, Role, Stage
from projects.services import project_transition, status_update_create
from projects.tests.api_support import client_for
from projects.tests.factories import OrganizationFactory, ProjectFactory, member
from tests.fault_helpers import RedisServer, Worker, free_port, wait_for
from tracker.exceptions import ValidationFailed
from webhooks import outbox, transport
from webhooks.models import DeliveryStatus, EndpointKind, EndpointState, EventType, WebhookDelivery, WebhookEvent
from webhooks.services import (
    webhook_deliveries_due,
    webhook_delivery_attempt,
    webhook_delivery_redeliver,
    webhook_endpoint_create,
    webhook_endpoint_secret_rotate,
)


class Receiver:
    """An HTTP server in a thread on a free port: records each request, answers the queued statuses (then 200)."""

    def __init__(self, statuses=(), hold: threading.Event | None = None):
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses, self.hold, self.arrived = list(statuses), hold, threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                receiver.arrived.set()
                if receiver.hold is not None and len(receiver.requests) == 1:
                    receiver.hold.wait(60)  # the first request hangs: the worker is killed meanwhile
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"boom")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hooks"

    def verified(self, secret: str) -> list[dict]:
        """Every request verified with the secret (the standard's own check; raises when one does not verify)."""
        return [Webhook(secret).verify(body, headers) for headers, body in self.requests]

    def close(self):
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(**kwargs) -> Receiver:
        made.append(Receiver(**kwargs))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture
def private_ok(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True


@pytest.fixture
def admin(org):
    return member(org, Role.ADMIN)


def _endpoint(org, admin, url, events=(EventType.RISK_CREATED,), **kwargs):
    return webhook_endpoint_create(organization=org, by=admin, url=url, events=list(events), **kwargs)


def _deliver_due() -> list:
    """What the workers do: one attempt of each delivery that is due now."""
    due = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=timezone.now())
    return [webhook_delivery_attempt(delivery_id=pk) for pk in due.values_list("pk", flat=True)]


def _risk(project, by, **kwargs):
    return risk_create(
        project=project, by=by, title="Prompt injection", category="security", likelihood=3, impact=3, **kwargs
    )


pytestmark = pytest.mark.django_db


def test_a_delivery_verifies_with_standardwebhooks_and_carries_the_object_as_the_api_returns_it(
    org, project, admin, contributor, receiver, private_ok
):
    r = receiver()
    _, secret = _endpoint(org, admin, r.url)
    assert secret.startswith("whsec_")
    risk = _risk(project, contributor)
    (attempt,) = _deliver_due()
    assert attempt.succeeded and attempt.response_code == 200 and attempt.response_excerpt == "ok"
    (payload,) = r.verified(secret)
    assert payload["type"] == "risk.created"
    risk.refresh_from_db()
    assert payload["data"] == json.loads(json.dumps(RiskSerializer(risk).data))
    headers, _ = r.requests[0]
    assert headers["webhook-id"] == WebhookEvent.objects.get().msg_id
    assert WebhookDelivery.objects.get().status == DeliveryStatus.DELIVERED


def test_a_receiver_answering_500_then_200_gets_the_event_on_the_retry_with_the_same_id(
    org, project, admin, contributor, receiver, private_ok
):
    r = receiver(statuses=[500])
    _, secret = _endpoint(org, admin, r.url)
    _risk(project, contributor)
    (first,) = _deliver_due()
    delivery = WebhookDelivery.objects.get()
    assert not first.succeeded and first.response_code == 500 and first.response_excerpt == "boom"
    assert delivery.status == DeliveryStatus.PENDING
    # The schedule is in the database: a minute after the answer.
    assert dt.timedelta(seconds=60) <= delivery.next_attempt_at - first.at <= dt.timedelta(seconds=62)
    assert webhook_delivery_attempt(delivery_id=delivery.pk) is None  # not due yet: nothing sent
    assert len(r.requests) == 1
    with time_machine.travel(delivery.next_attempt_at + dt.timedelta(seconds=1)):
        assert webhook_deliveries_due() == [delivery.pk]  # beat's sweep finds the retry
        (second,) = _deliver_due()
        payloads = r.verified(secret)
    assert second.succeeded and second.number == 2
    assert payloads[0] == payloads[1]
    assert r.requests[0][0]["webhook-id"] == r.requests[1][0]["webhook-id"]
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 2


def test_a_rolled_back_change_writes_and_sends_nothing(
    org, project, admin, contributor, private_ok, django_capture_on_commit_callbacks
):
    _endpoint(org, admin, "https://hooks.example.com/x")
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(RuntimeError), transaction.atomic():
        _risk(project, contributor)
        assert WebhookEvent.objects.count() == 1
        raise RuntimeError("the change fails after the event was written")
    assert callbacks == []
    assert not WebhookEvent.objects.exists() and not WebhookDelivery.objects.exists()
    with django_capture_on_commit_callbacks() as callbacks:
        _risk(project, contributor)
    assert len(callbacks) == 1 and WebhookDelivery.objects.count() == 1


def test_no_endpoint_no_event(org, project, contributor):
    _risk(project, contributor)
    assert not WebhookEvent.objects.exists()


def test_private_and_loopback_addresses_are_refused_unless_allowed(
    org, project, admin, contributor, receiver, settings, monkeypatch
):
    r = receiver()
    for url in (
        r.url,
        "http://10.1.2.3/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "ftp://x.org/",
    ):
        with pytest.raises(ValidationFailed) as refused:
            _endpoint(org, admin, url)
        assert "url" in refused.value.errors
    # A name is judged where it resolves, at each attempt: "localhost", and a name pointing at a private address.
    port = r.server.server_port
    _endpoint(org, admin, f"http://localhost:{port}/hooks")
    _endpoint(org, admin, f"http://hooks.example.com:{port}/hooks")
    real_resolve = transport.resolve
    monkeypatch.setattr(
        transport,
        "resolve",
        lambda host, port: ["10.0.0.7"] if host == "hooks.example.com" else real_resolve(host, port),
    )
    _risk(project, contributor)
    attempts = _deliver_due()
    assert [a.succeeded for a in attempts] == [False, False]
    assert all(a.error.startswith("Refused:") and "non-public" in a.error for a in attempts)
    assert r.requests == []  # nothing reached the receiver
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    monkeypatch.setattr(transport, "resolve", lambda host, port: ["127.0.0.1"])
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    assert [a.succeeded for a in _deliver_due()] == [True, True]
    # Pinned: the connection went to the resolved address while the Host header kept the name.
    assert sorted(h["host"] for h, _ in r.requests) == [f"hooks.example.com:{port}", f"localhost:{port}"]


def test_rotation_keeps_the_old_secret_valid_during_the_grace_period_only(
    org, project, admin, contributor, receiver, private_ok, settings
):
    r = receiver()
    endpoint, old = _endpoint(org, admin, r.url)
    new = webhook_endpoint_secret_rotate(endpoint=endpoint, by=admin)
    assert new != old and new.startswith("whsec_")
    # The rotation is in the history, without either secret.
    event = AuditEvent.objects.filter(object_type="webhooks.webhookendpoint", object_id=str(endpoint.pk)).latest("pk")
    assert list(event.changes) == ["secret"]
    assert event.changes["secret"][1].startswith("rotated")
    assert old not in str(event.changes) and new not in str(event.changes)
    _risk(project, contributor)
    _deliver_due()
    assert r.verified(old) == r.verified(new)
    with time_machine.travel(timezone.now() + dt.timedelta(hours=settings.WEBHOOK_SECRET_GRACE_HOURS, minutes=1)):
        _risk(project, contributor)
        _deliver_due()
        headers, body = r.requests[-1]
        assert Webhook(new).verify(body, headers)["type"] == "risk.created"
        with pytest.raises(WebhookVerificationError):
            Webhook(old).verify(body, headers)


def test_an_endpoint_failing_repeatedly_is_disabled_and_its_admins_are_mailed(
    org, project, admin, contributor, receiver, private_ok, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 2
    r = receiver(statuses=[500] * 5)
    endpoint, _ = _endpoint(org, admin, r.url)
    _risk(project, contributor)
    _risk(project, contributor)
    with django_capture_on_commit_callbacks(execute=True):
        _deliver_due()
    endpoint.refresh_from_db()
    assert endpoint.state == EndpointState.DISABLED and endpoint.consecutive_failures == 2
    (message,) = mail.outbox
    assert message.to == [admin.email] and "disabled" in message.body and endpoint.url in message.body
    # Disabled: no new events for it, pending deliveries wait.
    _risk(project, contributor)
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    assert WebhookDelivery.objects.count() == 2 and _deliver_due() == [None, None]


def test_redelivery_sends_the_same_id_again(org, project, admin, contributor, receiver, private_ok):
    r = receiver()
    _, secret = _endpoint(org, admin, r.url)
    _risk(project, contributor)
    _deliver_due()
    delivery = WebhookDelivery.objects.get()
    webhook_delivery_redeliver(delivery=delivery, by=admin)
    event = AuditEvent.objects.latest("pk")
    assert (event.object_type, event.object_id) == ("webhooks.webhookendpoint", str(delivery.endpoint_id))
    assert event.changes == {"redelivered": [None, f"delivery {delivery.pk} of event {delivery.event_id}"]}
    _deliver_due()
    assert len(r.verified(secret)) == 2 and r.requests[0][0]["webhook-id"] == r.requests[1][0]["webhook-id"]


def test_a_slack_endpoint_gets_a_readable_message_with_a_link(org, project, admin, contributor, receiver, private_ok):
    r = receiver()
    _endpoint(org, admin, r.url, kind=EndpointKind.SLACK)
    _risk(project, contributor)
    _deliver_due()
    ((headers, body),) = r.requests
    text = json.loads(body)["text"]
    assert text.startswith(f"Risk created: Prompt injection ({project.name}): medium, open")
    assert "/risks/" in text and "webhook-signature" not in headers


def test_every_service_emits_its_event(org, project, admin, manager, private_ok):
    _endpoint(org, admin, "https://hooks.example.com/x", events=EventType.values)
    risk = _risk(project, manager)
    risk = risk_update(risk=risk, by=manager, likelihood=5, impact=5)  # medium → critical
    risk = risk_accept(
        risk=risk, by=manager, justification="Vendor fix due", expires=timezone.localdate() + dt.timedelta(days=30)
    )
    risk = risk_update(risk=risk, by=manager, status="open")
    risk_close(risk=risk, by=manager, note="Fixed")
    project_transition(project=project, to_stage=Stage.DATA_PREPARATION, by=manager)
    status_update_create(
        project=project, by=manager, date=timezone.localdate(), health="green", progress=10, summary="Fine"
    )
    report = ReportFactory(
        organization=org, kind=ReportKind.STATUS, period_start=dt.date(2026, 1, 5), period_end=dt.date(2026, 1, 11)
    )
    report_build(report_id=report.pk)
    assert list(WebhookEvent.objects.order_by("pk").values_list("type", flat=True)) == [
        "risk.created",
        "risk.updated",
        "risk.escalated",
        "risk.accepted",
        "risk.updated",
        "risk.closed",
        "project.stage_changed",
        "status_update.created",
        "report.ready",
    ]
    transition = WebhookEvent.objects.get(type="project.stage_changed")
    assert transition.payload["data"]["to_stage"] == "data_preparation" and transition.link.endswith(
        f"/projects/{project.pk}/"
    )


def test_signals_and_budget_thresholds_emit_once(org, admin, private_ok):
    project = ProjectFactory(organization=org, created_at=timezone.now())
    _endpoint(org, admin, "https://hooks.example.com/x", events=EventType.values)
    today = timezone.localdate()
    budget = BudgetFactory(
        project=project,
        period_start=today - dt.timedelta(days=5),
        period_end=today + dt.timedelta(days=20),
        amount=Decimal("100"),
        tolerance_pct=Decimal("10"),
    )
    CostEntryFactory(project=project, date=today, amount=Decimal("105"))
    risk_signals_evaluate(organization=org, today=today)
    budget_thresholds_evaluate(organization=org, as_of=today)
    crossed = WebhookEvent.objects.filter(type="budget.threshold_crossed")
    assert sorted(e.payload["data"]["threshold_pct"] for e in crossed.all()) == ["100", "50", "80"]
    CostEntryFactory(project=project, date=today, amount=Decimal("10"))  # 115: over the tolerance too
    risk_signals_evaluate(organization=org, today=today)
    budget_thresholds_evaluate(organization=org, as_of=today)
    budget_thresholds_evaluate(organization=org, as_of=today)
    assert sorted(e.payload["data"]["threshold_pct"] for e in crossed.all()) == ["100", "110", "50", "80"]
    assert crossed.get(payload__data__threshold_pct="110").payload["data"]["id"] == budget.pk
    raised = WebhookEvent.objects.get(type="signal.raised", payload__data__signal_rule="budget_overrun")
    assert raised.payload["data"]["severity"] and raised.payload["data"]["source"] == "signal"
    budget.delete()
    risk_signals_evaluate(organization=org, today=today)
    cleared = WebhookEvent.objects.get(type="signal.cleared", payload__data__signal_rule="budget_overrun")
    assert cleared.payload["data"]["status"] == "closed"


# --- API ----------------------------------------------------------------------------------------


def test_api_admins_register_see_the_secret_once_rotate_pause_and_read_deliveries(
    org, project, admin, contributor, private_ok
):
    client = client_for(admin)
    created = client.post(
        "/api/v1/webhook-endpoints/", {"url": "https://hooks.example.com/a", "events": ["risk.created"]}, format="json"
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["secret"].startswith("whsec_") and body["organization"] == org.pk and body["state"] == "active"
    url = f"/api/v1/webhook-endpoints/{body['id']}/"
    assert "secret" not in client.get(url).json()
    rotated = client.post(url + "rotate/").json()
    assert (
        rotated["secret"].startswith("whsec_")
        and rotated["secret"] != body["secret"]
        and rotated["previous_valid_until"]
    )
    assert client.post(url + "pause/").json()["state"] == "paused"
    assert client.post(url + "resume/").json()["state"] == "active"
    _risk(project, contributor)
    deliveries = client.get(url + "deliveries/").json()["results"]
    assert [d["event_type"] for d in deliveries] == ["risk.created"] and deliveries[0]["webhook_id"].startswith("msg_")
    again = client.post(url + f"deliveries/{deliveries[0]['id']}/redeliver/")
    assert again.status_code == 200 and again.json()["status"] == "pending"
    refused = client.post(
        "/api/v1/webhook-endpoints/", {"url": "http://127.0.0.2/", "events": ["risk.created"]}, format="json"
    )
    assert refused.status_code == 201  # private networks allowed in this test; see the SSRF test for refusals
    bad = client.post("/api/v1/webhook-endpoints/", {"url": "https://x.org/", "events": ["nope"]}, format="json")
    assert bad.status_code == 400


def test_api_non_admins_are_refused_and_other_organizations_endpoints_are_not_found(org, admin):
    endpoint, _ = _endpoint(org, admin, "https://hooks.example.com/a")
    url = f"/api/v1/webhook-endpoints/{endpoint.pk}/"
    for role in (Role.VIEWER, Role.CONTRIBUTOR, Role.MANAGER):
        client = client_for(member(org, role))
        assert client.get("/api/v1/webhook-endpoints/").status_code == 403
        assert client.get(url).status_code == 403
        assert client.post(url + "rotate/").status_code == 403
        created = client.post(
            "/api/v1/webhook-endpoints/",
            {"url": "https://x.org/", "events": ["risk.created"], "organization": org.pk},
            format="json",
        )
        assert created.status_code == 403
    stranger = client_for(member(OrganizationFactory(), Role.ADMIN))
    assert stranger.get(url).status_code == 404
    assert stranger.post(url + "rotate/").status_code == 404
    assert stranger.get("/api/v1/webhook-endpoints/").json()["results"] == []
    assert WebhookEvent.objects.count() == 0 and endpoint.secrets.count() == 1


def test_api_lists_cost_a_fixed_number_of_queries(org, project, admin, contributor, private_ok):
    client = client_for(admin)
    client.get("/api/v1/organizations/")  # the token's first use records last_used_at once

    def counts(n: int) -> tuple[int, int]:
        for _ in range(n):
            endpoint, _ = _endpoint(org, admin, "https://hooks.example.com/a")
        for _ in range(n):
            _risk(project, contributor)
        with CaptureQueriesContext(connection) as listed:
            assert client.get("/api/v1/webhook-endpoints/").status_code == 200
        with CaptureQueriesContext(connection) as deliveries:
            assert len(client.get(f"/api/v1/webhook-endpoints/{endpoint.pk}/deliveries/").json()["results"]) == n
        return len(listed), len(deliveries)

    assert counts(2) == counts(5)


# --- A worker killed mid-delivery ---------------------------------------------------------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_delivery_leaves_it_to_be_redelivered_with_the_same_id(tmp_path, monkeypatch, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    org = OrganizationFactory()
    admin, contributor = member(org, Role.ADMIN), member(org, Role.CONTRIBUTOR)
    project = ProjectFactory(organization=org)
    hold = threading.Event()
    r = Receiver(hold=hold)
    broker = RedisServer(tmp_path).start()
    producer = Celery("producer", broker=broker.url(), set_as_current=False)
    monkeypatch.setattr(outbox, "current_app", producer)  # on commit, the deliveries go to the test's broker
    env = {"WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true", "WEBHOOK_TIMEOUT_SECONDS": "30", "CELERY_VISIBILITY_TIMEOUT": "2"}
    workers = [Worker(tmp_path / "worker-0.log", broker=broker.url(), queue="celery", env=env)]
    try:
        workers[0].wait_ready()
        _, secret = _endpoint(org, admin, r.url)
        _risk(project, contributor)
        assert r.arrived.wait(60), "the first attempt never arrived"
        delivery = WebhookDelivery.objects.get()
        assert delivery.locked_until is not None and delivery.status == DeliveryStatus.PENDING
        os.killpg(workers[0].pid, signal.SIGKILL)
        workers[0].process.wait(timeout=10)
        hold.set()
        # Time passes: the dead attempt's lease lapses and beat's sweep finds the delivery due again.
        WebhookDelivery.objects.update(locked_until=timezone.now() - dt.timedelta(seconds=1))
        workers.append(Worker(tmp_path / "worker-1.log", broker=broker.url(), queue="celery", env=env))
        workers[1].wait_ready()
        # Beat's sweep enqueues it again, unless the broker already handed the killed worker's message to
        # the new worker (its visibility timeout is 2 s): either way, one more attempt with the same id.
        assert webhook_deliveries_due(now=timezone.now() + dt.timedelta(minutes=2)) in ([delivery.pk], [])
        wait_for(
            lambda: WebhookDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.DELIVERED).exists(),
            "the redelivery",
            timeout=60,
        )
        time.sleep(3)  # the killed worker's message comes back after the visibility timeout: a no-op by then
    finally:
        for worker in workers:
            worker.stop()
        broker.stop()
        producer.close()
        r.close()
    payloads = r.verified(secret)
    assert len(payloads) >= 2 and all(p == payloads[0] for p in payloads)
    assert len({headers["webhook-id"] for headers, _ in r.requests}) == 1
    delivery.refresh_from_db()
    assert delivery.attempt_log.filter(succeeded=True).count() == 1


def test_a_signal_risk_whose_severity_rises_is_escalated(org, admin, private_ok):
    project = ProjectFactory(organization=org, created_at=timezone.now())
    _endpoint(org, admin, "https://hooks.example.com/x", events=[EventType.RISK_ESCALATED])
    today = timezone.localdate()
    BudgetFactory(
        project=project,
        period_start=today - dt.timedelta(days=5),
        period_end=today + dt.timedelta(days=20),
        amount=Decimal("100"),
        tolerance_pct=Decimal("10"),
    )
    CostEntryFactory(project=project, date=today, amount=Decimal("115"))  # over the tolerance: 5 × 3, high
    risk_signals_evaluate(organization=org, today=today)
    assert not WebhookEvent.objects.filter(type="risk.escalated").exists()
    CostEntryFactory(project=project, date=today, amount=Decimal("200"))  # over twice the limit: 5 × 4, critical
    risk_signals_evaluate(organization=org, today=today)
    (escalated,) = WebhookEvent.objects.filter(type="risk.escalated")
    assert escalated.payload["data"]["severity"] == "critical" and escalated.payload["data"]["source"] == "signal"
    risk_signals_evaluate(organization=org, today=today)  # the same severity again: no new event
    assert WebhookEvent.objects.filter(type="risk.escalated").count() == 1


def test_the_web_pages_that_may_show_a_secret_are_never_cached(org, admin, private_ok):
    web = Client()
    web.force_login(admin)
    hook = {"url": "https://hooks.example.com/a", "events": ["risk.created"], "kind": "standard"}
    created = web.post("/webhooks/", hook)
    endpoint = org.webhook_endpoints.get()
    rotated = web.post(f"/webhooks/{endpoint.pk}/rotate/")
    assert "whsec_" in created.content.decode() and "whsec_" in rotated.content.decode()
    for response in (web.get("/webhooks/"), created, rotated):
        assert "no-store" in response["Cache-Control"]
