"""Risk signals: rules over data already in the system that raise, update and close risks.

Each rule yields findings keyed `rule:subject` (e.g. `budget_overrun:budget:42`). A finding with
no active risk raises one (source `signal`); an active risk whose finding is still there is
updated; an active signal risk without a finding is closed. Thresholds live in settings
(`RISK_SIGNAL_*`, see docs/reports.md). Evaluations of one organization are serialised by a
row lock on it, and the partial unique constraint `risk_one_active_per_signal_key` guarantees
one active risk per key whatever happens. Each risk raised, updated or closed gets its own
history event (a run touches a handful), written in the same transaction.
"""

import datetime as dt
import statistics
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import (
    Count,
    Exists,
    F,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from ops.models import (
    CostEntry,
    Environment,
    InfrastructureComponent,
    MetricKind,
    ModelPrice,
    Provider,
    Risk,
    RiskAssessment,
    RiskCategory,
    RiskSource,
    RiskStatus,
    Severity,
)
from ops.selectors.billing import billed_vs_estimated, month_start
from ops.selectors.portfolio import (
    budget_statuses,
    latest_metrics_by_project,
    review_overdue,
    spend_by_provider,
    status_stale,
    status_stale_q,
)
from projects import audit
from projects.models import DataClassification, Organization, Project, Stage
from projects.services import organization_today
from webhooks.models import EventType
from webhooks.outbox import emit_many

METRIC_CATEGORY = {
    MetricKind.TOXICITY_RATE: RiskCategory.ETHICS_BIAS,
    MetricKind.LATENCY_P95_MS: RiskCategory.OPERATIONAL,
}


@dataclass(frozen=True)
class Finding:
    """One condition that holds today: the risk a signal wants to exist."""

    rule: str
    key: str
    project_id: int | None
    title: str
    description: str
    category: str
    likelihood: int
    impact: int


@dataclass
class SignalOutcome:
    raised: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)


def _projects(organization: Organization) -> QuerySet[Project]:
    """Return the projects signals watch: live ones (not archived, not retired)."""
    return Project.objects.filter(organization=organization, archived=False).exclude(stage=Stage.RETIRED)


def _budget_findings(organization: Organization, today: dt.date) -> Iterator[Finding]:
    """budget_overrun / budget_forecast_overrun: each current budget's status (`portfolio.budget_statuses`)."""
    projects = _projects(organization)
    names = dict(projects.values_list("pk", "name"))
    min_days = settings.RISK_SIGNAL_FORECAST_MIN_DAYS
    statuses = budget_statuses(projects=projects, as_of=today)
    for project_id, budgets in sorted(statuses.items()):
        for b in [budgets.overall, *budgets.categories] if budgets.overall else budgets.categories:
            scope = f"{b.category_label.lower()} budget" if b.category else "budget"
            used = f"{b.used_pct:.0f}%" if b.used_pct is not None else "all"
            if b.over_tolerance:
                yield Finding(
                    "budget_overrun",
                    f"budget_overrun:budget:{b.budget_id}",
                    project_id,
                    f"{names[project_id]}: spend is over its {scope}",
                    f"Spent {b.spend:.2f} {organization.currency} of {b.amount} ({used}) in "
                    f"{b.period_start} – {b.period_end}; tolerance {b.tolerance_pct}%.",
                    RiskCategory.COST,
                    5,
                    4 if b.spend > 2 * b.limit else 3,
                )
            elif b.days_elapsed >= min_days and b.forecast > b.limit:
                yield Finding(
                    "budget_forecast_overrun",
                    f"budget_forecast_overrun:budget:{b.budget_id}",
                    project_id,
                    f"{names[project_id]}: spend is forecast to overrun its {scope}",
                    f"At the trend of the last {len(b.daily)} days ({b.spend:.2f} {organization.currency} spent in "
                    f"{b.days_elapsed} days), spend reaches {b.forecast:.2f} (range {b.outlook.low:.2f} – "
                    f"{b.outlook.high:.2f}) by {b.period_end}, over {b.amount} + {b.tolerance_pct}% tolerance.",
                    RiskCategory.COST,
                    3,
                    3,
                )


