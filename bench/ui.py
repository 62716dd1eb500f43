"""Benchmark of the web UI: server time and queries of the dashboard, project list and project page.

`run()` re-executes this module in a child process on a separate database (DATABASE_URL +
"_ui_bench", created and migrated if missing, recreated when it holds more projects than the
smallest size so that each size is measured on its own portfolio). For each portfolio size
(default 500 then 5,000: ten times larger; seeding 5,000 takes about 15 minutes) the child runs
`seed_demo` and `bench._synthetic.synthetic_seed(count=N)`, takes each organization's daily snapshots of
the last year the way beat would have (`_seed_snapshots`: the same figures as `snapshots_take`, one SQL
statement per organization instead of 366 calls), signs in as the manager of one synthetic organization
and requests each page through Django's test client:

- the median server time of repeated requests and the number of queries of each page
  (targets: dashboard ≤ 20 queries; every page's count the same at both sizes);
- for the dashboard, the cost analytics (their default six months) and the project list, the median
  time of the same SQL statements run directly on a cursor, and the page's time as a multiple of it
  (targets on the largest portfolio: ≤ 3× for each, issue 16; ≤ 2× for the dashboard, issue 11). The
  floor is the page's own statements: they read the snapshots for past days and sum only the days
  after the last one, which is less work for the database than summing a year of cost entries, so it
  is the minimum the database needs for these figures.
- the project page's forms, which load when opened: all eight fragments requested in a row.

Run: `python -m bench.ui` (BENCH_UI_PROJECTS=500,5000 to choose the sizes) or through `python -m bench`.
"""

import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench._db import BASE_DIR, create_database, run_child, server

REPEATS = 15
DASHBOARD_MAX_QUERIES = 20
DASHBOARD_MAX_RATIO = 2.0  # issue 11
RAW_SQL_MAX_RATIO = 3.0  # issue 16: each page measured against its statements
FLOORED = ("dashboard", "cost analytics", "project list")
DECLARE = re.compile(r"^\s*DECLARE .*? CURSOR (?:WITH|WITHOUT) HOLD FOR ", re.DOTALL)
SNAPSHOT_DAYS = 366


def run() -> None:
    """Run the benchmark in a child process on the bench database and print its figures."""
    run_child("bench.ui", "_ui_bench")


def _ensure_database(smallest: int) -> None:
    """Create the bench database; recreate it when it holds more projects than the smallest size."""
    url = os.environ["DATABASE_URL"]
    with server(url) as (conn, name):
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    create_database(url, fresh=bool(exists) and _synthetic_projects(url) > smallest)


