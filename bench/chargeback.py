"""Benchmark of the chargeback report: the selector vs raw SQL computing the same groupings, queries as data grows.

`run()` re-executes this module in a child process on its own database (DATABASE_URL + "_chargeback",
dropped, created and migrated each run). The child seeds one organization with 5,000 projects (50 cost
centres, 20 teams, an `env` tag on the projects, one project in ten with none of them, an infrastructure
component each) and cost entries dated in one month (one in five with its own `env` tag, one in fifty
unpriced usage, one in four with no billing provider so that the project's infrastructure decides), first
a tenth of `--entries`, then all of them. For each grouping (cost centre, team, tag:env, provider) it
measures the selector `ops.selectors.chargeback.chargeback` (median of 3) against hand-written SQL
computing the same rows, checks that both agree to the cent and sum to the month's total, and counts
the selector's queries at both sizes (constant: 1).

Writes bench-results/chargeback.json with the load average.

Run: `python -m bench chargeback` (1,000,000 entries) or `python -m bench.chargeback --entries 100000`.
"""

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from decimal import Decimal

from bench._db import BASE_DIR, create_database, run_child

PROJECTS = 5000
ROUNDS = 3
MONTH = dt.date(2026, 3, 1)

SEED_SQL = """
INSERT INTO projects_organization (created_at, updated_at, name, slug, currency, timezone, locale, otlp_tag_keys)
VALUES (now(), now(), 'Chargeback bench', 'chargeback-bench', 'USD', 'Europe/Berlin', 'en', '[]');

INSERT INTO projects_costcentre (created_at, updated_at, code, name, organization_id)
SELECT now(), now(), 'CC-' || lpad(n::text, 3, '0'), 'Centre ' || n, o.id
FROM projects_organization o, generate_series(1, 50) n WHERE o.slug = 'chargeback-bench';

INSERT INTO projects_team (created_at, updated_at, name, slug, description, organization_id)
SELECT now(), now(), 'Team ' || n, 'team-' || n, '', o.id
FROM projects_organization o, generate_series(1, 20) n WHERE o.slug = 'chargeback-bench';

INSERT INTO projects_project (created_at, updated_at, name, slug, summary, industry, use_case, data_classification,
    ai_act_tier, stage, stage_entered_at, health, progress, archived, otel_service_names, organization_id,
    cost_centre_id, team_id, tags)
SELECT now(), now(), 'Project ' || p, 'p-' || p, '', 'finance', 'customer_support', 'internal', 'minimal',
    'production', now(), 'green', 50, p %% 50 = 0, '[]', o.id,
    CASE WHEN p %% 10 = 0 THEN NULL ELSE (SELECT id FROM projects_costcentre WHERE organization_id = o.id
        AND code = 'CC-' || lpad((1 + p %% 50)::text, 3, '0')) END,
    CASE WHEN p %% 10 = 0 THEN NULL ELSE (SELECT id FROM projects_team WHERE organization_id = o.id
        AND slug = 'team-' || (1 + p %% 20)) END,
    CASE WHEN p %% 10 = 0 THEN '{}'::jsonb ELSE jsonb_build_object('env', (ARRAY['prod', 'staging', 'dev'])[1 + p %% 3])
        END
FROM projects_organization o, generate_series(1, %(projects)s) p WHERE o.slug = 'chargeback-bench';

INSERT INTO ops_infrastructurecomponent (created_at, updated_at, name, kind, provider, hosting, region, environment,
    model_name, model_version, model_source, frameworks, gpu_type, gpu_count, notes, project_id)
SELECT now(), now(), 'LLM', 'foundation_model', (ARRAY['aws', 'azure', 'gcp', 'on_premises'])[1 + p.id %% 4],
    'cloud', '', 'production', 'gpt-4o', '', 'hosted_api', '[]', '', 0, '', p.id
FROM projects_project p JOIN projects_organization o ON o.id = p.organization_id
WHERE o.slug = 'chargeback-bench' AND p.id %% 10 <> 0;
"""

