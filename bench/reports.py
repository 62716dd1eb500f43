"""Benchmark of the weekly reports: build time vs raw SQL, queries per report, growth, peak memory.

`run()` re-executes this module in a child process on a separate database (DATABASE_URL + "_bench",
dropped, created and migrated each run) so the benchmark never touches the working database. The child
seeds a synthetic portfolio with set-based SQL (10 organizations, 20 cost entries per project per
10× step), then for one organization measures:

- the time to build its status summary and risk report (median of 3) vs the time of raw SQL
  aggregate queries computing the same figures (target ≤ 2×);
- queries per report (constant from 500 to 5,000 projects);
- the peak Python memory (tracemalloc) while building, which must not grow with cost entries.

Run: `python -m bench.reports [--max-projects 5000]` or through `python -m bench`.
"""

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from urllib.parse import urlparse, urlunparse

BASE_DIR = Path(__file__).resolve().parent.parent
ORGS = 10

SEED_SQL = """
INSERT INTO projects_organization (created_at, updated_at, name, slug, currency, timezone)
SELECT now() - interval '400 days', now(), 'Bench org ' || o, 'bench-' || o, 'USD', 'Europe/Berlin'
FROM generate_series(1, %(orgs)s) o
ON CONFLICT (slug) DO NOTHING;

INSERT INTO projects_project (created_at, updated_at, name, slug, summary, industry, use_case, data_classification,
    ai_act_tier, stage, stage_entered_at, health, progress, archived, organization_id)
SELECT now() - interval '300 days', now(), 'Project ' || p, 'p-' || p, '', 'finance', 'customer_support', 'internal',
    'minimal', (ARRAY['development','evaluation','pilot','production'])[1 + p %% 4],
    now() - (p %% 200) * interval '1 day',
    (ARRAY['green','amber','red'])[1 + p %% 3], p %% 100, false, o.id
FROM projects_organization o, generate_series(%(from)s, %(to)s) p
WHERE o.slug = 'bench-' || (1 + p %% %(orgs)s);

CREATE TEMP TABLE new_projects AS
SELECT id, organization_id FROM projects_project WHERE slug ~ '^p-[0-9]+$'
AND substring(slug from 3)::int BETWEEN %(from)s AND %(to)s;

INSERT INTO ops_budget (created_at, updated_at, period_start, period_end, amount, category, tolerance_pct, notes,
    project_id)
SELECT now(), now(), date_trunc('year', now())::date, (date_trunc('year', now()) + interval '1 year - 1 day')::date,
    50000, '', 10, '', id FROM new_projects;

INSERT INTO ops_costentry (created_at, updated_at, date, category, amount, description, model, input_tokens,
    cached_input_tokens, output_tokens, requests, gpu_hours, energy_kwh, source, external_id, project_id)
SELECT now(), now(), current_date - (n %% 365), 'inference', CASE WHEN n %% 97 = 0 THEN NULL ELSE (n %% 500) / 10.0 END,
    '', 'gpt-4o', n * 10, 0, n * 3, n, 0, 0, 'usage', '', np.id
FROM new_projects np, generate_series(1, %(entries)s) n;

INSERT INTO ops_risk (created_at, updated_at, title, description, category, likelihood, impact, status, treatment,
    mitigation_plan, nist_refs, owasp_refs, source, signal_rule, signal_key, acceptance_justification, status_note,
    organization_id, project_id, next_review_date)
SELECT now() - (n * 7) * interval '1 day', now(), 'Risk ' || n, '', 'reliability', 1 + (np.id + n) %% 5,
    1 + (np.id * n) %% 5, CASE WHEN n %% 4 = 0 THEN 'closed' ELSE 'open' END, 'mitigate', '', '[]', '[]', 'manual',
    '', '', '', '', np.organization_id, np.id, current_date + (n - 5)
FROM new_projects np, generate_series(1, 10) n;

INSERT INTO ops_riskassessment (risk_id, assessed_at, likelihood, impact, note)
SELECT r.id, r.created_at, r.likelihood, r.impact, '' FROM ops_risk r JOIN new_projects np ON np.id = r.project_id;

INSERT INTO projects_statusupdate (created_at, updated_at, date, health, progress, summary, accomplishments, blockers,
    next_steps, project_id)
SELECT now(), now(), current_date - 7 * n, (ARRAY['green','amber','red'])[1 + (np.id + n) %% 3], 10 * n, 'Weekly',
    '', '', '', np.id
FROM new_projects np, generate_series(1, 6) n;

INSERT INTO ops_qualitymetric (created_at, updated_at, date, metric, name, value, threshold, higher_is_better, notes,
    project_id)
SELECT now(), now(), current_date - n, 'hallucination_rate', '', 0.01 * n, 0.05, false, '', np.id
FROM new_projects np, generate_series(1, 8) n;

INSERT INTO ops_infrastructurecomponent (created_at, updated_at, name, kind, provider, hosting, region, environment,
    model_name, model_version, model_source, frameworks, gpu_type, gpu_count, notes, project_id)
SELECT now(), now(), 'LLM', 'foundation_model', (ARRAY['aws','azure','gcp'])[1 + np.id %% 3], 'cloud', '',
    'production', 'gpt-4o', '', 'hosted_api', '[]', '', 0, '', np.id FROM new_projects np;

INSERT INTO projects_stagetransition (from_stage, to_stage, at, note, overridden_gates, override_reason, project_id)
SELECT 'ideation', 'development', now() - interval '30 days', '', '[]', '', id FROM new_projects;

DROP TABLE new_projects;
"""

