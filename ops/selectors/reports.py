"""Report figures, aggregated in the database, and the report exports (Markdown, CSV).

Every figure is computed by a fixed set of queries whatever the number of projects, cost entries
and risks: grouped aggregates, correlated subqueries and window functions. Python only loops over
the grouped rows (at most one per project), never over cost entries.
"""

import calendar
import datetime as dt
import inspect
import io
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import (
    Case,
    Count,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    When,
    Window,
)
from django.db.models.functions import Coalesce, RowNumber
from django.utils import timezone

from ops.models import (
    AttentionReason,
    Budget,
    BudgetThresholdCrossing,
    Hosting,
    InfrastructureComponent,
    Provider,
    QualityMetric,
    Report,
    ReportKind,
    ReportSpan,
    Risk,
    RiskAssessment,
    RiskCategory,
    RiskSource,
    RiskStatus,
    Severity,
)
from ops.selectors.energy import energy_annotations
from ops.selectors.portfolio import (
    NO_BUDGET_FIELDS,
    CostFigures,
    attention_rank,
    attention_reasons,
    cost_figures_send,
    latest_metrics_ranked,
    money_field,
    report_week,
    review_overdue,
    status_stale,
    with_overdue_reviews,
)
from projects.gates import GATES, Gate, gates_annotate, gates_unmet
from projects.models import (
    Health,
    Industry,
    Organization,
    Project,
    Stage,
    StageTransition,
    StatusUpdate,
)
from tracker.db import (
    CompiledValues,
    InIds,
    compiled_send,
    instance_from_row,
    instance_from_values,
    pipeline,
    row_exists,
)
from tracker.exports import CsvWriter, markdown_text
from tracker.formatting import date, date_range, label, measure, money, number, percent

Step = Callable[[int, str], None]
CENT = Decimal("0.01")
MEASURE_PLACES = Decimal(1).scaleb(-12)  # EnergyRun's decimal places
TENTH = Decimal("0.1")
HEALTH_RANK = {Health.RED: 0, Health.AMBER: 1, Health.GREEN: 2}
SEVERITIES = [s.value for s in Severity]


def report_period(*, day: dt.date, span: str) -> tuple[dt.date, dt.date]:
    """Return the first and last day (inclusive) of the week (Monday–Sunday) or calendar month containing `day`."""
    if span == ReportSpan.MONTH:
        return day.replace(day=1), day.replace(day=calendar.monthrange(day.year, day.month)[1])
    return report_week(day)


def period_bounds(organization: Organization, start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """Return the period as aware datetimes [start, end) in the organization's timezone; `end` is inclusive."""
    tz = organization.tzinfo
    return (
        dt.datetime.combine(start, dt.time.min, tzinfo=tz),
        dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=tz),
    )


def measure_field(value: Decimal) -> str:
    """Return a measure (kWh, kg CO₂eq) as the report data carries it: a string with the runs' 12 decimal places."""
    return f"{Decimal(value).quantize(MEASURE_PLACES):f}"


def _noop(progress: int, label: str) -> None:
    """Ignore progress when nobody watches it."""


def _scoped_projects(organization_id: int, project_id: int | None, end_dt: dt.datetime) -> QuerySet[Project]:
    """Return the non-archived projects that existed by the end of the period (or just the project)."""
    projects = Project.objects.filter(organization_id=organization_id, archived=False, created_at__lt=end_dt)
    return projects.filter(pk=project_id) if project_id is not None else projects


# What the report reads of a project (the gates' `applies` included); `stage_since` reads `stage_entered_at` in SQL.
PROJECT_COLUMNS = [
    "name",
    "industry",
    "stage",
    "created_at",
    "data_classification",
    "ai_act_tier",
    "human_oversight_owner_id",
    "team__name",
]


def _project_rows(projects: QuerySet[Project], review_as_of: dt.date, end_dt: dt.datetime) -> QuerySet[Project]:
    """Annotate each project with its stage as of the end of the period, every registered gate and whether a
    risk review is overdue by `review_as_of`, the day after the period (one query).

    Every annotation is an index lookup per project (stage transitions by project and time, one
    probe per gate), so the query costs a few lookups per project whatever the history behind it.
    """
    before = StageTransition.objects.filter(project=OuterRef("pk"), at__lt=end_dt).order_by("-at", "-id")
    after = StageTransition.objects.filter(project=OuterRef("pk"), at__gte=end_dt).order_by("at", "id")
    return (
        with_overdue_reviews(gates_annotate(projects), as_of=review_as_of)
        .order_by("name", "pk")
        .only(*PROJECT_COLUMNS)
        .annotate(
            stage_asof=Coalesce(
                Subquery(before.values("to_stage")[:1]), Subquery(after.values("from_stage")[:1]), F("stage")
            ),
            stage_since=Coalesce(
                Subquery(before.values("at")[:1]),
                Case(When(row_exists(after), then=F("created_at")), default=F("stage_entered_at")),
            ),
        )
        .select_related("team")
    )


