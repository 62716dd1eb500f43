"""Benchmark of webhook fan-out: N events to a local receiver through a real worker of two processes.

`run()` starts a redis-server of its own (free port) and re-executes this module in a child process on
its own database (DATABASE_URL + "_bench_webhooks", dropped, created and migrated each run). The child
registers one Standard Webhooks endpoint pointing at an HTTP receiver in its own process (a thread),
starts `celery -A tracker worker -c 2`, then writes N events to the outbox, BATCH per committed
transaction (each delivery is enqueued on commit), and waits until the receiver has verified every
delivery's signature. It prints:

- the producer's rate (events committed per second);
- deliveries per second, from the first commit to the last delivery received;
- change → delivery latency (commit of the event to its arrival at the receiver), p50 and p99.

Run: `python -m bench.webhooks [--events 10000]` or through `python -m bench` (BENCH_WEBHOOK_EVENTS).
"""

import argparse
import os
import statistics
import sys
import threading
import time

from bench._db import run_child

BATCH = 100  # events per committed transaction, as a bulk path (the daily signal evaluation) writes them


def run() -> None:
    """Run the benchmark in a child process on its own database and broker, and print its figures."""
    from pathlib import Path
    from tempfile import TemporaryDirectory

    from tests.fault_helpers import RedisServer

    events = os.environ.get("BENCH_WEBHOOK_EVENTS", "10000")
    with TemporaryDirectory() as directory:
        broker = RedisServer(Path(directory)).start()
        os.environ["BENCH_WEBHOOK_BROKER"] = broker.url()
        try:
            run_child("bench.webhooks", "_bench_webhooks", "--events", events)
        finally:
            broker.stop()


def _receiver(secret: list[str], arrivals: dict[str, float], errors: list[str]):
    """Start the receiver; it verifies with `secret[0]`, set once the endpoint exists."""
    import http.server

    from standardwebhooks import Webhook

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                Webhook(secret[0]).verify(body, headers)
            except Exception as exc:  # a bad signature is a benchmark failure, reported at the end
                errors.append(repr(exc))
            arrivals.setdefault(headers["webhook-id"], time.time())
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _child(events: int) -> None:
    import django

    from bench._db import create_database

    create_database(os.environ["DATABASE_URL"], fresh=True)
    os.environ["CELERY_BROKER_URL"] = os.environ["BENCH_WEBHOOK_BROKER"]
    os.environ["WEBHOOK_ALLOW_PRIVATE_NETWORKS"] = "true"
    django.setup()
    from pathlib import Path
    from tempfile import TemporaryDirectory

    from django.core.management import call_command
    from django.db import transaction

    from ops.models import Risk, RiskCategory
    from projects.models import Membership, Organization, Role
    from tests.fault_helpers import Worker, wait_for
    from webhooks.models import EventType, WebhookEvent
    from webhooks.outbox import emit_many
    from webhooks.services import webhook_endpoint_create

    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    organization = Organization.objects.create(name="Bench", slug="bench")
    admin = get_user_model().objects.create(username="bench-admin", email="admin@example.com")
    Membership.objects.create(user=admin, organization=organization, role=Role.ADMIN)
    risk = Risk.objects.create(
        organization=organization, title="Bench risk", category=RiskCategory.SECURITY, likelihood=3, impact=3
    )
    arrivals: dict[str, float] = {}
    errors: list[str] = []
    secret: list[str] = []
    server = _receiver(secret, arrivals, errors)
    _, key = webhook_endpoint_create(
        organization=organization,
        by=admin,
        url=f"http://127.0.0.1:{server.server_port}/hooks",
        events=[EventType.RISK_UPDATED],
    )
    secret.append(key)

    with TemporaryDirectory() as directory:
        env = {"WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true"}
        worker = Worker(
            Path(directory) / "worker.log",
            broker=os.environ["CELERY_BROKER_URL"],
            queue="celery",
            concurrency=2,
            env=env,
        )
        try:
            worker.wait_ready()
            started = time.time()
            for offset in range(0, events, BATCH):
                with transaction.atomic():
                    emit_many(organization, EventType.RISK_UPDATED, [risk] * min(BATCH, events - offset))
            produced = time.time()
            wait_for(lambda: len(arrivals) >= events, f"{events} deliveries", timeout=3600, processes=[worker])
            finished = max(arrivals.values())
        finally:
            worker.stop()
            server.shutdown()
    created = {
        msg_id: at.timestamp() for msg_id, at in WebhookEvent.objects.values_list("msg_id", "created_at").iterator()
    }
    latencies = sorted(arrivals[m] - created[m] for m in arrivals)
    quantiles = statistics.quantiles(latencies, n=100)
    if errors:
        sys.exit(f"{len(errors)} deliveries did not verify, e.g. {errors[0]}")
    print(f"  {events:,} events, 1 endpoint, worker of 2 processes; every signature verified (standardwebhooks)")
    print(f"  producer: {events / (produced - started):,.0f} events committed/s ({BATCH} per transaction)")
    print(f"  deliveries: {events / (finished - started):,.0f}/s (first commit → last delivery)")
    print(f"  change → delivery latency: p50 {quantiles[49] * 1000:,.0f} ms, p99 {quantiles[98] * 1000:,.0f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--events", type=int, default=10000)
    arguments = parser.parse_args()
    if arguments.child:
        _child(arguments.events)
    else:
        os.environ["BENCH_WEBHOOK_EVENTS"] = str(arguments.events)
        run()