# The same figures as the two reports, written by hand: what the database costs at the least.
RAW_SQL = [
    # Status: cost figures per project.
    """SELECT c.project_id, sum(c.amount) FILTER (WHERE c.date >= %(start)s), sum(c.amount),
        sum(c.input_tokens + c.cached_input_tokens + c.output_tokens) FILTER (WHERE c.date >= %(start)s),
        count(*) FILTER (WHERE c.amount IS NULL)
       FROM ops_costentry c JOIN projects_project p ON p.id = c.project_id
       WHERE p.organization_id = %(org)s AND NOT p.archived AND c.date <= %(end)s GROUP BY c.project_id""",
    # Status: latest status, budget and spend in the budget period per project.
    """SELECT p.id, s.health, s.progress, b.amount,
        (SELECT sum(c.amount) FROM ops_costentry c WHERE c.project_id = p.id AND c.date >= b.period_start
            AND c.date <= %(end)s)
       FROM projects_project p
       LEFT JOIN LATERAL (SELECT health, progress FROM projects_statusupdate s WHERE s.project_id = p.id
            AND s.date <= %(end)s ORDER BY date DESC LIMIT 1) s ON true
       LEFT JOIN LATERAL (SELECT amount, period_start FROM ops_budget b WHERE b.project_id = p.id AND b.category = ''
            AND b.period_start <= %(end)s AND b.period_end >= %(end)s ORDER BY period_start DESC LIMIT 1) b ON true
       WHERE p.organization_id = %(org)s AND NOT p.archived""",
    # Status: health trend (last four updates) and latest metrics.
    """SELECT project_id, health FROM (SELECT s.project_id, s.health, row_number() OVER (PARTITION BY s.project_id
        ORDER BY s.date DESC) rn FROM projects_statusupdate s JOIN projects_project p ON p.id = s.project_id
        WHERE p.organization_id = %(org)s AND s.date <= %(end)s) t WHERE rn <= 4""",
    """SELECT * FROM (SELECT q.*, row_number() OVER (PARTITION BY q.project_id, q.metric, q.name
        ORDER BY q.date DESC) rn
        FROM ops_qualitymetric q JOIN projects_project p ON p.id = q.project_id
        WHERE p.organization_id = %(org)s AND q.date <= %(end)s) t WHERE rn = 1""",
    # Both: open risks by project and severity; the heat map; by category; top ten.
    """SELECT project_id, severity, count(*) FROM ops_risk WHERE organization_id = %(org)s
        AND status IN ('open', 'mitigating') GROUP BY 1, 2""",
    """SELECT likelihood, impact, count(*) FROM ops_risk WHERE organization_id = %(org)s
        AND status IN ('open', 'mitigating') GROUP BY 1, 2""",
    """SELECT category, count(*) FROM ops_risk WHERE organization_id = %(org)s
        AND status IN ('open', 'mitigating') GROUP BY 1""",
    """SELECT * FROM ops_risk WHERE organization_id = %(org)s AND status IN ('open', 'mitigating')
        ORDER BY score DESC, impact DESC, id LIMIT 10""",
    # Risk: new, overdue, closed in the period.
    """SELECT count(*) FILTER (WHERE created_at >= %(start)s AND created_at < %(end)s::date + 1),
        count(*) FILTER (WHERE next_review_date <= %(end)s AND status IN ('open', 'mitigating')),
        count(*) FILTER (WHERE status = 'closed' AND closed_at >= %(start)s AND closed_at < %(end)s::date + 1)
       FROM ops_risk WHERE organization_id = %(org)s""",
]