def _metric_findings(organization: Organization, today: dt.date) -> Iterator[Finding]:
    """metric_breach: the latest value of a metric (`portfolio.latest_metrics`) is past its threshold."""
    projects = _projects(organization)
    names = dict(projects.values_list("pk", "name"))
    for project_id, metrics in sorted(latest_metrics_by_project(projects=projects, as_of=today).items()):
        for m in metrics:
            if not m.breached:
                continue
            side = "below" if m.higher_is_better else "above"
            yield Finding(
                "metric_breach",
                f"metric_breach:project:{project_id}:{m.name or m.metric}"[:200],
                project_id,
                f"{names[project_id]}: {m.label} {side} threshold",
                f"{m.label} was {m.value:g} on {m.date}, {side} the threshold {m.threshold:g}.",
                METRIC_CATEGORY.get(m.metric, RiskCategory.RELIABILITY),
                4,
                4 if m.metric == MetricKind.HALLUCINATION_RATE else 3,
            )


def _project_findings(organization: Organization, today: dt.date) -> Iterator[Finding]:
    """stale_status, stage_stuck and privacy_unassessed: conditions on the project row itself."""
    stale_days, stuck_days = settings.RISK_SIGNAL_STALE_STATUS_DAYS, settings.RISK_SIGNAL_STAGE_MAX_DAYS
    stuck_before = timezone.now() - dt.timedelta(days=stuck_days)
    manual_privacy = RiskAssessment.objects.filter(
        risk__project=OuterRef("pk"), risk__category=RiskCategory.DATA_PRIVACY, risk__source=RiskSource.MANUAL
    )
    projects = (
        _projects(organization)
        .annotate(privacy_assessed=Exists(manual_privacy))
        .filter(
            status_stale_q(today)
            | Q(stage_entered_at__lt=stuck_before) & ~Q(stage=Stage.PRODUCTION)
            | Q(stage=Stage.PRODUCTION, data_classification__in=DataClassification.personal())
        )
        .order_by("pk")
    )
    for p in projects:
        created = timezone.localdate(p.created_at, organization.tzinfo)
        if status_stale(last_status_date=p.last_status_date, created_on=created, as_of=today):
            since = f"since {p.last_status_date}" if p.last_status_date else "ever"
            yield Finding(
                "stale_status",
                f"stale_status:project:{p.pk}",
                p.pk,
                f"{p.name}: no status update for over {stale_days} days",
                f"No status update {since}; the threshold is {stale_days} days.",
                RiskCategory.OPERATIONAL,
                3,
                2,
            )
        if p.stage != Stage.PRODUCTION and p.stage_entered_at < stuck_before:
            days = (timezone.now() - p.stage_entered_at).days
            yield Finding(
                "stage_stuck",
                f"stage_stuck:project:{p.pk}",
                p.pk,
                f"{p.name}: stuck in {p.get_stage_display()}",
                f"In {p.get_stage_display()} for {days} days; the threshold is {stuck_days} days.",
                RiskCategory.OPERATIONAL,
                3,
                2,
            )
        if (
            p.stage == Stage.PRODUCTION
            and p.data_classification in DataClassification.personal()
            and not p.privacy_assessed
        ):
            yield Finding(
                "privacy_unassessed",
                f"privacy_unassessed:project:{p.pk}",
                p.pk,
                f"{p.name}: personal data in production without a privacy risk assessment",
                f"The project handles {p.get_data_classification_display().lower()} in production and no "
                "data-privacy risk has been assessed.",
                RiskCategory.DATA_PRIVACY,
                4,
                5,
            )


def _review_findings(organization: Organization, today: dt.date) -> Iterator[Finding]:
    """review_overdue: active risks whose review date passed, one finding per project (or portfolio)."""
    rows = (
        Risk.objects.filter(review_overdue(today), organization=organization, source=RiskSource.MANUAL)
        .filter(Q(project__isnull=True) | Q(project__in=_projects(organization)))
        .order_by()
        .values("project_id", "project__name")
        .annotate(n=Count("pk"), oldest=Min("next_review_date"))
        .order_by("project_id")
    )
    for row in rows:
        subject = f"project:{row['project_id']}" if row["project_id"] else f"organization:{organization.pk}"
        name = row["project__name"] or organization.name
        yield Finding(
            "review_overdue",
            f"review_overdue:{subject}",
            row["project_id"],
            f"{name}: {row['n']} risk review(s) overdue",
            f"{row['n']} active risk(s) were due for review; the oldest since {row['oldest']}.",
            RiskCategory.OPERATIONAL,
            3,
            2,
        )


