"""Benchmark of the weekly reports: build time vs raw SQL, queries per report, growth, peak memory.

`run()` re-executes this module in a child process on a separate database (DATABASE_URL + "_bench",
dropped, created and migrated each run) so the benchmark never touches the working database. The child
seeds a synthetic portfolio with set-based SQL (10 organizations, 20 cost entries per project per
10× step), then for one organization measures:

- the time to build its status summary and risk report (`report_build`, median of ROUNDS) vs the time of
  hand-written SQL computing the same figures, checked against the reports first (target ≤ 1.5×);
- queries per report (constant from 500 to 5,000 projects);
- the peak Python memory (tracemalloc) while building, which must not grow with cost entries.

Writes bench-results/reports.json (with the load average at the end of the run).

Run: `python -m bench.reports [--max-projects 5000]` or through `python -m bench`.
"""

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
import tracemalloc
from decimal import Decimal
from typing import Any

from bench._db import BASE_DIR, create_database, run_child

ORGS = 10
ROUNDS = 5
TARGET = 1.5  # build ≤ 1.5 × the floor at every size

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
    organization_id, project_id, next_review_date, closed_at, accepted_at)
SELECT now() - (n * 7) * interval '1 day', now(), 'Risk ' || n, '', 'reliability', 1 + (np.id + n) %% 5,
    1 + (np.id * n) %% 5, CASE WHEN n %% 4 = 0 THEN 'closed' WHEN n %% 5 = 0 THEN 'accepted' ELSE 'open' END,
    'mitigate', '', '[]', '[]', CASE WHEN n = 1 THEN 'signal' ELSE 'manual' END,
    CASE WHEN n = 1 THEN 'stale_status' ELSE '' END, CASE WHEN n = 1 THEN 'stale_status:' || np.id ELSE '' END,
    CASE WHEN n %% 5 = 0 THEN 'Bench' ELSE '' END, '', np.organization_id, np.id, current_date + (n - 5),
    CASE WHEN n %% 4 = 0 THEN now() - (n * 7 - 1) * interval '1 day' END,
    CASE WHEN n %% 5 = 0 AND n %% 4 <> 0 THEN now() - (n * 7 - 1) * interval '1 day' END
FROM new_projects np, generate_series(1, 10) n;

-- Each risk assessed when raised; every third reassessed last week, so escalations are in the report.
INSERT INTO ops_riskassessment (risk_id, assessed_at, likelihood, impact, note)
SELECT r.id, r.created_at, r.likelihood, r.impact, '' FROM ops_risk r JOIN new_projects np ON np.id = r.project_id
UNION ALL
SELECT r.id, now() - interval '7 days', 1 + r.id %% 5, r.impact, '' FROM ops_risk r
JOIN new_projects np ON np.id = r.project_id WHERE r.id %% 3 = 0 AND r.created_at < now() - interval '7 days';

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

# Every figure of the two reports, written by hand for PostgreSQL: what the database costs at the least.
# The scoped projects: the organization's live projects that existed by the end of the period, read as an
# array (`= ANY(ARRAY(…))`, as the build's tracker.db.in_ids): `IN (…)` was planned as a hash join over every
# organization's rows, a floor slower than the build.
SCOPED = "SELECT id FROM projects_project WHERE organization_id = %(org)s AND NOT archived AND created_at < %(end_dt)s"
ACTIVE = "status IN ('open', 'mitigating')"
# A risk list: the first rows with the project and owner names, and the exact count.
RISK_ROW = """r.id, r.title, r.project_id, p.name, r.category, r.likelihood, r.impact, r.score, r.severity, r.status,
    u.username, r.next_review_date, r.signal_rule, r.created_at, count(*) OVER ()"""
RISK_JOINS = "LEFT JOIN projects_project p ON p.id = r.project_id LEFT JOIN auth_user u ON u.id = r.owner_id"
RISK_LIST = f"""SELECT {RISK_ROW} FROM ops_risk r {RISK_JOINS}
    WHERE r.organization_id = %(org)s AND {{where}} ORDER BY {{order}} LIMIT %(limit)s"""