def bench_db_url() -> str:
    url = urlparse(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tracker"))
    return urlunparse(url._replace(path=url.path.rstrip("/") + "_bench"))


def run() -> None:
    """Run the benchmark in a child process on the bench database and print its figures."""
    env = os.environ | {"DATABASE_URL": bench_db_url(), "DJANGO_SETTINGS_MODULE": "tracker.settings"}
    max_projects = os.environ.get("BENCH_MAX_PROJECTS", "5000")
    subprocess.run(
        [sys.executable, "-m", "bench.reports", "--child", "--max-projects", max_projects],
        cwd=BASE_DIR,
        env=env,
        check=True,
    )


def _recreate_database() -> None:
    import psycopg

    url = urlparse(os.environ["DATABASE_URL"])
    name = url.path.lstrip("/")
    admin = urlunparse(url._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        # A fresh database each run, so every figure is measured on exactly the data described.
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _child(max_projects: int) -> None:
    import django

    _recreate_database()
    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from ops.models import Report, ReportKind
    from ops.selectors.reports import report_week
    from ops.services import report_build
    from projects.models import Organization, Project

    call_command("migrate", verbosity=0)

    def seed(upto: int, entries: int) -> None:
        have = Project.objects.filter(slug__regex=r"^p-[0-9]+$").count()
        if have >= upto:
            return
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(SEED_SQL, {"orgs": ORGS, "from": have + 1, "to": upto, "entries": entries})
            cursor.execute("ANALYZE")
        print(
            f"  seeded projects {have + 1}–{upto} ({entries} cost entries each) "
            f"in {time.perf_counter() - started:.1f} s"
        )

    def measure(org: Organization) -> dict[str, float]:
        start, end = report_week(timezone.localdate(timezone=org.tzinfo) - dt.timedelta(days=7))
        times, queries, peaks = [], [], []
        for _ in range(3):
            Report.objects.filter(organization=org).delete()
            reports = [
                Report.objects.create(organization=org, kind=kind, period_start=start, period_end=end)
                for kind in ReportKind.values
            ]
            tracemalloc.start()
            began = time.perf_counter()
            with CaptureQueriesContext(connection) as captured:
                for report in reports:
                    report_build(report_id=report.pk)
            times.append(time.perf_counter() - began)
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
            queries.append(len(captured) / len(reports))
        raw = []
        for _ in range(3):
            began = time.perf_counter()
            with connection.cursor() as cursor:
                for sql in RAW_SQL:
                    cursor.execute(sql, {"org": org.pk, "start": start, "end": end})
                    cursor.fetchall()
            raw.append(time.perf_counter() - began)
        entries = connection.cursor()
        entries.execute(
            "SELECT count(*) FROM ops_costentry c JOIN projects_project p ON p.id = c.project_id "
            "WHERE p.organization_id = %s",
            [org.pk],
        )
        return {
            "projects": Project.objects.filter(organization=org).count(),
            "entries": entries.fetchone()[0],
            "build": statistics.median(times),
            "raw": statistics.median(raw),
            "queries": max(queries),
            "peak_mib": max(peaks) / 2**20,
        }

    def show(label: str, m: dict[str, float]) -> None:
        print(
            f"  {label}: one org = {m['projects']} projects, {m['entries']:,} cost entries | build status+risk "
            f"{m['build'] * 1000:.0f} ms vs raw SQL {m['raw'] * 1000:.0f} ms = {m['build'] / m['raw']:.2f}× | "
            f"{m['queries']:.0f} queries/report | peak memory {m['peak_mib']:.1f} MiB"
        )

    print("Reports benchmark (database: bench)")
    seed(500, 200)
    org = Organization.objects.get(slug="bench-1")
    small = measure(org)
    show("500 projects", small)
    # Ten times the cost entries of the same organization: memory must stay flat.
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO ops_costentry (created_at, updated_at, date, category, amount, description, model,
                input_tokens, cached_input_tokens, output_tokens, requests, gpu_hours, energy_kwh, source, external_id,
                project_id)
               SELECT now(), now(), current_date - (n %% 365), 'inference', (n %% 500) / 10.0, '', '', n, 0, n, 1, 0,
                0, 'manual', '', p.id
               FROM projects_project p, generate_series(1, 1800) n
               WHERE p.organization_id = %s AND NOT EXISTS (SELECT 1 FROM ops_costentry c WHERE c.project_id = p.id
                AND c.source = 'manual')""",
            [org.pk],
        )
        cursor.execute("ANALYZE ops_costentry")
    dense = measure(org)
    show("same org, 10× cost entries", dense)
    if max_projects >= 5000:
        seed(5000, 200)
        large = measure(Organization.objects.get(slug="bench-2"))
        show("5,000 projects", large)
        print(
            f"  growth 500 → 5,000 projects (10× per organization): time ×{large['build'] / small['build']:.1f}, "
            f"queries per report {small['queries']:.0f} → {large['queries']:.0f}"
        )
    print(f"  memory with 10× cost entries: {small['peak_mib']:.1f} → {dense['peak_mib']:.1f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--max-projects", type=int, default=5000)
    arguments = parser.parse_args()
    if arguments.child:
        _child(arguments.max_projects)
    else:
        os.environ["BENCH_MAX_PROJECTS"] = str(arguments.max_projects)
        run()