def _deprecation_findings(organization: Organization, today: dt.date) -> Iterator[Finding]:
    """model_deprecation: a production model whose price list says it is deprecated within N days."""
    horizon = today + dt.timedelta(days=settings.RISK_SIGNAL_DEPRECATION_DAYS)
    # The latest price of the model name; of several providers' from that day, one that names a date (a
    # price book gives gpt-4-0613 from OpenAI a deprecation date and the same model from Azure none).
    deprecation = (
        ModelPrice.objects.filter(organization=organization, model=OuterRef("model_name"))
        .order_by("-valid_from", F("deprecation_date").asc(nulls_last=True))
        .values("deprecation_date")[:1]
    )
    components = (
        InfrastructureComponent.objects.filter(project__in=_projects(organization), environment=Environment.PRODUCTION)
        .exclude(model_name="")
        .annotate(deprecation=Subquery(deprecation))
        .filter(deprecation__lte=horizon)
        .select_related("project")
        .order_by("project_id", "model_name", "pk")
    )
    seen = set()
    for c in components:
        key = f"model_deprecation:project:{c.project_id}:{c.model_name}"[:200]
        if key in seen:
            continue
        seen.add(key)
        past = c.deprecation <= today
        yield Finding(
            "model_deprecation",
            key,
            c.project_id,
            f"{c.project.name}: {c.model_name} {'is deprecated' if past else 'will be deprecated'}",
            f"{c.model_name} runs in production and its deprecation date is {c.deprecation}.",
            RiskCategory.OPERATIONAL,
            4 if past else 3,
            3,
        )


def _unpriced_findings(organization: Organization, today: dt.date) -> Iterator[Finding]:
    """unpriced_usage: token usage with no price in the lookback window; cost figures are incomplete."""
    days = settings.RISK_SIGNAL_UNPRICED_LOOKBACK_DAYS
    rows = (
        CostEntry.objects.filter(
            project__in=_projects(organization), amount__isnull=True, date__gt=today - dt.timedelta(days=days)
        )
        .order_by()
        .values("project_id", "project__name")
        .annotate(n=Count("pk"), tokens=Sum(F("input_tokens") + F("cached_input_tokens") + F("output_tokens")))
        .order_by("project_id")
    )
    for row in rows:
        yield Finding(
            "unpriced_usage",
            f"unpriced_usage:project:{row['project_id']}",
            row["project_id"],
            f"{row['project__name']}: usage that could not be priced",
            f"{row['n']} usage entr(ies), {row['tokens']} tokens in the last {days} days have no model price; "
            "cost figures are incomplete until a price is added.",
            RiskCategory.COST,
            3,
            2,
        )


def _provider_findings(organization: Organization, today: dt.date) -> Iterator[Finding]:
    """provider_concentration: one infrastructure provider's share of the recent spend is over N %.

    Shares come from `portfolio.spend_by_provider`. Unattributed spend and `other` (several vendors'
    own clouds, e.g. OpenAI and Anthropic direct) count in the whole but are no one provider.
    """
    days, threshold = settings.RISK_SIGNAL_PROVIDER_WINDOW_DAYS, settings.RISK_SIGNAL_PROVIDER_SHARE_PCT
    spend = spend_by_provider(organization=organization, start=today - dt.timedelta(days=days - 1), end=today)
    everything = sum(spend.values(), Decimal(0))
    for provider, amount in sorted(spend.items()):
        if provider in ("", Provider.OTHER) or not everything:
            continue
        share = amount * 100 / everything
        if share > threshold:
            name = Provider(provider).label
            yield Finding(
                "provider_concentration",
                f"provider_concentration:provider:{provider}",
                None,
                f"{share:.0f}% of spend on one provider ({name})",
                f"{amount:.2f} of {everything:.2f} {organization.currency} spent in the last {days} days went "
                f"to {name}; the threshold is {threshold}%. Consider a second provider (vendor lock-in).",
                RiskCategory.VENDOR_LOCK_IN,
                3,
                3,
            )


def _billing_findings(organization: Organization, today: dt.date) -> Iterator[Finding]:
    """billing_drift: a month's billed cost (FOCUS imports) and its estimate differ by more than N % of the bill.

    Figures come from `billing.billed_vs_estimated`; only months with a bill count, the last N months.
    """
    threshold, months = settings.RISK_SIGNAL_BILLING_DRIFT_PCT, settings.RISK_SIGNAL_BILLING_DRIFT_MONTHS
    projects = _projects(organization)
    names = dict(projects.values_list("pk", "name"))
    figures = billed_vs_estimated(
        projects=projects, first_month=month_start(today, months - 1), last_month=month_start(today)
    )
    currency = organization.currency
    for project_id, project_months in sorted(figures.items()):
        drifted = [m for m in project_months if m.drift_pct is not None and m.drift_pct > threshold]
        if not drifted:
            continue
        worst = max(drifted, key=lambda m: m.drift_pct)
        detail = "; ".join(
            f"{m.month:%Y-%m}: billed {m.billed:.2f}, estimated {m.estimated:.2f} {currency} ({m.drift_pct:.0f}%)"
            for m in drifted
        )
        yield Finding(
            "billing_drift",
            f"billing_drift:project:{project_id}",
            project_id,
            f"{names[project_id]}: billed cost differs from the estimate",
            f"{detail}. The threshold is {threshold}% of the bill: prices, usage logging or the bill's "
            "project mapping may be wrong.",
            RiskCategory.COST,
            3,
            4 if worst.drift_pct > 3 * threshold else 3,
        )