def _status_history(projects: QuerySet[Project], end: dt.date) -> QuerySet[StatusUpdate]:
    """Return the last four status updates per project by the end of the period, newest first (one window query).

    Each is (health, progress, date); the first is the project's status as of the end of the period.
    """
    return (
        StatusUpdate.objects.filter(InIds(F("project_id"), projects.values("pk")), date__lte=end)
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("project_id")],
                order_by=[F("date").desc(), F("created_at").desc(), F("id").desc()],
            )
        )
        .filter(rank__lte=4)
        .order_by("project_id", "rank")
        .values("project_id", "health", "progress", "date")
    )


def _status_statements(
    *,
    organization_id: int,
    period_start: dt.date,
    start_dt: dt.datetime,
    end_dt: dt.datetime,
    period_end: dt.date,
    review_as_of: dt.date,
    project_id: int | None = None,
) -> dict[str, QuerySet]:
    """Return the status report's statements (`.values()` querysets) of an organization's projects or one project."""
    projects = _scoped_projects(organization_id, project_id, end_dt)
    scoped = projects.values("pk")
    # Portfolio-wide risks (no project) count in the organization's totals, not in a project report.
    risk_scope = Q(project__in=scoped) if project_id is not None else Q(project__in=scoped) | Q(project=None)
    rows = _project_rows(projects, review_as_of, end_dt).annotate(**energy_annotations(start=start_dt, end=end_dt))
    return {
        "projects": rows.values("id", *PROJECT_COLUMNS, *rows.query.annotations),
        "history": _status_history(projects, period_end),
        "moves": StageTransition.objects.filter(project__in=scoped, at__gte=start_dt, at__lt=end_dt)
        .order_by("at", "id")
        .values("project_id", "from_stage", "to_stage", "at"),
        "risks": Risk.objects.filter(
            risk_scope, organization_id=organization_id, status__in=RiskStatus.active(), created_at__lt=end_dt
        )
        .order_by()
        .values("project_id", "severity")
        .annotate(n=Count("pk")),
        "metrics": latest_metrics_ranked(projects=projects, as_of=period_end).values(*METRIC_FIELDS),
        "crossings": _budget_crossings(organization_id, project_id, period_start, period_end),
        # The distinct (project, provider, hosting) rows: projects are counted per provider and per hosting.
        "components": InfrastructureComponent.objects.filter(project__in=scoped)
        .order_by()
        .values("project_id", "provider", "hosting")
        .distinct(),
    }


def _review_as_of(period_end: dt.date) -> dt.date:
    """Both reports read an overdue review (portfolio.review_overdue) as of the day after their period."""
    return period_end + dt.timedelta(days=1)


# The fields of a metric the report reads (its label and breach).
METRIC_FIELDS = ("id", "project_id", "date", "metric", "name", "value", "threshold", "higher_is_better")
# What the reports' statements are compiled with (CompiledValues): no real id or period is like these.
PROBES = {
    "organization_id": -7_301_017,
    "project_id": -7_301_019,
    "start_dt": dt.datetime(1901, 3, 4, 5, 6, 7, tzinfo=dt.UTC),
    "end_dt": dt.datetime(1901, 4, 5, 6, 7, 8, tzinfo=dt.UTC),
    "period_start": dt.date(1901, 6, 7),
    "period_end": dt.date(1901, 5, 6),
    "review_as_of": dt.date(1901, 8, 9),
}
_compiled: dict[tuple, tuple[tuple[Gate, ...], dict[str, CompiledValues]]] = {}


def _compiled_statements(statements: Callable[..., dict[str, QuerySet]], *, scoped: bool) -> dict[str, CompiledValues]:
    """Return a report's statements compiled once per process: per scope, list limit and registered gates.

    A gate registered later (a test's, another app's) compiles them again; so does a gate re-registered
    under the same key (the objects are compared, not their keys).
    """
    gates = tuple(GATES.values())
    key = (statements.__name__, scoped, settings.REPORT_LIST_LIMIT, tuple(GATES))
    cached = _compiled.get(key)
    if cached is None or len(cached[0]) != len(gates) or any(a is not b for a, b in zip(cached[0], gates, strict=True)):
        wanted = inspect.signature(statements).parameters
        probes = {name: v for name, v in PROBES.items() if name in wanted and (scoped or name != "project_id")}
        compiled = {name: CompiledValues(queryset, probes) for name, queryset in statements(**probes).items()}
        cached = _compiled[key] = (gates, compiled)
    return cached[1]


def _trend_word(healths: list[str]) -> str:
    if len(healths) < 2:
        return "new" if healths else "none"
    delta = HEALTH_RANK[healths[-1]] - HEALTH_RANK[healths[0]]
    return "improving" if delta > 0 else "worsening" if delta < 0 else "steady"