RAW_SQL = {
    # Status: each project's stage as of the end of the period and its gate checks.
    "projects": f"""SELECT p.id, p.name, t.name, p.industry, p.data_classification, p.ai_act_tier,
        p.human_oversight_owner_id,
        COALESCE(b.to_stage, a.from_stage, p.stage),
        COALESCE(b.at, CASE WHEN a.from_stage IS NOT NULL THEN p.created_at ELSE p.stage_entered_at END),
        (SELECT 1 FROM ops_budget WHERE project_id = p.id LIMIT 1) IS NOT NULL,
        (SELECT 1 FROM ops_infrastructurecomponent WHERE project_id = p.id LIMIT 1) IS NOT NULL,
        (SELECT 1 FROM ops_risk r JOIN ops_riskassessment ra ON ra.risk_id = r.id WHERE r.project_id = p.id
            LIMIT 1) IS NOT NULL,
        (SELECT 1 FROM ops_risk r JOIN ops_riskassessment ra ON ra.risk_id = r.id WHERE r.project_id = p.id
            AND r.category = 'compliance' LIMIT 1) IS NOT NULL,
        (SELECT 1 FROM ops_risk r JOIN ops_riskassessment ra ON ra.risk_id = r.id WHERE r.project_id = p.id
            AND r.category = 'data_privacy' LIMIT 1) IS NOT NULL,
        (SELECT 1 FROM ops_risk WHERE project_id = p.id AND status = 'open' AND severity = 'critical'
            AND mitigation_plan = '' LIMIT 1) IS NOT NULL,
        (SELECT 1 FROM ops_qualitymetric WHERE project_id = p.id LIMIT 1) IS NOT NULL,
        -- Needs attention: an active risk past its review date, and the creation (stale without a status).
        (SELECT 1 FROM ops_risk WHERE project_id = p.id AND status IN ('open', 'mitigating')
            AND next_review_date < %(end)s LIMIT 1) IS NOT NULL, p.created_at
       FROM projects_project p LEFT JOIN projects_team t ON t.id = p.team_id
       LEFT JOIN LATERAL (SELECT to_stage, at FROM projects_stagetransition WHERE project_id = p.id
            AND at < %(end_dt)s ORDER BY at DESC, id DESC LIMIT 1) b ON true
       LEFT JOIN LATERAL (SELECT from_stage FROM projects_stagetransition WHERE project_id = p.id
            AND at >= %(end_dt)s ORDER BY at, id LIMIT 1) a ON true
       WHERE p.id = ANY(ARRAY({SCOPED})) ORDER BY p.name, p.id""",
    # Status: the current budget per project and category (the one starting last wins).
    "budgets": f"""SELECT DISTINCT ON (project_id, category) project_id, category, id, amount, period_start, period_end
       FROM ops_budget WHERE project_id = ANY(ARRAY({SCOPED})) AND period_start <= %(end)s AND period_end >= %(end)s
       ORDER BY project_id, category, period_start DESC, id DESC""",
    # Status: spend in the period, to date and since each current budget started (the overall one and the
    # entry's category's); tokens; unpriced entries (one pass).
    "costs": f"""WITH budget AS (SELECT DISTINCT ON (project_id, category) project_id, category, period_start
            FROM ops_budget WHERE project_id = ANY(ARRAY({SCOPED}))
              AND period_start <= %(end)s AND period_end >= %(end)s
            ORDER BY project_id, category, period_start DESC, id DESC)
       SELECT c.project_id, sum(c.amount) FILTER (WHERE c.date >= %(start)s), sum(c.amount),
        sum(c.amount) FILTER (WHERE c.date >= b.period_start), sum(c.amount) FILTER (WHERE c.date >= k.period_start),
        sum(c.input_tokens) FILTER (WHERE c.date >= %(start)s),
        sum(c.cached_input_tokens) FILTER (WHERE c.date >= %(start)s),
        sum(c.output_tokens) FILTER (WHERE c.date >= %(start)s),
        count(*) FILTER (WHERE c.amount IS NULL AND c.date >= %(start)s), count(*) FILTER (WHERE c.amount IS NULL),
        count(*) FILTER (WHERE c.amount IS NULL AND c.date >= b.period_start),
        count(*) FILTER (WHERE c.amount IS NULL AND c.date >= k.period_start)
       FROM ops_costentry c LEFT JOIN budget b ON b.project_id = c.project_id AND b.category = ''
       LEFT JOIN budget k ON k.project_id = c.project_id AND k.category = c.category AND k.category <> ''
       WHERE c.project_id = ANY(ARRAY({SCOPED})) AND c.date <= %(end)s GROUP BY c.project_id, c.category""",
    # Status: the priced spend per day of the forecast window (the 14 days up to the period's end).
    "forecast_window": f"""SELECT project_id, category, date, sum(amount) FROM ops_costentry
       WHERE project_id = ANY(ARRAY({SCOPED})) AND amount IS NOT NULL AND date > %(end)s - 14 AND date <= %(end)s
       GROUP BY 1, 2, 3""",
    # Status: CodeCarbon runs recorded in the period.
    "energy": f"""SELECT project_id, count(*), sum(energy_kwh), sum(emissions_kg) FROM ops_energyrun
       WHERE project_id = ANY(ARRAY({SCOPED})) AND recorded_at >= %(start_dt)s AND recorded_at < %(end_dt)s
       GROUP BY 1""",
    # Status: the budget thresholds crossed in the period (project, team and cost-centre budgets) and their owners.
    "crossings": """SELECT x.budget_id, COALESCE(p.name, t.name, cc.code || ' ' || cc.name), x.threshold_pct,
        x.crossed_on, x.period_start, x.period_end, x.amount, x.spend FROM ops_budgetthresholdcrossing x
       JOIN ops_budget b ON b.id = x.budget_id LEFT JOIN projects_project p ON p.id = b.project_id
       LEFT JOIN projects_team t ON t.id = b.team_id LEFT JOIN projects_costcentre cc ON cc.id = b.cost_centre_id
       WHERE x.crossed_on BETWEEN %(start)s AND %(end)s
        AND COALESCE(p.organization_id, t.organization_id, cc.organization_id) = %(org)s
       ORDER BY x.crossed_on, x.id""",
    # Status: the last four status updates (latest health, progress, date and the trend).
    "status_history": f"""SELECT project_id, health, progress, date FROM (SELECT project_id, health, progress, date,
        row_number() OVER (PARTITION BY project_id ORDER BY date DESC, created_at DESC, id DESC) rn
        FROM projects_statusupdate WHERE project_id = ANY(ARRAY({SCOPED})) AND date <= %(end)s) t WHERE rn <= 4
       ORDER BY project_id, rn""",
    # Status: stage moves in the period.
    "stage_moves": f"""SELECT project_id, from_stage, to_stage, at FROM projects_stagetransition
       WHERE project_id = ANY(ARRAY({SCOPED})) AND at >= %(start_dt)s AND at < %(end_dt)s ORDER BY at, id""",
    # Status: the latest value of each metric.
    "metrics": f"""SELECT project_id, metric, name, value, threshold, higher_is_better, date FROM (SELECT q.*,
        row_number() OVER (PARTITION BY project_id, metric, name ORDER BY date DESC, id DESC) rn
        FROM ops_qualitymetric q WHERE project_id = ANY(ARRAY({SCOPED})) AND date <= %(end)s) t WHERE rn = 1
       ORDER BY project_id, metric, name""",
    # Status: open risks by project (portfolio-wide ones included) and severity.
    "open_risks": f"""SELECT project_id, severity, count(*) FROM ops_risk WHERE organization_id = %(org)s AND {ACTIVE}
        AND created_at < %(end_dt)s AND (project_id = ANY(ARRAY({SCOPED})) OR project_id IS NULL) GROUP BY 1, 2""",
    # Status: projects per provider and per hosting.
    "infrastructure": f"""SELECT provider, hosting, count(DISTINCT project_id) FROM ops_infrastructurecomponent
       WHERE project_id = ANY(ARRAY({SCOPED})) GROUP BY GROUPING SETS ((provider), (hosting))""",
    # Risk: the heat map, severity bands and categories; by project; top ten.
    "heat_map": f"""SELECT likelihood, impact, category, count(*) FROM ops_risk
       WHERE organization_id = %(org)s AND {ACTIVE} AND created_at < %(end_dt)s GROUP BY 1, 2, 3""",
    "by_project": f"""SELECT r.project_id, p.name, count(*), max(r.score),
        count(*) FILTER (WHERE r.severity IN ('high', 'critical'))
       FROM ops_risk r LEFT JOIN projects_project p ON p.id = r.project_id
       WHERE r.organization_id = %(org)s AND r.{ACTIVE} AND r.created_at < %(end_dt)s
       GROUP BY 1, 2 ORDER BY 4 DESC, 2""",
    "top_risks": RISK_LIST.format(
        where=f"r.{ACTIVE} AND r.created_at < %(end_dt)s", order="r.score DESC, r.impact DESC, r.id"
    ).replace("%(limit)s", "10"),
    # Risk: the lists of the period.
    "new": RISK_LIST.format(
        where="r.created_at >= %(start_dt)s AND r.created_at < %(end_dt)s", order="r.score DESC, r.id"
    ),
    "closed": RISK_LIST.format(
        where="r.status = 'closed' AND r.closed_at >= %(start_dt)s AND r.closed_at < %(end_dt)s", order="r.id"
    ),
    "accepted": RISK_LIST.format(
        where="r.status = 'accepted' AND r.accepted_at >= %(start_dt)s AND r.accepted_at < %(end_dt)s", order="r.id"
    ),
    "overdue_reviews": RISK_LIST.format(
        where=f"r.{ACTIVE} AND r.created_at < %(end_dt)s AND r.next_review_date <= %(end)s",
        order="r.next_review_date, r.id",
    ),
    "signals_raised": RISK_LIST.format(
        where="r.source = 'signal' AND r.created_at >= %(start_dt)s AND r.created_at < %(end_dt)s",
        order="r.signal_rule, r.id",
    ),
    "signals_cleared": RISK_LIST.format(
        where="r.source = 'signal' AND r.status = 'closed' AND r.closed_at >= %(start_dt)s "
        "AND r.closed_at < %(end_dt)s",
        order="r.signal_rule, r.id",
    ),
    # Risk: escalated, i.e. reassessed in the period to a higher score than before it (or than its first
    # assessment in the period).
    "escalated": f"""SELECT {RISK_ROW}, s.before, s.after FROM ops_risk r {RISK_JOINS}
       CROSS JOIN LATERAL (SELECT
            COALESCE((SELECT score FROM ops_riskassessment WHERE risk_id = r.id AND assessed_at < %(start_dt)s
                        ORDER BY assessed_at DESC, id DESC LIMIT 1),
                     (SELECT score FROM ops_riskassessment WHERE risk_id = r.id AND assessed_at >= %(start_dt)s
                        AND assessed_at < %(end_dt)s ORDER BY assessed_at, id LIMIT 1)) AS before,
            (SELECT score FROM ops_riskassessment WHERE risk_id = r.id AND assessed_at < %(end_dt)s
                ORDER BY assessed_at DESC, id DESC LIMIT 1) AS after) s
       WHERE r.id IN (SELECT a.risk_id FROM ops_riskassessment a JOIN ops_risk x ON x.id = a.risk_id
            WHERE x.organization_id = %(org)s AND a.assessed_at >= %(start_dt)s AND a.assessed_at < %(end_dt)s)
        AND s.after > s.before
       ORDER BY s.after DESC, r.id LIMIT %(limit)s""",
}