# Spend anomaly: a day's priced spend against the ANOMALY_BASELINE_DAYS days before it (the days from the
# project's first priced cost on, at least ANOMALY_MIN_HISTORY_DAYS of them). It fires when the day's spend
# is above median + k × spread (k = SPEND_ANOMALY_K). The spread is the median absolute deviation (MAD);
# when more than half the days equal the median (MAD 0) it is 1.2533 × the mean absolute deviation from the
# median instead (the usual stand-in), and never less than 1 % of the median, so a flat series is not
# flagged for a cent. The last ANOMALY_RECENT_DAYS complete days are evaluated: each anomalous day is one
# risk, closed once the day is older than that.
ANOMALY_BASELINE_DAYS = 28
ANOMALY_MIN_HISTORY_DAYS = 14
ANOMALY_RECENT_DAYS = 7
MEAN_DEVIATION_TO_MAD = Decimal("1.2533")
SPREAD_FLOOR = Decimal("0.01")


@dataclass(frozen=True)
class AnomalyBound:
    """A day's baseline: its median, spread and the threshold above which its spend is an anomaly."""

    median: Decimal
    spread: Decimal
    threshold: Decimal


def spend_anomaly_bound(baseline: list[Decimal], *, k: Decimal) -> AnomalyBound | None:
    """Return the threshold of a day whose earlier days' spend is `baseline` (None: too little history)."""
    if len(baseline) < ANOMALY_MIN_HISTORY_DAYS:
        return None
    median = statistics.median(baseline)
    deviations = [abs(day - median) for day in baseline]
    spread = statistics.median(deviations) or MEAN_DEVIATION_TO_MAD * sum(deviations) / len(deviations)
    spread = max(spread, SPREAD_FLOOR * median)
    return AnomalyBound(median, spread, median + k * spread)


def _anomaly_findings(organization: Organization, today: dt.date) -> Iterator[Finding]:
    """spend_anomaly: a recent day's spend far above its project's recent range (`spend_anomaly_bound`)."""
    projects = _projects(organization)
    names = dict(projects.values_list("pk", "name"))
    k = Decimal(str(settings.SPEND_ANOMALY_K))
    first_day = today - dt.timedelta(days=ANOMALY_RECENT_DAYS + ANOMALY_BASELINE_DAYS)
    priced = CostEntry.objects.filter(project__in=projects, amount__isnull=False)
    first_costs = dict(priced.order_by().values("project").annotate(first=Min("date")).values_list("project", "first"))
    spend: dict[int, dict[dt.date, Decimal]] = {}
    for project_id, day, amount in (
        priced.filter(date__gte=first_day, date__lt=today)
        .order_by()
        .values("project", "date")
        .annotate(total=Sum("amount"))
        .values_list("project", "date", "total")
    ):
        spend.setdefault(project_id, {})[day] = amount
    for project_id, days in sorted(spend.items()):
        for back in range(ANOMALY_RECENT_DAYS, 0, -1):
            day = today - dt.timedelta(days=back)
            amount = days.get(day, Decimal(0))
            since = max(first_costs[project_id], day - dt.timedelta(days=ANOMALY_BASELINE_DAYS))
            baseline = [days.get(since + dt.timedelta(days=i), Decimal(0)) for i in range((day - since).days)]
            bound = spend_anomaly_bound(baseline, k=k)
            if bound is None or amount <= bound.threshold:
                continue
            yield Finding(
                "spend_anomaly",
                f"spend_anomaly:project:{project_id}:{day.isoformat()}",
                project_id,
                f"{names[project_id]}: spend on {day.isoformat()} far above its recent range",
                f"Spent {amount:.2f} {organization.currency} on {day.isoformat()}; the {len(baseline)} days before: "
                f"median {bound.median:.2f}, spread {bound.spread:.2f}, threshold median + {k} × spread = "
                f"{bound.threshold:.2f}.",
                RiskCategory.COST,
                4,
                3,
            )