def _metric_row(m: QualityMetric) -> dict[str, Any]:
    return {
        "metric": m.metric,
        "label": m.label,
        "value": m.value,
        "threshold": m.threshold,
        "higher_is_better": m.higher_is_better,
        "breached": m.breached,
        "date": m.date.isoformat(),
    }


def _severity_counts(rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(SEVERITIES, 0)
    for row in rows:
        counts[row["severity"]] += row["n"]
    return counts


def _section_without_costs(
    p: Project,
    updates: list[tuple[str, int, dt.date]],
    moves: dict[int, list[dict[str, str]]],
    metrics: dict[int, list[QualityMetric]],
    risks_by_project: dict[int | None, list[dict[str, Any]]],
    end_dt: dt.datetime,
    period_end: dt.date,
    tz: Any,
) -> dict[str, Any]:
    """Return a project's section of the status report but for its cost figures (`status_report_data` adds them)."""
    health, progress, last_status = updates[0] if updates else ("", None, None)
    healths = [update[0] for update in reversed(updates)]
    created = timezone.localdate(p.created_at, tz)
    return {
        "id": p.pk,
        "name": p.name,
        "team": p.team__name or "",
        "industry": p.industry,
        "stage": p.stage_asof,
        "days_in_stage": max((end_dt - p.stage_since).days, 0),
        "stage_moves": moves.get(p.pk, []),
        "health": health,
        "health_trend": healths,
        "health_direction": _trend_word(healths),
        "progress": progress,
        "last_status_date": last_status.isoformat() if last_status else None,
        "stale": status_stale(last_status_date=last_status, created_on=created, as_of=period_end),
        "metrics": [_metric_row(m) for m in metrics.get(p.pk, [])],
        "open_risks": _severity_counts(risks_by_project.get(p.pk, [])),
        # The gates of the stage after the one it was in at the period's end (as the row's `stage` says).
        "unmet_gates": gates_unmet(row=p, stage=p.stage_asof),
        # CodeCarbon runs recorded in the period: measured, never costs.
        "energy": {
            "runs": p.energy_run_count,
            "energy_kwh": measure_field(p.energy_kwh),
            "emissions_kg": measure_field(p.emissions_kg),
        },
    }


def status_report_data(
    *,
    organization: Organization,
    period_start: dt.date,
    period_end: dt.date,
    project: Project | None = None,
    on_step: Step = _noop,
) -> dict[str, Any]:
    """Compute the status summary of a period: a section per project and portfolio totals."""
    start_dt, end_dt = period_bounds(organization, period_start, period_end)
    statements = _compiled_statements(_status_statements, scoped=project is not None)
    params = {
        "organization_id": organization.pk,
        "period_start": period_start,
        "start_dt": start_dt,
        "end_dt": end_dt,
        "period_end": period_end,
        "review_as_of": _review_as_of(period_end),
    }
    if project is not None:
        params["project_id"] = project.pk
    projects = _scoped_projects(organization.pk, params.get("project_id"), end_dt)
    # Each step commits an UPDATE of the report row: a few, each before the queries that take the time.
    on_step(10, "Projects, status history, metrics, risks and infrastructure")
    with pipeline() as sync:
        project_rows = statements["projects"].send(**params)
        batch = compiled_send({name: statements[name] for name in STATUS_BATCH}, **params)
        on_step(60, "Budgets and costs")  # written as the statements above end
        sync()
        # The rules read as of the period's last day: budget status, spend to date, metrics, stale status. The
        # costs' statements take the longest: they run while Python makes the sections of the rows above.
        cost_rows = cost_figures_send(projects=projects, as_of=period_end, period_start=period_start)
        rows = [instance_from_row(Project, values) for values in project_rows()]
        read = batch()
        tz = organization.tzinfo
        history: dict[int, list[tuple[str, int, dt.date]]] = defaultdict(list)
        for update in read["history"]:
            history[update["project_id"]].append((update["health"], update["progress"], update["date"]))
        moves: dict[int, list[dict[str, str]]] = defaultdict(list)
        for move in read["moves"]:
            moves[move["project_id"]].append(
                {"from": move["from_stage"], "to": move["to_stage"], "at": move["at"].astimezone(tz).isoformat()}
            )
        metrics: dict[int, list[QualityMetric]] = defaultdict(list)
        for values in read["metrics"]:
            metric = instance_from_values(QualityMetric, values)
            metrics[metric.project_id].append(metric)
        risk_rows = read["risks"]
        risks_by_project: dict[int | None, list[dict[str, Any]]] = defaultdict(list)
        for row in risk_rows:
            risks_by_project[row["project_id"]].append(row)
        sections = [
            _section_without_costs(p, history.get(p.pk, []), moves, metrics, risks_by_project, end_dt, period_end, tz)
            for p in rows
        ]
        costs = cost_rows()
    components = {(c["project_id"], c["provider"], c["hosting"]) for c in read["components"]}
    by_provider = Counter(provider for _, provider in {(pk, provider) for pk, provider, _ in components})
    by_hosting = Counter(hosting for _, hosting in {(pk, hosting) for pk, _, hosting in components})

    attention = []
    for p, section in zip(rows, sections, strict=True):
        pk = p.pk
        figures = costs.get(pk) or CostFigures()
        spend, period, project_budgets = figures.spend, figures.period, figures.budgets
        budget = project_budgets.overall
        tokens = {k: getattr(period, k) for k in ("input_tokens", "cached_input_tokens", "output_tokens")}
        section |= {
            "spend_period": money_field(period.spend),
            "spend_to_date": money_field(spend.amount),
            **(budget.as_fields() if budget else NO_BUDGET_FIELDS),
            "budget_categories": [{"category": b.category, **b.as_fields()} for b in project_budgets.categories],
            "tokens": tokens | {"total": sum(tokens.values())},
            "unpriced_entries_period": period.unpriced_entries,
            "unpriced_entries_to_date": spend.unpriced_entries,
            "cost_incomplete": spend.incomplete,
            "spend_period_incomplete": period.incomplete,
        }
        health = section["health"]
        reasons = attention_reasons(
            health=health,
            over_budget=section["over_budget"],
            stale=section["stale"],
            overdue_reviews=p.overdue_reviews,
            unmet_gates=section["unmet_gates"],
        )
        if reasons and p.stage_asof != Stage.RETIRED:
            attention.append(
                (attention_rank(health=health, reasons=reasons), {"id": pk, "name": p.name, "reasons": reasons})
            )
    attention = [item for _, item in sorted(attention, key=lambda ranked: ranked[0])]

    def total(key: str) -> Decimal:
        return sum((Decimal(s[key]) for s in sections if s[key] is not None), Decimal(0))

    totals = {
        "projects": len(sections),
        "by_stage": dict(Counter(s["stage"] for s in sections)),
        "by_health": dict(Counter(s["health"] or "none" for s in sections)),
        "by_industry": dict(Counter(s["industry"] for s in sections)),
        "by_provider": dict(by_provider),
        "by_hosting": dict(by_hosting),
        "spend_period": money_field(total("spend_period")),
        "spend_to_date": money_field(total("spend_to_date")),
        "budget_amount": money_field(total("budget_amount")),
        "budget_spend": money_field(total("budget_spend")),
        "tokens": sum(s["tokens"]["total"] for s in sections),
        "unpriced_entries_period": sum(s["unpriced_entries_period"] for s in sections),
        "cost_incomplete": any(s["cost_incomplete"] for s in sections),
        "spend_period_incomplete": any(s["spend_period_incomplete"] for s in sections),
        "open_risks": _severity_counts(risk_rows),
        "needs_attention": len(attention),
        "energy_runs": sum(s["energy"]["runs"] for s in sections),
        "energy_kwh": measure_field(sum((Decimal(s["energy"]["energy_kwh"]) for s in sections), Decimal(0))),
        "emissions_kg": measure_field(sum((Decimal(s["energy"]["emissions_kg"]) for s in sections), Decimal(0))),
    }
    crossings = [_crossing_row(values) for values in read["crossings"]]
    totals["budget_thresholds_crossed"] = len(crossings)
    return {
        "kind": ReportKind.STATUS.value,
        "organization": {"id": organization.pk, "name": organization.name, "currency": organization.currency},
        "timezone": organization.timezone,
        "period": {"start": period_start.isoformat(), "end": period_end.isoformat()},
        "totals": totals,
        "needs_attention": attention,
        "projects": sections,
        "budget_thresholds_crossed": crossings,
    }


def _budget_crossings(
    organization_id: int, project_id: int | None, start: dt.date, end: dt.date
) -> QuerySet[BudgetThresholdCrossing]:
    """The budget thresholds crossed in the period (ops/services/budgets.py): project, team and cost-centre
    budgets of the organization (a project's report: its own), oldest first. One query."""
    crossings = BudgetThresholdCrossing.objects.filter(crossed_on__gte=start, crossed_on__lte=end)
    if project_id is not None:
        crossings = crossings.filter(budget__project_id=project_id)
    else:
        crossings = crossings.filter(
            Q(budget__project__organization_id=organization_id)
            | Q(budget__team__organization_id=organization_id)
            | Q(budget__cost_centre__organization_id=organization_id)
        )
    return crossings.order_by("crossed_on", "pk").values(*CROSSING_FIELDS, *CROSSING_OWNER_FIELDS)


CROSSING_FIELDS = ("budget_id", "threshold_pct", "crossed_on", "period_start", "period_end", "amount", "spend")
# What the budget's owner is named by (its `__str__`): the project's, the team's or the cost centre's fields.
CROSSING_OWNERS = {"project": ("id", "name"), "team": ("id", "name"), "cost_centre": ("id", "code", "name")}
CROSSING_OWNER_FIELDS = tuple(f"budget__{owner}__{name}" for owner, names in CROSSING_OWNERS.items() for name in names)


def _crossing_owner(values: dict[str, Any]) -> str:
    """Return the name of a crossed budget's owner, rebuilt from its statement's values."""
    owners = {name.removeprefix("budget__"): values[name] for name in CROSSING_OWNER_FIELDS}
    return str(instance_from_row(Budget, owners, CROSSING_OWNERS).owner)


def _crossing_row(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "budget": values["budget_id"],
        "owner": _crossing_owner(values),
        "threshold_pct": f"{values['threshold_pct'].normalize():f}",
        "crossed_on": values["crossed_on"].isoformat(),
        "period_start": values["period_start"].isoformat(),
        "period_end": values["period_end"].isoformat(),
        "amount": money_field(values["amount"]),
        "spend": money_field(values["spend"]),
    }


# A listed risk's columns, read as values (a report stores a few fields, so no model is built or joined row
# compiled whole): the risk's own, its project's name and its owner's username.
RISK_FIELDS = (
    "id",
    "title",
    "project_id",
    "project__name",
    "category",
    "likelihood",
    "impact",
    "score",
    "severity",
    "status",
    "owner__username",
    "next_review_date",
    "signal_rule",
    "created_at",
)


def _risk_row(risk: dict[str, Any], tz: Any) -> dict[str, Any]:
    """Return a report's row of a risk read with `RISK_FIELDS`."""
    return {
        "id": risk["id"],
        "title": risk["title"],
        "project_id": risk["project_id"],
        "project": risk["project__name"] or "",
        "category": risk["category"],
        "likelihood": risk["likelihood"],
        "impact": risk["impact"],
        "score": risk["score"],
        "severity": risk["severity"],
        "status": risk["status"],
        "owner": risk["owner__username"] or "",
        "next_review_date": risk["next_review_date"].isoformat() if risk["next_review_date"] else None,
        "signal_rule": risk["signal_rule"],
        "created_at": risk["created_at"].astimezone(tz).isoformat(),
    }


def _risk_list(queryset: QuerySet[Risk], *extra: str) -> QuerySet[Risk]:
    """Return the statement of a list: its first REPORT_LIST_LIMIT rows, each with the exact count (a window count).

    `extra` names annotations of `queryset` each row also carries.
    """
    return queryset.annotate(total=Window(Count("pk"))).values(*RISK_FIELDS, *extra, "total")[
        : settings.REPORT_LIST_LIMIT
    ]


def _risk_list_data(rows: list[dict[str, Any]], tz: Any, *extra: str) -> dict[str, Any]:
    items = [_risk_row(risk, tz) | {name: risk[name] for name in extra} for risk in rows]
    return {"count": rows[0]["total"] if rows else 0, "items": items}


RISK_LISTS = ("new", "closed", "accepted", "overdue_reviews", "signals_raised", "signals_cleared")
# The statements each report sends at once (`compiled_send`), a batch per progress step.
STATUS_BATCH = ("history", "moves", "metrics", "risks", "components", "crossings")
RISK_FIRST_BATCH = ("cells", "by_project", "top_risks", "new", "escalated")
ESCALATION = ("score_before", "score_after")


def _risk_statements(
    *,
    organization_id: int,
    start_dt: dt.datetime,
    end_dt: dt.datetime,
    review_as_of: dt.date,
    project_id: int | None = None,
) -> dict[str, QuerySet[Risk]]:
    """Return the risk report's statements (`.values()` querysets) of an organization's risks or one project's."""
    risks = Risk.objects.filter(organization_id=organization_id)
    if project_id is not None:
        risks = risks.filter(project_id=project_id)
    active = risks.filter(status__in=RiskStatus.active(), created_at__lt=end_dt)
    in_period = {"created_at__gte": start_dt, "created_at__lt": end_dt}
    # Only risks reassessed in the period can have escalated: filtering on them first (a semi-join on
    # the assessments of the period) keeps the three score lookups to those few risks.
    reassessed = RiskAssessment.objects.filter(
        risk__in=risks.values("pk"), assessed_at__gte=start_dt, assessed_at__lt=end_dt
    ).values("risk_id")
    assessments = RiskAssessment.objects.filter(risk=OuterRef("pk"))
    score_before = Coalesce(
        Subquery(assessments.filter(assessed_at__lt=start_dt).order_by("-assessed_at", "-id").values("score")[:1]),
        Subquery(
            assessments.filter(assessed_at__gte=start_dt, assessed_at__lt=end_dt)
            .order_by("assessed_at", "id")
            .values("score")[:1]
        ),
    )
    last_by_end = assessments.filter(assessed_at__lt=end_dt).order_by("-assessed_at", "-id")
    score_after = Subquery(last_by_end.values("score")[:1])
    escalated = (
        risks.filter(pk__in=reassessed)
        .annotate(score_before=score_before, score_after=score_after)
        .filter(score_after__gt=F("score_before"))
        .order_by("-score_after", "pk")
    )
    closed = {"status": RiskStatus.CLOSED, "closed_at__gte": start_dt, "closed_at__lt": end_dt}
    signals = risks.filter(source=RiskSource.SIGNAL)
    return {
        # One grouped query feeds the heat map, the severity bands and the categories (at most 25 × categories rows).
        "cells": active.order_by("category").values("likelihood", "impact", "category").annotate(n=Count("pk")),
        "by_project": active.order_by()
        .values("project_id", "project__name")
        .annotate(
            open=Count("pk"),
            max_score=Max("score"),
            high_or_critical=Count("pk", filter=Q(severity__in=[Severity.HIGH, Severity.CRITICAL])),
        )
        .order_by("-max_score", "project__name"),
        "top_risks": active.order_by("-score", "-impact", "pk").values(*RISK_FIELDS)[:10],
        "new": _risk_list(risks.filter(**in_period).order_by("-score", "pk")),
        "escalated": _risk_list(escalated, *ESCALATION),
        "closed": _risk_list(risks.filter(**closed).order_by("pk")),
        "accepted": _risk_list(
            risks.filter(status=RiskStatus.ACCEPTED, accepted_at__gte=start_dt, accepted_at__lt=end_dt).order_by("pk")
        ),
        "overdue_reviews": _risk_list(active.filter(review_overdue(review_as_of)).order_by("next_review_date", "pk")),
        "signals_raised": _risk_list(signals.filter(**in_period).order_by("signal_rule", "pk")),
        "signals_cleared": _risk_list(signals.filter(**closed).order_by("signal_rule", "pk")),
    }


def risk_report_data(
    *,
    organization: Organization,
    period_start: dt.date,
    period_end: dt.date,
    project: Project | None = None,
    on_step: Step = _noop,
) -> dict[str, Any]:
    """Compute the risk report of a period: heat map, top risks, changes in the period, signals."""
    tz = organization.tzinfo
    start_dt, end_dt = period_bounds(organization, period_start, period_end)
    statements = _compiled_statements(_risk_statements, scoped=project is not None)
    params = {
        "organization_id": organization.pk,
        "start_dt": start_dt,
        "end_dt": end_dt,
        "review_as_of": _review_as_of(period_end),
    }
    if project is not None:
        params["project_id"] = project.pk

    on_step(10, "Heat map, categories, projects and top risks")
    with pipeline() as sync:
        first = compiled_send({name: statements[name] for name in RISK_FIRST_BATCH}, **params)
        on_step(50, "Changes in the period, overdue reviews and signals")  # written as the statements above end
        sync()
        # The lists' statements run while Python reads the first step's rows.
        then = compiled_send({name: statements[name] for name in RISK_LISTS if name != "new"}, **params)
        matrix = [[0] * 5 for _ in range(5)]
        by_severity = dict.fromkeys(SEVERITIES, 0)
        by_category: dict[str, int] = Counter()
        read = first()
        for cell in read["cells"]:
            likelihood, impact, n = cell["likelihood"], cell["impact"], cell["n"]
            matrix[likelihood - 1][impact - 1] += n
            by_severity[Severity.for_score(likelihood * impact).value] += n
            by_category[cell["category"]] += n
        by_project = [
            {
                "project_id": row["project_id"],
                "project": row["project__name"] or "",
                "open": row["open"],
                "max_score": row["max_score"],
                "high_or_critical": row["high_or_critical"],
            }
            for row in read["by_project"]
        ]
        top = [_risk_row(r, tz) for r in read["top_risks"]]
        lists = {
            "new": _risk_list_data(read["new"], tz),
            "escalated": _risk_list_data(read["escalated"], tz, *ESCALATION),
        }
        read = then()
        lists |= {name: _risk_list_data(rows, tz) for name, rows in read.items()}
    return {
        "kind": ReportKind.RISK.value,
        "organization": {"id": organization.pk, "name": organization.name, "currency": organization.currency},
        "timezone": organization.timezone,
        "period": {"start": period_start.isoformat(), "end": period_end.isoformat()},
        "totals": {"open": sum(by_severity.values()), "by_severity": by_severity},
        "matrix": matrix,
        "by_category": dict(by_category),
        "by_project": by_project,
        "top_risks": top,
        **lists,
    }


BUILDERS = {ReportKind.STATUS: status_report_data, ReportKind.RISK: risk_report_data}


def _counts(counts: dict[str, int], choices: Any, organization: Organization) -> str:
    """Return {code: n} as "3 critical, 1 high" with the labels of the codes."""
    return ", ".join(f"{number(n, organization)} {label(choices, code).lower()}" for code, n in counts.items())


def _incomplete(flag: bool) -> str:
    return " (incomplete: unpriced usage)" if flag else ""


def report_headline(report: Report) -> list[tuple[str, str]]:
    """Return the few figures a report leads with (page, Markdown, digest), as (label, formatted value) pairs."""
    data, totals, organization = report.data, report.data.get("totals", {}), report.organization
    if report.kind == ReportKind.STATUS:
        # Reports stored before the period had its own flag carry only the to-date one.
        period_incomplete = totals.get("spend_period_incomplete", totals["cost_incomplete"])
        return [
            ("Projects", number(totals["projects"], organization)),
            ("Spend in the period", money(totals["spend_period"], organization) + _incomplete(period_incomplete)),
            ("Spend to date", money(totals["spend_to_date"], organization) + _incomplete(totals["cost_incomplete"])),
            ("Needs attention", number(totals["needs_attention"], organization)),
            ("Open risks", _counts(totals["open_risks"], Severity, organization)),
            # Reports stored before budgets had thresholds have no such total.
            ("Budget thresholds crossed", number(totals.get("budget_thresholds_crossed", 0), organization)),
        ]
    return [
        ("Open risks", number(totals["open"], organization)),
        ("By severity", _counts(totals["by_severity"], Severity, organization)),
        ("New", number(data["new"]["count"], organization)),
        ("Escalated", number(data["escalated"]["count"], organization)),
        ("Overdue reviews", number(data["overdue_reviews"]["count"], organization)),
        ("Signals raised / cleared", f"{data['signals_raised']['count']} / {data['signals_cleared']['count']}"),
    ]


def _md_table(header: list[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(markdown_text(v) for v in row) + " |" for row in rows]
    return lines


RISK_LIST_TITLES = {
    "new": "New risks",
    "escalated": "Escalated (score went up)",
    "closed": "Closed",
    "accepted": "Accepted",
    "overdue_reviews": "Overdue reviews",
    "signals_raised": "Signals raised",
    "signals_cleared": "Signals cleared",
}
STATUS_COLUMNS = [
    "id",
    "name",
    "stage",
    "days_in_stage",
    "health",
    "health_direction",
    "progress",
    "spend_period",
    "spend_to_date",
    *NO_BUDGET_FIELDS,  # the budget status under its shared names, in their order
    "tokens_total",
    "cost_incomplete",
    "open_risks_critical",
    "open_risks_high",
    "open_risks_medium",
    "open_risks_low",
    "breached_metrics",
]
RISK_COLUMNS = ["id", "title", "project", "category", "likelihood", "impact", "score", "severity", "status", "owner"]


# Reports stored before the budget status had one set of names: old name → new name.
LEGACY_SECTION_KEYS = {"budget": "budget_amount", "forecast_spend": "budget_forecast"}


def status_section(section: dict[str, Any]) -> dict[str, Any]:
    """Return a stored status report's project section under the current field names.

    Sections stored before the shared budget-status names had `budget`, `budget_period` and
    `forecast_spend`, and no over-budget flags: map them, and derive `over_budget` from the figures.
    """
    if "budget_amount" in section:
        return section
    upgraded = {LEGACY_SECTION_KEYS.get(key, key): value for key, value in section.items()}
    start, end = upgraded.pop("budget_period", None) or (None, None)
    amount, spent = upgraded.get("budget_amount"), upgraded.get("budget_spend")
    upgraded.pop("forecast_pct", None)
    return upgraded | {
        "budget_period_start": start,
        "budget_period_end": end,
        "over_budget": amount is not None and Decimal(spent) > Decimal(amount),
        "over_tolerance": None,
    }


def status_sections(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the project sections of a stored status report, each under the current field names."""
    return [status_section(section) for section in data.get("projects", [])]


def _status_csv_row(section: dict[str, Any]) -> list[Any]:
    flat = section | {
        "tokens_total": section["tokens"]["total"],
        "breached_metrics": "; ".join(m["label"] for m in section["metrics"] if m["breached"]),
        **{f"open_risks_{sev}": n for sev, n in section["open_risks"].items()},
    }
    return [flat[column] for column in STATUS_COLUMNS]


# The Markdown tables are for people: labels and formatted figures, as on the report's page.
MD_STATUS_COLUMNS = [
    "Project",
    "Stage",
    "Health",
    "Spend in period",
    "Spend to date",
    "Budget used",
    "Forecast at period end",
    "Tokens",
]
MD_RISK_COLUMNS = [
    "Risk",
    "Project",
    "Category",
    "Likelihood × impact",
    "Score",
    "Severity",
    "Status",
    "Owner",
    "Review",
]
# The portfolio counts of the status report and the choices their codes come from.
PORTFOLIO_COUNTS = (
    ("by_stage", "Stage", Stage),
    ("by_health", "Health", [*Health.choices, ("none", "No status yet")]),
    ("by_industry", "Industry", Industry),
    ("by_provider", "Provider", Provider),
    ("by_hosting", "Hosting", Hosting),
)


def _md_status_row(section: dict[str, Any], organization: Organization) -> list[str]:
    return [
        section["name"],
        label(Stage, section["stage"]),
        label(Health, section["health"]),
        money(section["spend_period"], organization)
        + _incomplete(section.get("spend_period_incomplete", section["cost_incomplete"])),
        money(section["spend_to_date"], organization) + _incomplete(section["cost_incomplete"]),
        percent(section["budget_used_pct"], organization),
        money(section["budget_forecast"], organization),
        number(section["tokens"]["total"], organization),
    ]


def _md_risk_row(risk: dict[str, Any], organization: Organization) -> list[str]:
    return [
        risk["title"],
        risk["project"] or "Portfolio",
        label(RiskCategory, risk["category"]),
        f"{risk['likelihood']} × {risk['impact']}",
        risk["score"],
        label(Severity, risk["severity"]),
        label(RiskStatus, risk["status"]),
        risk["owner"] or "—",
        date(risk["next_review_date"], organization),
    ]


def report_markdown(report: Report) -> str:
    """Render a ready report as Markdown, for people: labels, the organization's money and date formats."""
    data, organization = report.data, report.organization
    period = date_range(report.period_start, report.period_end, organization)
    lines = [f"# {report.get_kind_display()}: {markdown_text(organization.name)}, {period}", ""]
    if report.project_id:
        lines += [f"Project: {markdown_text(report.project.name)}", ""]
    lines += [f"- **{name}**: {markdown_text(value)}" for name, value in report_headline(report)]
    if report.kind == ReportKind.STATUS:
        totals = data["totals"]
        lines += ["", "## Portfolio", ""]
        for key, title, choices in PORTFOLIO_COUNTS:
            counts = ", ".join(f"{label(choices, code)}: {n}" for code, n in totals[key].items()) or "none"
            lines.append(f"- {title}: {markdown_text(counts)}")
        if totals.get("energy_runs"):
            kwh, kg = (measure(totals[key], organization) for key in ("energy_kwh", "emissions_kg"))
            lines.append(f"- Energy: {kwh} kWh, {kg} kg CO₂eq ({totals['energy_runs']} CodeCarbon runs)")
        lines += ["", "## Needs attention", ""]
        lines += [
            f"- {markdown_text(a['name'])}: {', '.join(label(AttentionReason, r) for r in a['reasons'])}"
            for a in data["needs_attention"]
        ] or ["Nothing."]
        lines += ["", "## Projects", ""]
        lines += _md_table(MD_STATUS_COLUMNS, (_md_status_row(s, organization) for s in status_sections(data)))
    else:
        lines += ["", "## Heat map (likelihood × impact)", ""]
        lines += _md_table(
            ["likelihood \\ impact", "1", "2", "3", "4", "5"],
            ([5 - i, *row] for i, row in enumerate(reversed(data["matrix"]))),
        )
        lines += ["", "## Top risks", ""]
        lines += _md_table(MD_RISK_COLUMNS, (_md_risk_row(r, organization) for r in data["top_risks"]))
        for key, heading in RISK_LIST_TITLES.items():
            section = data[key]
            lines += ["", f"## {heading} ({section['count']})", ""]
            if section["items"]:
                lines += _md_table(MD_RISK_COLUMNS, (_md_risk_row(r, organization) for r in section["items"]))
        lines += ["", "## By category", ""]
        lines += [f"- {label(RiskCategory, c)}: {n}" for c, n in data["by_category"].items()] or ["No open risks."]
    return "\n".join(lines) + "\n"


def report_csv(report: Report) -> str:
    """Render a ready report as CSV: one row per project (status) or per listed risk (risk).

    CSV is a machine format: codes (not labels), raw decimals, ISO dates, and the currency in a column.
    """
    out = io.StringIO()
    writer = CsvWriter(out)
    data = report.data
    currency = data["organization"]["currency"]
    if report.kind == ReportKind.STATUS:
        writer.writerow([*STATUS_COLUMNS, "currency"])
        writer.writerows([*_status_csv_row(s), currency] for s in status_sections(data))
    else:
        writer.writerow(["section", *RISK_COLUMNS])
        for key in ["top_risks", *RISK_LIST_TITLES]:
            items = data[key] if key == "top_risks" else data[key]["items"]
            writer.writerows([key, *(r[c] for c in RISK_COLUMNS)] for r in items)
    return out.getvalue()