def _blocked(row: tuple) -> bool:
    """Whether a floor project row misses a gate of its next stage.

    The seeded projects hold internal data at the minimal AI Act tier, so their gates are budget,
    infrastructure, a risk review, quality metrics and no unmitigated critical risk (columns 9–15), for
    the stage after the one at the end of the period (column 7).
    """
    return row[7] in ("evaluation", "pilot") and not (row[9] and row[10] and row[11] and row[15] and not row[14])


def _attention(raw: dict[str, list[tuple]], end: dt.date, tz: Any) -> int:
    """Count the floor's projects needing attention: red or amber, over budget, stale, overdue review, blocked."""
    from django.conf import settings

    latest = {}
    for project_id, health, _progress, day in raw["status_history"]:
        latest.setdefault(project_id, (health, day))
    amounts = {row[0]: row[3] for row in raw["budgets"] if row[1] == ""}
    spend: dict[int, Decimal] = {}
    for row in raw["costs"]:
        spend[row[0]] = spend.get(row[0], Decimal(0)) + (row[3] or 0)
    stale_before = end - dt.timedelta(days=settings.RISK_SIGNAL_STALE_STATUS_DAYS)
    count = 0
    for row in raw["projects"]:
        health, last = latest.get(row[0], ("", None))
        over = row[0] in amounts and spend.get(row[0], 0) > amounts[row[0]]
        stale = (last or row[17].astimezone(tz).date()) < stale_before
        if row[7] != "retired" and (health in ("red", "amber") or over or stale or row[16] or _blocked(row)):
            count += 1
    return count


