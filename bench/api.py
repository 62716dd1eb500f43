"""Benchmark of the REST API: the projects list and bulk cost ingestion, against their floors.

`run()` re-executes this module in a child process on its own database (DATABASE_URL + "_api_bench",
created and migrated if missing), so the benchmark never touches the working or test database.
Everything goes through the full Django stack (middleware, token authentication, throttling,
serializers) with Django's test client:

- projects list, one page of 100 with its figures (spend, budget, risk counts, health), in
  requests per second, against a minimal Django view answering the same rows from the same
  queryset with `.values()` (target: ratio ≥ 0.5): the inverse of the median of LIST_REQUESTS
  requests each, interleaved one by one so that the machine's drift weighs on all alike;
- the same page by cursor (`?ordering=updated_at`, the incremental-sync way: no count, the horizon
  a subquery of the page's query), against the minimal view ordered the same way, (updated_at, id) (target: ≥ 0.8);
- `POST /api/v1/costs/bulk/` with 10,000 entries (one history event each), against a floor that
  COPYs the same entries *and* their history rows in one transaction (`bulk_copy_factor`, target:
  ≤ 2× the floor's time; medians of alternating runs), and
  the peak Python memory of that request measured with tracemalloc in a separate run (target:
  ≤ 200 MB).

Tables are vacuumed after the set-up and after each batch is deleted, so dead rows of earlier runs
never slow the queries down (which would flatter the ratios). Prints PASS/FAIL per target and
writes bench-results/api.json. Run: `python -m bench api` or through `python -m bench`.
"""

import datetime as dt
import json
import os
import statistics
import sys
import time
import tracemalloc
from decimal import Decimal

from bench._db import BASE_DIR, create_database, run_child

PAGE = 100
LIST_REQUESTS = 200
BULK_ROWS = 10_000
BULK_REPEATS = 5
TARGET_LIST_RATIO = 0.5
TARGET_CURSOR_RATIO = 0.8
TARGET_COPY_RATIO = 2.0
TARGET_PEAK_MB = 200


def run() -> None:
    """Run the benchmark in a child process on the bench database and print its figures."""
    run_child("bench.api", "_api_bench")