def _synthetic_projects(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        if not conn.execute("SELECT to_regclass('projects_project')").fetchone()[0]:
            return 0
        return conn.execute("SELECT count(*) FROM projects_project WHERE slug LIKE 'synthetic-%%'").fetchone()[0]


# One organization's snapshots of `first`..`last`: `snapshots_take`'s figures (spend that day, spend and
# unpriced entries to date) for every project and day, as running sums over the days.
SPEND_SNAPSHOTS_SQL = """
    WITH days AS (SELECT d::date AS day FROM generate_series(%(first)s::date, %(last)s::date, interval '1 day') d),
    costs AS (
        SELECT c.project_id, c.date, sum(c.amount) AS spend, count(*) FILTER (WHERE c.amount IS NULL) AS unpriced
        FROM ops_costentry c JOIN projects_project p ON p.id = c.project_id
        WHERE p.organization_id = %(org)s AND c.date <= %(last)s GROUP BY 1, 2),
    base AS (SELECT project_id, sum(spend) AS spend, sum(unpriced) AS unpriced FROM costs WHERE date < %(first)s
             GROUP BY 1)
    INSERT INTO ops_spendsnapshot (project_id, date, spend_day, spend_to_date, unpriced_entries)
    SELECT p.id, d.day, coalesce(c.spend, 0), coalesce(b.spend, 0) + sum(coalesce(c.spend, 0)) OVER w,
        coalesce(b.unpriced, 0) + sum(coalesce(c.unpriced, 0)) OVER w
    FROM projects_project p CROSS JOIN days d
    LEFT JOIN costs c ON c.project_id = p.id AND c.date = d.day LEFT JOIN base b ON b.project_id = p.id
    WHERE p.organization_id = %(org)s
    WINDOW w AS (PARTITION BY p.id ORDER BY d.day)
    ON CONFLICT (project_id, date) DO NOTHING"""
RISK_SNAPSHOTS_SQL = """
    INSERT INTO ops_risksnapshot (organization_id, date, low, medium, high, critical)
    SELECT %(org)s, d::date, count(*) FILTER (WHERE severity = 'low'), count(*) FILTER (WHERE severity = 'medium'),
        count(*) FILTER (WHERE severity = 'high'), count(*) FILTER (WHERE severity = 'critical')
    FROM generate_series(%(first)s::date, %(last)s::date, interval '1 day') d
    LEFT JOIN ops_risk r ON r.organization_id = %(org)s AND r.status = ANY(%(active)s)
    GROUP BY d ON CONFLICT (organization_id, date) DO NOTHING"""


def _seed_snapshots() -> None:
    """Take each organization's snapshots of its last year up to its yesterday, as the hourly beat job would have."""
    import datetime as dt

    from django.db import connection, transaction
    from django.utils import timezone

    from ops.models import RiskStatus
    from projects.models import Organization

    for organization in Organization.objects.order_by("pk"):
        # Rerun after a larger seed: existing rows stay, the new projects' rows are added.
        last = timezone.localdate(timezone.now(), organization.tzinfo) - dt.timedelta(days=1)
        params = {
            "org": organization.pk,
            "first": last - dt.timedelta(days=SNAPSHOT_DAYS - 1),
            "last": last,
            "active": list(RiskStatus.active()),
        }
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(SPEND_SNAPSHOTS_SQL, params)
            cursor.execute(RISK_SNAPSHOTS_SQL, params)


def _median_ms(action, repeats: int = REPEATS) -> float:
    action()  # warm caches and connections
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def _child() -> None:
    import django

    sizes = [int(n) for n in os.environ.get("BENCH_UI_PROJECTS", "500,5000").split(",")]
    _ensure_database(sizes[0])
    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from bench._synthetic import synthetic_seed
    from projects.models import Organization, Project, Stage
    from projects.panels import FORMS

    settings.ALLOWED_HOSTS = ["testserver"]
    call_command("migrate", verbosity=0)
    results = []
    # The demo logins are not used here, but they need a file of their own to go to.
    scratch = tempfile.mkdtemp(prefix="bench-ui-")
    for size in sizes:
        call_command("seed_demo", credentials_file=Path(scratch) / "demo-credentials", verbosity=0)
        synthetic_seed(count=size, progress=False)
        _seed_snapshots()
        with connection.cursor() as cursor:
            # Fresh planner statistics after the bulk insert, as autovacuum would give a live database.
            cursor.execute("ANALYZE")
        organization = Organization.objects.get(slug="synthetic-org-01")
        user = get_user_model().objects.get(username="synthetic-manager-01")
        client = Client()
        client.force_login(user)
        # The same kind of project at each size: in evaluation, so its page checks the pilot gates.
        project = Project.objects.filter(organization=organization, stage=Stage.EVALUATION).order_by("pk").first()
        portfolio = Project.objects.filter(organization=organization).count()
        pages = {
            "dashboard": reverse("projects:dashboard"),
            "cost analytics": reverse("ops:cost-analytics"),
            "project list": reverse("projects:list") + "?sort=-spend",
            "project page": project.get_absolute_url(),
        }
        for name, url in pages.items():
            # The query log is a bounded deque, full after seeding: empty it so the capture counts.
            reset_queries()
            with CaptureQueriesContext(connection) as captured:
                response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            row = {
                "projects_total": size,
                "projects_in_org": portfolio,
                "page": name,
                "queries": len(captured.captured_queries),
                "server_ms": round(_median_ms(lambda url=url, client=client: client.get(url)), 1),
            }
            if name in FLOORED:
                # A server-side cursor (`.iterator()`) is logged as its DECLARE: the floor runs its query.
                statements = [DECLARE.sub("", q["sql"]) for q in captured.captured_queries]

                def raw(statements=statements) -> None:
                    with connection.cursor() as cursor:
                        for sql in statements:
                            cursor.execute(sql)
                            cursor.fetchall()

                row["raw_sql_ms"] = round(_median_ms(raw), 1)
                row["ratio_to_raw_sql"] = round(row["server_ms"] / row["raw_sql_ms"], 2)
            results.append(row)
        # The page's forms load when opened (projects/panels.py): what opening all of them costs, together.
        forms = [reverse("projects:form", args=[project.pk, key]) for key in FORMS]

        def open_forms(client=client, forms=forms) -> None:
            for url in forms:
                assert client.get(url, HTTP_HX_REQUEST="true").status_code == 200, url

        reset_queries()
        with CaptureQueriesContext(connection) as captured:
            open_forms()
        results.append(
            {
                "projects_total": size,
                "projects_in_org": portfolio,
                "page": f"{len(forms)} page forms",
                "queries": len(captured.captured_queries),
                "server_ms": round(_median_ms(open_forms), 1),
            }
        )
    _report(results)


def _report(results: list[dict]) -> None:
    print(f"\nWeb UI (median of {REPEATS} requests through the test client)")
    print(
        f"{'projects':>9} {'in org':>7}  {'page':<14} {'queries':>7} {'server ms':>10} {'raw SQL ms':>11} {'ratio':>6}"
    )
    for r in results:
        raw = f"{r['raw_sql_ms']:>11.1f} {r['ratio_to_raw_sql']:>6.2f}" if "raw_sql_ms" in r else ""
        print(
            f"{r['projects_total']:>9} {r['projects_in_org']:>7}  {r['page']:<14} {r['queries']:>7} "
            f"{r['server_ms']:>10.1f} {raw}"
        )
    verdicts = []
    dashboards = [r for r in results if r["page"] == "dashboard"]
    verdicts.append(
        (
            f"dashboard ≤ {DASHBOARD_MAX_QUERIES} queries",
            all(r["queries"] <= DASHBOARD_MAX_QUERIES for r in dashboards),
        )
    )
    # Ratios are judged on the largest portfolio: on a tiny one the fixed cost of rendering dominates.
    largest = max(r["projects_total"] for r in results)
    for page in FLOORED:
        row = next(r for r in results if r["page"] == page and r["projects_total"] == largest)
        for target in (RAW_SQL_MAX_RATIO, DASHBOARD_MAX_RATIO) if page == "dashboard" else (RAW_SQL_MAX_RATIO,):
            verdicts.append(
                (f"{page} ≤ {target:.0f}× its raw SQL ({largest} projects)", row["ratio_to_raw_sql"] <= target)
            )
    for page in {r["page"] for r in results}:
        counts = {r["queries"] for r in results if r["page"] == page}
        verdicts.append((f"{page}: constant queries as the portfolio grows", len(counts) == 1))
    for label, ok in verdicts:
        print(f"  {'PASS' if ok else 'FAIL'}  {label}")
    out = BASE_DIR / "bench-results"
    out.mkdir(exist_ok=True)
    load = os.getloadavg()
    print(f"  load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} (1, 5, 15 min)")
    (out / "ui.json").write_text(
        json.dumps({"results": results, "verdicts": dict(verdicts), "load_average": load}, indent=2)
    )


if __name__ == "__main__":
    if "--child" in sys.argv:
        _child()
    else:
        run()