RULES = {
    "budget": _budget_findings,
    "anomaly": _anomaly_findings,
    "metric": _metric_findings,
    "project": _project_findings,
    "review": _review_findings,
    "deprecation": _deprecation_findings,
    "unpriced": _unpriced_findings,
    "provider": _provider_findings,
    "billing": _billing_findings,
}


@transaction.atomic
def risk_signals_evaluate(*, organization: Organization, today: dt.date | None = None) -> SignalOutcome:
    """Evaluate every rule for an organization: raise, update and close its signal risks."""
    today = today or organization_today(organization)
    # One evaluation at a time per organization; the partial unique constraint is the last guard.
    Organization.objects.select_for_update().filter(pk=organization.pk).first()
    findings = {f.key: f for rule in RULES.values() for f in rule(organization, today)}
    signal_risks = Risk.objects.filter(organization=organization, source=RiskSource.SIGNAL)
    # A manager accepted this signal's risk and the acceptance still runs: do not raise it again.
    accepted = set(
        signal_risks.filter(status=RiskStatus.ACCEPTED, signal_key__in=findings)
        .filter(Q(acceptance_expires__isnull=True) | Q(acceptance_expires__gte=today))
        .values_list("signal_key", flat=True)
    )
    active = {r.signal_key: r for r in signal_risks.filter(status__in=RiskStatus.active())}
    owners = dict(
        Project.objects.filter(organization=organization).values_list(
            "pk", Coalesce("technical_lead_id", "business_owner_id")
        )
    )
    now, outcome = timezone.now(), SignalOutcome()

    new = [
        Risk(
            organization=organization,
            project_id=f.project_id,
            title=f.title[:300],
            description=f.description,
            category=f.category,
            likelihood=f.likelihood,
            impact=f.impact,
            owner_id=owners.get(f.project_id),
            source=RiskSource.SIGNAL,
            signal_rule=f.rule,
            signal_key=f.key,
        )
        for key, f in findings.items()
        if key not in active and key not in accepted
    ]
    Risk.objects.bulk_create(new)
    audit.record_created_many(new)
    assessments = [
        RiskAssessment(risk=r, assessed_at=now, likelihood=r.likelihood, impact=r.impact, note="Raised by a signal")
        for r in new
    ]
    outcome.raised = [r.signal_key for r in new]
    # Read back: score and severity are computed by the database.
    emit_many(organization, EventType.SIGNAL_RAISED, Risk.objects.filter(pk__in=[r.pk for r in new]))

    changed, before, escalated = [], [], []
    for key, risk in active.items():
        f = findings.get(key)
        if f is None:
            continue
        reassessed = (risk.likelihood, risk.impact) != (f.likelihood, f.impact)
        if reassessed or (risk.title, risk.description) != (f.title[:300], f.description):
            before.append((risk, audit.snapshot(risk)))
            risk.title, risk.description = f.title[:300], f.description
            rank = Severity.values.index
            if rank(Severity.for_score(f.likelihood * f.impact)) > rank(
                Severity.for_score(risk.likelihood * risk.impact)
            ):
                escalated.append(risk)
            risk.likelihood, risk.impact = f.likelihood, f.impact
            risk.updated_at = now
            changed.append(risk)
        if reassessed:
            assessments.append(
                RiskAssessment(
                    risk=risk, assessed_at=now, likelihood=f.likelihood, impact=f.impact, note="Signal update"
                )
            )
    outcome.updated = [r.signal_key for r in changed]

    cleared = [risk for key, risk in active.items() if key not in findings]
    for risk in cleared:
        before.append((risk, audit.snapshot(risk)))
        risk.status, risk.closed_at, risk.updated_at = RiskStatus.CLOSED, now, now
        risk.status_note = f"Closed by the signal: the condition no longer held on {today}."
    fields = ["title", "description", "likelihood", "impact", "status", "closed_at", "status_note", "updated_at"]
    Risk.objects.bulk_update([*changed, *cleared], fields)
    RiskAssessment.objects.bulk_create(assessments)
    audit.record_changed_many(before)
    outcome.closed = [risk.signal_key for risk in cleared]
    emit_many(organization, EventType.SIGNAL_CLEARED, cleared)
    # Read back: the new score and severity are computed by the database.
    emit_many(organization, EventType.RISK_ESCALATED, Risk.objects.filter(pk__in=[r.pk for r in escalated]))
    return outcome