def _portfolio():
    """Create (afresh) one organization with 100 projects, their costs, budgets and risks; return its admin."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from ops.models import Budget, CostEntry, Risk
    from projects.models import Membership, Organization, Project, Role

    Organization.objects.filter(slug="api-bench").delete()
    user, _ = get_user_model().objects.get_or_create(username="api-bench")
    organization = Organization.objects.create(name="API bench", slug="api-bench")
    Membership.objects.create(user=user, organization=organization, role=Role.ADMIN)
    now = timezone.now()
    projects = Project.objects.bulk_create(
        Project(organization=organization, name=f"Project {i:03}", slug=f"p-{i}", stage_entered_at=now, health="green")
        for i in range(PAGE)
    )
    day = dt.date(2026, 1, 1)
    CostEntry.objects.bulk_create(
        CostEntry(project=p, date=day + dt.timedelta(n), category="inference", amount=Decimal("10.5"))
        for p in projects
        for n in range(20)
    )
    Budget.objects.bulk_create(
        Budget(project=p, period_start=day, period_end=dt.date(2026, 12, 31), amount=Decimal(1000)) for p in projects
    )
    Risk.objects.bulk_create(
        Risk(organization=organization, project=p, title=f"Risk {n}", category="cost", likelihood=n + 1, impact=4)
        for p in projects
        for n in range(3)
    )
    return user, projects


def _rates(actions, requests: int) -> list[float]:
    """Requests per second of each action: the inverse of its median time over `requests` interleaved requests.

    One request of each action in turn, the order rotated each time, so drift and another process's burst
    fall on all alike; the median ignores the bursts that still hit one of them.
    """
    for action in actions:
        for _ in range(10):
            action()  # warm caches, connections and the URL resolver
    times: list[list[float]] = [[] for _ in actions]
    for n in range(requests):
        for k in range(len(actions)):
            index = (n + k) % len(actions)
            started = time.perf_counter()
            actions[index]()
            times[index].append(time.perf_counter() - started)
    return [1 / statistics.median(spent) for spent in times]


def _bench_list(user, client) -> tuple[float, float, float, float]:
    """Return the page-number list and its floor, then the cursor page and its floor, in requests per second."""
    from django.http import JsonResponse
    from django.test import Client, override_settings
    from django.urls import include, path

    from ops.selectors.portfolio import project_list_with_figures
    from projects.api.serializers import PROJECT_FIELDS

    # The floor reads what the API's query reads: the model's columns the page shows and every annotation
    # (the figures, and the inputs the derived budget figures are computed from in Python).
    queryset = project_list_with_figures(user=user)
    names = {f.name for f in queryset.model._meta.concrete_fields}
    columns = [f for f in PROJECT_FIELDS if f in names] + list(queryset.query.annotations)

    def minimal(*ordering):
        def view(request):
            rows = list(project_list_with_figures(user=user).order_by(*ordering).values(*columns)[:PAGE])
            return JsonResponse({"results": rows})

        return view

    urlconf = type(
        "BenchUrls",
        (),
        {
            "urlpatterns": [
                path("minimal/", minimal("name")),
                path("minimal-sync/", minimal("updated_at", "id")),
                path("", include("tracker.urls")),
            ]
        },
    )
    plain = Client()
    with override_settings(ROOT_URLCONF=urlconf):
        rates = _rates(
            [
                lambda: _ok(client.get(f"/api/v1/projects/?page_size={PAGE}&ordering=name")),
                lambda: _ok(plain.get("/minimal/")),
                lambda: _ok(client.get(f"/api/v1/projects/?page_size={PAGE}&ordering=updated_at")),
                lambda: _ok(plain.get("/minimal-sync/")),
            ],
            LIST_REQUESTS,
        )
    return tuple(rates)


def _ok(response):
    assert response.status_code in (200, 201), (response.status_code, response.content[:300])
    return response


def _rows(projects, run: int) -> list[dict]:
    return [
        {
            "project": projects[i % len(projects)].pk,
            "date": (dt.date(2026, 1, 1) + dt.timedelta(i % 365)).isoformat(),
            "category": "inference",
            "amount": f"{i % 1000}.25",
            "description": "Nightly invoice line",
            "model": "gpt-4o",
            "input_tokens": 1000 + i,
            "output_tokens": 200 + i,
            "external_id": f"bench-{run}-{i}",
        }
        for i in range(BULK_ROWS)
    ]


def _copy(rows: list[dict], user) -> float:
    """COPY the rows and their history rows (one event each, as the API writes) in one transaction; return the seconds.

    The ids are drawn from the sequence first, as the API does, so each event can name its entry.
    """
    from django.db import connection, transaction
    from django.utils import timezone

    from ops.models import CostEntry
    from projects.audit import IGNORED_FIELDS, history_value
    from projects.models import AuditAction, Project

    fields = [f for f in CostEntry._meta.concrete_fields if not f.primary_key]
    recorded = [f for f in fields if f.name not in IGNORED_FIELDS]
    projects = Project.objects.in_bulk()
    now = timezone.now()
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('ops_costentry', 'id')) FROM generate_series(1, %s)", [len(rows)]
        )
        ids = [pk for (pk,) in cursor.fetchall()]
        entries = []
        columns = ["id", *(f.column for f in fields)]
        with cursor.connection.cursor().copy(f"COPY ops_costentry ({', '.join(columns)}) FROM STDIN") as copy:
            for pk, r in zip(ids, rows, strict=True):
                entry = {
                    "project_id": r["project"],
                    "date": dt.date.fromisoformat(r["date"]),
                    "category": r["category"],
                    "amount": Decimal(r["amount"]),
                    "description": r["description"],
                    "model": r["model"],
                    "provider": "",
                    "input_tokens": r["input_tokens"],
                    "cached_input_tokens": 0,
                    "output_tokens": r["output_tokens"],
                    "requests": 0,
                    "gpu_hours": Decimal(0),
                    "energy_kwh": Decimal(0),
                    "source": "api",
                    "price_id": None,
                    "external_id": r["external_id"] + "-copy",
                    # As ingestion stores an amount sent in the organization's currency.
                    "original_amount": Decimal(r["amount"]),
                    "original_currency": "USD",
                    "exchange_rate": Decimal(1),
                    "exchange_rate_date": None,
                    "tags": "{}",
                    "created_by_id": user.pk,
                    "created_at": now,
                    "updated_at": now,
                }
                copy.write_row([pk, *(entry[f.attname] for f in fields)])
                entries.append(entry)
        history = "at, organization_id, project_id, actor_id, actor_repr, action, object_type, object_id, object_repr"
        with cursor.connection.cursor().copy(f"COPY projects_auditevent ({history}, changes) FROM STDIN") as copy:
            for pk, entry in zip(ids, entries, strict=True):
                project = projects[entry["project_id"]]
                label = CostEntry.label(project, entry["date"], entry["category"], entry["amount"])
                changes = {f.attname: [None, history_value(f, entry[f.attname])] for f in recorded}
                row = [now, project.organization_id, project.pk, user.pk, user.get_username(), AuditAction.CREATE]
                copy.write_row([*row, "ops.costentry", str(pk), label, json.dumps(changes)])
    return time.perf_counter() - started


def _forget_bench_costs() -> None:
    """Delete the benchmark's costs in one statement (an ORM delete would audit each row)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM ops_costentry WHERE external_id LIKE 'bench-%%'")
    _vacuum()