def _forecasts(raw: dict[str, list[tuple]], end: dt.date) -> Decimal:
    """Sum the overall budgets' forecasts from the floor's spend and daily window (the report's forecast rule)."""
    from ops.selectors.portfolio import daily_series, spend_forecast

    by_day: dict[int, dict[dt.date, Decimal]] = {}
    for project_id, _category, day, amount in raw["forecast_window"]:
        days = by_day.setdefault(project_id, {})
        days[day] = days.get(day, Decimal(0)) + amount
    spend: dict[int, Decimal] = {}
    for row in raw["costs"]:
        spend[row[0]] = spend.get(row[0], Decimal(0)) + (row[3] or 0)
    total = Decimal(0)
    for project_id, category, _id, amount, start, period_end in raw["budgets"]:
        if category == "":
            daily = daily_series(by_day.get(project_id, {}), period_start=start, as_of=end)
            outlook = spend_forecast(
                spend=spend.get(project_id, Decimal(0)), amount=amount, daily=daily, as_of=end, period_end=period_end
            )
            total += outlook.expected
    return total


def _check(reports: list[Any], raw: dict[str, list[tuple]]) -> None:
    """Stop the benchmark unless the raw SQL computes the same figures as the reports."""
    status, risk = (report.data for report in sorted(reports, key=lambda report: report.kind != "status"))
    totals = status["totals"]
    end = dt.date.fromisoformat(status["period"]["end"])
    sections = status["projects"]
    pairs = {
        "projects": (totals["projects"], len(raw["projects"])),
        "spend to date": (Decimal(totals["spend_to_date"]), sum(row[2] or 0 for row in raw["costs"])),
        "budget spend": (Decimal(totals["budget_spend"]), sum(row[3] or 0 for row in raw["costs"])),
        "blocked projects": (
            sum(bool(section["unmet_gates"]) for section in sections),
            sum(_blocked(row) for row in raw["projects"]),
        ),
        "needs attention": (totals["needs_attention"], _attention(raw, end, reports[0].organization.tzinfo)),
        "unpriced to date": (
            sum(section["unpriced_entries_to_date"] for section in sections),
            sum(row[9] for row in raw["costs"]),
        ),
        "budget spend incomplete": (
            sum(section["budget_spend_incomplete"] for section in sections),
            len({row[0] for row in raw["costs"] if row[10]}),
        ),
        "forecasts": (
            sum(Decimal(section["budget_forecast"]) for section in sections if section["budget_forecast"]),
            _forecasts(raw, end),
        ),
        "energy runs": (totals["energy_runs"], sum(row[1] for row in raw["energy"])),
        "budget thresholds crossed": (totals["budget_thresholds_crossed"], len(raw["crossings"])),
        "open risks": (sum(totals["open_risks"].values()), sum(row[2] for row in raw["open_risks"])),
        "heat map": (risk["totals"]["open"], sum(row[3] for row in raw["heat_map"])),
    }
    for key in ("new", "closed", "accepted", "overdue_reviews", "signals_raised", "signals_cleared", "escalated"):
        pairs[key] = (risk[key]["count"], raw[key][0][14] if raw[key] else 0)
    wrong = {name: pair for name, pair in pairs.items() if pair[0] != round(pair[1], 2)}
    if wrong:
        sys.exit(f"The raw SQL disagrees with the reports (report, raw): {wrong}")