ENTRIES_SQL = """
INSERT INTO ops_costentry (created_at, updated_at, date, category, amount, description, model, provider,
    input_tokens, cached_input_tokens, output_tokens, requests, gpu_hours, energy_kwh, source, external_id,
    project_id, tags)
SELECT now(), now(), %(month)s::date + (n %% 28), 'inference',
    CASE WHEN n %% 50 = 0 THEN NULL ELSE (n %% 997) / 100.0 END, '', 'gpt-4o',
    CASE WHEN n %% 4 = 0 THEN '' ELSE (ARRAY['openai', 'azure.ai.openai', 'aws.bedrock', 'gcp.vertex_ai'])[1 + n %% 4]
        END,
    0, 0, 0, 0, 0, 0, CASE WHEN n %% 50 = 0 THEN 'usage' ELSE 'api' END, '', p.id,
    CASE WHEN n %% 5 = 0 THEN jsonb_build_object('env', 'shared') ELSE '{}'::jsonb END
FROM (SELECT id, row_number() OVER (ORDER BY id) AS k FROM projects_project
      WHERE organization_id = %(org)s) p
JOIN generate_series(%(from)s, %(to)s) n ON p.k = 1 + n %% %(projects)s;
"""

WHERE = "p.organization_id = %(org)s AND c.date >= %(start)s AND c.date <= %(end)s"
SUMS = "sum(c.amount), count(*), count(*) FILTER (WHERE c.amount IS NULL)"
RAW_SQL = {
    "cost_centre": f"""SELECT COALESCE(cc.code, ''), {SUMS} FROM ops_costentry c
        JOIN projects_project p ON p.id = c.project_id LEFT JOIN projects_costcentre cc ON cc.id = p.cost_centre_id
        WHERE {WHERE} GROUP BY 1""",
    "team": f"""SELECT COALESCE(t.slug, ''), {SUMS} FROM ops_costentry c
        JOIN projects_project p ON p.id = c.project_id LEFT JOIN projects_team t ON t.id = p.team_id
        WHERE {WHERE} GROUP BY 1""",
    "tag:env": f"""SELECT COALESCE(c.tags ->> 'env', p.tags ->> 'env', ''), {SUMS} FROM ops_costentry c
        JOIN projects_project p ON p.id = c.project_id WHERE {WHERE} GROUP BY 1""",
    # Usage for its billing provider's infrastructure; anything else for its project's main component.
    "provider": f"""WITH main AS (SELECT DISTINCT ON (project_id) project_id, provider FROM ops_infrastructurecomponent
            ORDER BY project_id, CASE WHEN kind IN ('foundation_model', 'fine_tuned_model') THEN 0 ELSE 1 END, id)
        SELECT CASE WHEN c.provider = '' THEN COALESCE(m.provider, '')
            WHEN c.provider IN ('azure.ai.openai', 'azure.ai.inference') THEN 'azure'
            WHEN c.provider = 'aws.bedrock' THEN 'aws'
            WHEN c.provider IN ('gcp.vertex_ai', 'gcp.gemini', 'gcp.gen_ai') THEN 'gcp'
            WHEN c.provider = 'self_hosted' THEN 'on_premises' ELSE 'other' END, {SUMS}
        FROM ops_costentry c JOIN projects_project p ON p.id = c.project_id
        LEFT JOIN main m ON m.project_id = c.project_id WHERE {WHERE} GROUP BY 1""",
}


def run() -> None:
    run_child("bench.chargeback", "_chargeback", "--entries", os.environ.get("BENCH_CHARGEBACK_ENTRIES", "1000000"))