def _vacuum() -> None:
    """Clear dead rows and refresh statistics, so every measurement starts from a settled table."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def _bench_bulk(user, projects, client) -> tuple[float, float, float]:
    _forget_bench_costs()
    api_times, copy_times = [], []
    for run in range(BULK_REPEATS):
        body = json.dumps({"entries": _rows(projects, run)})
        started = time.perf_counter()
        response = _ok(client.post("/api/v1/costs/bulk/", body, content_type="application/json"))
        api_times.append(time.perf_counter() - started)
        assert json.loads(response.content)["created"] == BULK_ROWS
        copy_times.append(_copy(_rows(projects, run), user))
        _forget_bench_costs()

    body = json.dumps({"entries": _rows(projects, BULK_REPEATS)})
    tracemalloc.start()
    _ok(client.post("/api/v1/costs/bulk/", body, content_type="application/json"))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    _forget_bench_costs()
    return statistics.median(api_times), statistics.median(copy_times), peak / 2**20


def _child() -> None:
    import django

    create_database(os.environ["DATABASE_URL"], fresh=False)
    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    from projects.services import api_token_create

    settings.ALLOWED_HOSTS = ["testserver"]
    settings.DEBUG = False
    # The benchmark measures the stack, not the per-token rate limit.
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api": "1000000/minute"}}
    call_command("migrate", verbosity=0)
    _forget_bench_costs()  # left by an interrupted run
    user, projects = _portfolio()
    _vacuum()
    client = Client(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=user, name='bench')[1]}")

    api, floor, cursor, cursor_floor = _bench_list(user, client)
    print(f"projects list, page of {PAGE}: API {api:.0f} req/s, minimal .values() view {floor:.0f} req/s")
    print(f"  by cursor (ordering=updated_at): API {cursor:.0f} req/s, minimal view {cursor_floor:.0f} req/s")
    bulk, copy, peak = _bench_bulk(user, projects, client)
    print(f"bulk costs, {BULK_ROWS:,} entries: API {bulk * 1000:.0f} ms, psycopg COPY {copy * 1000:.0f} ms (medians)")
    print(f"  peak memory of the request {peak:.0f} MB")

    results = {
        "list_api_rps": round(api, 1),
        "list_floor_rps": round(floor, 1),
        "list_ratio": round(api / floor, 2),
        "cursor_api_rps": round(cursor, 1),
        "cursor_floor_rps": round(cursor_floor, 1),
        "cursor_ratio": round(cursor / cursor_floor, 2),
        "bulk_api_ms": round(bulk * 1000),
        "bulk_copy_ms": round(copy * 1000),
        "bulk_copy_factor": round(bulk / copy, 2),
        "bulk_peak_mb": round(peak, 1),
    }
    verdicts = [
        (f"projects list ≥ {TARGET_LIST_RATIO}× the floor ({results['list_ratio']})", api / floor >= TARGET_LIST_RATIO),
        (
            f"cursor page ≥ {TARGET_CURSOR_RATIO}× the floor ({results['cursor_ratio']})",
            cursor / cursor_floor >= TARGET_CURSOR_RATIO,
        ),
        (f"bulk ≤ {TARGET_COPY_RATIO}× COPY ({results['bulk_copy_factor']}×)", bulk / copy <= TARGET_COPY_RATIO),
        (f"bulk peak memory ≤ {TARGET_PEAK_MB} MB ({results['bulk_peak_mb']} MB)", peak <= TARGET_PEAK_MB),
    ]
    for label, ok in verdicts:
        print(f"  {'PASS' if ok else 'FAIL'}  {label}")
    out = BASE_DIR / "bench-results"
    out.mkdir(exist_ok=True)
    (out / "api.json").write_text(json.dumps({"results": results, "verdicts": dict(verdicts)}, indent=2))


if __name__ == "__main__":
    if "--child" in sys.argv:
        _child()
    else:
        run()