def run() -> None:
    """Run the benchmark in a child process on the bench database and print its figures."""
    run_child("bench.reports", "_bench", "--max-projects", os.environ.get("BENCH_MAX_PROJECTS", "5000"))


def _child(max_projects: int) -> None:
    import django

    # A fresh database each run, so every figure is measured on exactly the data described.
    create_database(os.environ["DATABASE_URL"], fresh=True)
    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from ops.models import Report, ReportKind
    from ops.selectors.reports import period_bounds, report_week
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

    def build(org: Organization, start: dt.date, end: dt.date) -> tuple[list[Report], int, float]:
        """Build both reports of the period afresh; return them, the queries and the seconds the builds took.

        Only `report_build` is timed and counted: the floor is given its report's period, so the bench's
        deleting and creating of the report rows is no part of either side.
        """
        Report.objects.filter(organization=org).delete()
        reports = [
            Report.objects.create(organization=org, kind=kind, period_start=start, period_end=end)
            for kind in ReportKind.values
        ]
        statements = 0

        def count(execute, sql, params, many, context):  # a counter, not Django's query log: it costs the build
            nonlocal statements
            statements += sql.count(";\n") + 1  # outside a pipeline, a batch (tracker.db.compiled_send) is one execute
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            began = time.perf_counter()
            built = [report_build(report_id=report.pk) for report in reports]
            seconds = time.perf_counter() - began
        return built, statements, seconds

    def raw_sql(params: dict[str, Any]) -> dict[str, list[tuple]]:
        with connection.cursor() as cursor:
            cursor.execute("SET jit = off")  # as the build's session runs (ops.services.reports.CLAIM_SQL)
            results = {}
            for name, sql in RAW_SQL.items():
                cursor.execute(sql, params)
                results[name] = cursor.fetchall()
            cursor.execute("RESET jit")
        return results

    def measure(org: Organization) -> dict[str, float]:
        start, end = report_week(timezone.localdate(timezone=org.tzinfo) - dt.timedelta(days=7))
        start_dt, end_dt = period_bounds(org, start, end)
        params = {"org": org.pk, "start": start, "end": end, "start_dt": start_dt, "end_dt": end_dt}
        params["limit"] = settings.REPORT_LIST_LIMIT
        # Warm both paths up, then alternate them so load on the machine weighs on both alike.
        reports, _, _ = build(org, start, end)
        _check(reports, raw_sql(params))
        times, raw, queries = [], [], []
        for _ in range(ROUNDS):
            _, count, seconds = build(org, start, end)
            times.append(seconds)
            queries.append(count / len(ReportKind.values))
            began = time.perf_counter()
            raw_sql(params)
            raw.append(time.perf_counter() - began)
        # Memory apart: tracing allocations slows Python down, so it must not weigh on the timed builds.
        tracemalloc.start()
        build(org, start, end)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
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
            "peak_mib": peak / 2**20,
        }

    def show(label: str, m: dict[str, float]) -> None:
        print(
            f"  {label}: one org = {m['projects']} projects, {m['entries']:,} cost entries | build status+risk "
            f"{m['build'] * 1000:.0f} ms vs raw SQL {m['raw'] * 1000:.0f} ms = {m['build'] / m['raw']:.2f}× "
            f"({'PASS' if m['build'] / m['raw'] <= TARGET else 'FAIL'}, target ≤ {TARGET}×) | "
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
    results = {"500 projects": small, "same org, 10× cost entries": dense}
    if max_projects >= 5000:
        results["5,000 projects"] = large
    for m in results.values():
        m["ratio_to_raw_sql"] = round(m["build"] / m["raw"], 2)
    out = BASE_DIR / "bench-results"
    out.mkdir(exist_ok=True)
    (out / "reports.json").write_text(json.dumps({"results": results, "load_average": os.getloadavg()}, indent=2))


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