def _child(entries: int) -> None:
    import django

    create_database(os.environ["DATABASE_URL"], fresh=True)
    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from ops.providers import INFRASTRUCTURE
    from ops.selectors.chargeback import chargeback, month_bounds
    from projects.models import Organization

    call_command("migrate", verbosity=0)
    # The hand-written provider mapping must be the vocabulary's (ops/providers.py).
    mapped = {"azure.ai.openai": "azure", "azure.ai.inference": "azure", "aws.bedrock": "aws"}
    mapped |= {"gcp.vertex_ai": "gcp", "gcp.gemini": "gcp", "gcp.gen_ai": "gcp", "self_hosted": "on_premises"}
    if {code.value: p.value for code, p in INFRASTRUCTURE.items() if p.value != "other"} != mapped:
        sys.exit("bench/chargeback.py's provider mapping differs from ops/providers.py: update RAW_SQL.")
    with connection.cursor() as cursor:
        cursor.execute(SEED_SQL, {"projects": PROJECTS})
    org = Organization.objects.get(slug="chargeback-bench")
    start, end = month_bounds(MONTH)
    params = {"org": org.pk, "start": start, "end": end}
    seeded = 0

    def seed(upto: int) -> None:
        nonlocal seeded
        began = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                ENTRIES_SQL, {"month": MONTH, "org": org.pk, "from": seeded + 1, "to": upto, "projects": PROJECTS}
            )
            cursor.execute("ANALYZE")
        print(f"  seeded cost entries {seeded + 1:,}–{upto:,} in {time.perf_counter() - began:.1f} s", flush=True)
        seeded = upto

    def raw(group_by: str) -> dict[str, tuple]:
        with connection.cursor() as cursor:
            cursor.execute(RAW_SQL[group_by], params)
            return {key: (total or Decimal(0), n, unpriced) for key, total, n, unpriced in cursor.fetchall()}

    def measure(group_by: str) -> dict[str, float]:
        with CaptureQueriesContext(connection) as captured:
            report = chargeback(organization=org, month=MONTH, group_by=group_by)
        got = {r.key: (r.amount, r.entries, r.unpriced_entries) for r in report.rows}
        expected = raw(group_by)
        if got != expected:
            sys.exit(f"The raw SQL disagrees with the chargeback for {group_by}: {got} != {expected}")
        selector, hand = [], []
        for _ in range(ROUNDS):  # alternated, so that load on the machine weighs on both alike
            began = time.perf_counter()
            chargeback(organization=org, month=MONTH, group_by=group_by)
            selector.append(time.perf_counter() - began)
            began = time.perf_counter()
            raw(group_by)
            hand.append(time.perf_counter() - began)
        return {
            "selector_ms": round(statistics.median(selector) * 1000, 1),
            "raw_sql_ms": round(statistics.median(hand) * 1000, 1),
            "ratio_to_raw_sql": round(statistics.median(selector) / statistics.median(hand), 2),
            "queries": len(captured),
            "rows": len(report.rows),
            "total": str(report.total),
        }

    print(f"Chargeback benchmark (database: bench, {PROJECTS:,} projects)", flush=True)
    results = {}
    for size in (entries // 10, entries):
        seed(size)
        figures = {group_by: measure(group_by) for group_by in RAW_SQL}
        results[f"{size:,} entries"] = figures
        for group_by, m in figures.items():
            print(
                f"  {size:,} entries, by {group_by}: selector {m['selector_ms']:.0f} ms vs raw SQL "
                f"{m['raw_sql_ms']:.0f} ms = {m['ratio_to_raw_sql']:.2f}× | {m['queries']} queries | {m['rows']} rows",
                flush=True,
            )
    small, large = (results[f"{n:,} entries"] for n in (entries // 10, entries))
    constant = all(small[g]["queries"] == large[g]["queries"] for g in RAW_SQL)
    print(f"  queries constant from {entries // 10:,} to {entries:,} entries: {constant}")
    out = BASE_DIR / "bench-results"
    out.mkdir(exist_ok=True)
    (out / "chargeback.json").write_text(
        json.dumps(
            {"projects": PROJECTS, "results": results, "queries_constant": constant, "load_average": os.getloadavg()},
            indent=2,
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--entries", type=int, default=1_000_000)
    arguments = parser.parse_args()
    if arguments.child:
        _child(arguments.entries)
    else:
        os.environ["BENCH_CHARGEBACK_ENTRIES"] = str(arguments.entries)
        run()
