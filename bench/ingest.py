"""OTLP receiver throughput: GenAI spans per second through gunicorn, against a floor measured in the same run.

`run()` builds its own database (DATABASE_URL + "_ingest", dropped and recreated): an organization
with four projects naming their services, a price for one of the two models, an ingest service token.
It makes INGEST_SPANS (200,000) GenAI spans as protobuf exports of 512 spans and measures

- the floor, in this one process: decode the same bodies (ops.otlp.usage_spans), aggregate them per
  project × provider × model × day, and COPY the aggregated rows into a scratch copy of the cost table;
- the receiver: gunicorn from gunicorn.conf.py (production settings, as bench.load starts it), the
  bodies POSTed to /otlp/v1/traces by INGEST_CLIENTS (4) clients at once, no throttling;

then checks every span was counted exactly once, prints spans/s of both, their ratio (target ≥ 0.5)
and the peak RSS of the web processes (VmHWM), and writes bench-results/ingest.json.

Run: `python -m bench ingest` (INGEST_SPANS=20000 for a quick try).
"""

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

from bench._db import BASE_DIR, bench_db_url, create_database
from bench.load import _free_port, _server_env, _stop, _tail, _wait_until_serving

BATCH = 512
SERVICES = ["chat-app", "search-api", "agent-worker", "summariser"]
MODELS = ["gpt-4o", "claude-sonnet-4"]  # the second has no price: kept unpriced
PRICE = ("2.5", "1.25", "10")  # the first's, per million input, cached input and output tokens


def _prepare(config: Path) -> None:
    """In the child: migrate, seed the organization, its projects, a price and an ingest service token."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from ops.models import ModelPrice
    from projects.models import Membership, Organization, Project, Role, TokenScope
    from projects.services import service_token_create

    call_command("migrate", verbosity=0)

    organization = Organization.objects.create(name="Bench", slug="bench")
    admin = get_user_model().objects.create_user("bench-admin")
    Membership.objects.create(user=admin, organization=organization, role=Role.ADMIN)
    for service in SERVICES:
        Project.objects.create(
            organization=organization,
            name=service,
            slug=service,
            otel_service_names=[service],
            stage_entered_at=dt.datetime.now(dt.UTC),
        )
    ModelPrice.objects.create(
        organization=organization,
        provider="openai",
        model=MODELS[0],
        input_per_mtok=PRICE[0],
        cached_input_per_mtok=PRICE[1],
        output_per_mtok=PRICE[2],
        valid_from=dt.date(2025, 1, 1),
    )
    _, raw = service_token_create(organization=organization, scope=TokenScope.INGEST, name="bench", by=admin)
    config.write_text(json.dumps({"token": raw}))


def _bodies(spans: int) -> list[bytes]:
    """Exports of BATCH spans each, every span id new, in turns of the services (export k is of service k % 4).

    Each export is one service's, as an SDK's batch span processor sends it (one process, one resource):
    with INGEST_CLIENTS = 4 each client is one service's exporter, so concurrent exports add into their
    own service's entries and wait on each other's row locks only when they share a service.
    """
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    end = int((dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).timestamp()) * 1_000_000_000
    bodies, n = [], 0
    while n < spans:
        export = ExportTraceServiceRequest()
        resource_spans = export.resource_spans.add()
        kv = resource_spans.resource.attributes.add()
        kv.key, kv.value.string_value = "service.name", SERVICES[len(bodies) % len(SERVICES)]
        scope_spans = resource_spans.scope_spans.add()
        for _ in range(min(BATCH, spans - n)):
            n += 1
            span = scope_spans.spans.add()
            span.trace_id, span.span_id = n.to_bytes(16, "big"), n.to_bytes(8, "big")
            span.name, span.kind = "chat", 3
            span.start_time_unix_nano, span.end_time_unix_nano = end - 10**9, end + n
            for key, value in (
                ("gen_ai.operation.name", "chat"),
                ("gen_ai.provider.name", "openai"),
                ("gen_ai.request.model", MODELS[n % 2]),
            ):
                kv = span.attributes.add()
                kv.key, kv.value.string_value = key, value
            for key, value in (
                ("gen_ai.usage.input_tokens", 1000),
                ("gen_ai.usage.cache_read.input_tokens", 100),
                ("gen_ai.usage.output_tokens", 50),
            ):
                kv = span.attributes.add()
                kv.key, kv.value.int_value = key, value
        bodies.append(export.SerializeToString())
    return bodies


def _floor(bodies: list[bytes], url: str) -> float:
    """Decode every body and COPY its aggregated rows in one process; return the seconds it took.

    The rows are the receiver's: every column of a usage entry, its amount from the seeded price (no
    amount for the unpriced model), into a scratch table shaped like the cost table (no indexes: the
    floor writes the rows, it does not look for the entries they add into).
    """
    import hashlib
    from decimal import Decimal

    import django
    import psycopg
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracker.settings")
    django.setup()  # for the receiver's own column list and description, nothing else
    from ops.otlp import usage_spans
    from ops.services.otlp import _COLUMNS, _DESCRIPTION

    per_token = [Decimal(p) / 1_000_000 for p in PRICE]  # input, cached input, output
    with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as conn:
        conn.execute(f"CREATE TEMP TABLE floor_entries AS SELECT {_COLUMNS} FROM ops_costentry WITH NO DATA")
        started = time.perf_counter()
        for body in bodies:
            usage = usage_spans(ExportTraceServiceRequest.FromString(body))
            totals: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
            for span in usage.spans:
                total = totals[(span.service_name, span.provider, span.model, span.end.date())]
                total[0] += span.input_tokens
                total[1] += span.cached_input_tokens
                total[2] += span.output_tokens
                total[3] += 1
            now = dt.datetime.now(dt.UTC)
            with conn.cursor().copy(f"COPY floor_entries ({_COLUMNS}) FROM STDIN") as copy:
                for (service, provider, model, day), values in totals.items():
                    priced = model == MODELS[0]
                    amount = sum(t * p for t, p in zip(values, per_token, strict=False)).quantize(Decimal("0.01"))
                    key = f"{provider}\x1f{model}\x1f{day.isoformat()}".encode()
                    copy.write_row(
                        [
                            SERVICES.index(service),
                            day,
                            "inference",
                            amount if priced else None,
                            _DESCRIPTION + model,
                            model,
                            provider,
                            *values,
                            0,
                            0,
                            "usage",
                            1 if priced else None,
                            f"otlp:{hashlib.sha256(key).hexdigest()[:40]}",
                            1,
                            now,
                            now,
                            "{}",
                        ]
                    )
            conn.commit()
        return time.perf_counter() - started


def _peak_rss_kib(master: int) -> dict[str, int]:
    """VmHWM of the gunicorn master and of its largest worker."""

    def hwm(pid: int) -> int:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return 0

    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return {"master": hwm(master), "largest_worker": max((hwm(int(c)) for c in children), default=0)}


def run(spans: int | None = None, clients: int | None = None) -> None:
    spans = spans or int(os.environ.get("INGEST_SPANS", "200000"))
    clients = clients or int(os.environ.get("INGEST_CLIENTS", "4"))
    import requests

    with tempfile.TemporaryDirectory(prefix="tracker-ingest-") as tmp:
        work = Path(tmp)
        env = _server_env(work / "static") | {
            "DATABASE_URL": bench_db_url("_ingest"),
            "OTLP_THROTTLE_RATE": "1000000/minute",
            "LOG_FORMAT": "text",
        }
        create_database(env["DATABASE_URL"], fresh=True)
        config = work / "config.json"
        prepare = [sys.executable, "-m", "bench.ingest", "--prepare", str(config)]
        subprocess.run(prepare, cwd=BASE_DIR, env=env, check=True)
        token = json.loads(config.read_text())["token"]
        bodies = _bodies(spans)
        floor_seconds = _floor(bodies, env["DATABASE_URL"])
        bind = f"127.0.0.1:{_free_port()}"
        host, log_path = f"http://{bind}", work / "gunicorn.log"
        gunicorn = f"-m gunicorn -c gunicorn.conf.py --bind {bind} --no-control-socket tracker.wsgi".split()
        with open(log_path, "w") as log:
            server = subprocess.Popen([sys.executable, *gunicorn], cwd=BASE_DIR, env=env, stdout=log, stderr=log)
        failures: list[str] = []
        try:
            _wait_until_serving(server, host, log_path)

            def send(share: list[bytes]) -> None:
                headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-protobuf"}
                with requests.Session() as session:
                    for body in share:
                        answer = session.post(f"{host}/otlp/v1/traces", data=body, headers=headers, timeout=60)
                        if answer.status_code != 200:
                            failures.append(f"{answer.status_code} {answer.content[:200]!r}")

            threads = [threading.Thread(target=send, args=(bodies[i::clients],)) for i in range(clients)]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            receiver_seconds = time.perf_counter() - started
            rss = _peak_rss_kib(server.pid)
        finally:
            _stop(server)
        counted = _counted(env["DATABASE_URL"])
    floor_rate, receiver_rate = spans / floor_seconds, spans / receiver_seconds
    ratio = receiver_rate / floor_rate
    errors = failures[:5] + ([] if counted == spans else [f"{counted} spans counted of {spans}"])
    print(f"\nOTLP ingest: {spans} GenAI spans, exports of {BATCH}, {clients} clients, gunicorn, {os.cpu_count()} CPUs")
    print(f"  floor (decode + aggregate + COPY, one process): {floor_rate:,.0f} spans/s ({floor_seconds:.1f} s)")
    print(f"  receiver:                                        {receiver_rate:,.0f} spans/s ({receiver_seconds:.1f} s)")
    print(f"  ratio {ratio:.2f} (target ≥ 0.5): {'PASS' if ratio >= 0.5 else 'FAIL'}")
    print(f"  peak RSS: largest worker {rss['largest_worker'] / 1024:.0f} MiB, master {rss['master'] / 1024:.0f} MiB")
    for error in errors:
        print(f"  error: {error}\n{_tail(log_path)}")
    out = BASE_DIR / "bench-results"
    out.mkdir(exist_ok=True)
    result = {
        "spans": spans,
        "batch": BATCH,
        "clients": clients,
        "floor_spans_per_s": round(floor_rate),
        "receiver_spans_per_s": round(receiver_rate),
        "ratio": round(ratio, 3),
        "peak_rss_kib": rss,
        "errors": errors,
    }
    (out / "ingest.json").write_text(json.dumps(result, indent=2))
    if errors or ratio < 0.5:
        sys.exit("bench.ingest: FAIL")


def _counted(url: str) -> int:
    import psycopg

    with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as conn:
        return conn.execute("SELECT COALESCE(SUM(requests), 0) FROM ops_costentry").fetchone()[0]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepare", type=Path, help="(internal) seed the database, write the config here")
    parser.add_argument("--spans", type=int)
    parser.add_argument("--clients", type=int)
    options = parser.parse_args()
    if options.prepare:
        _prepare(options.prepare)
    else:
        run(options.spans, options.clients)
