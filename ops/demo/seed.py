"""Seed the demo story (ops/demo/story.py) through the services, so it obeys the same rules as data
entered in the UI; only history (dates in the past) is written afterwards, explicitly."""

import datetime as dt
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from ops.catalogue import CATALOGUE
from ops.demo.story import (
    CENT,
    DEMO_USERS,
    ORG_NAME,
    ORG_SLUG,
    PERSONAS,
    PRICES,
    PROJECTS,
    TEAMS,
    ProjectSpec,
)
from ops.models import (
    CostCategory,
    CostEntry,
    CostSource,
    MetricKind,
    ModelPrice,
    Risk,
    RiskAssessment,
    RiskStatus,
    Treatment,
)
from ops.selectors.portfolio import price_book, usage_price
from ops.services import (
    budget_create,
    cost_entry_create,
    infrastructure_component_create,
    model_price_create,
    quality_metric_create,
    risk_accept,
    risk_close,
    risk_create,
    risk_update,
)
from projects import audit
from projects.gates import project_gates
from projects.models import (
    Health,
    Membership,
    Organization,
    Project,
    Stage,
    StageTransition,
    Team,
)
from projects.services import organization_create, project_create, project_transition, status_update_create

User = get_user_model()

# ---------------------------------------------------------------------------------------------
# Users and credentials


def _password() -> str:
    return secrets.token_urlsafe(12)


def demo_users_ensure(*, organization: Organization, superuser: bool = False) -> dict[str, str]:
    """Create missing demo users and personas; return the new logins' passwords (shown once).

    With `superuser`, demo-admin is also made staff and superuser, so the Django admin works.
    """
    created: dict[str, str] = {}
    for username, role, first, last in DEMO_USERS + PERSONAS:
        user, is_new = User.objects.get_or_create(
            username=username,
            defaults={"first_name": first, "last_name": last, "email": f"{username}@northwind.example"},
        )
        if is_new:
            if any(username == u for u, *_ in DEMO_USERS):
                created[username] = _password()
                user.set_password(created[username])
            else:
                user.set_unusable_password()
            user.save()
        if superuser and username == "demo-admin" and not user.is_superuser:
            user.is_staff = user.is_superuser = True
            user.save(update_fields=["is_staff", "is_superuser"])
        Membership.objects.get_or_create(user=user, organization=organization, defaults={"role": role})
    return created


def demo_passwords_reset() -> dict[str, str]:
    """Give every demo login a new random password; return them."""
    passwords = {}
    for username, *_ in DEMO_USERS:
        user = User.objects.get(username=username)
        passwords[username] = _password()
        user.set_password(passwords[username])
        user.save(update_fields=["password"])
    return passwords


def credentials_write(*, path: Path, passwords: dict[str, str]) -> None:
    """Write the logins to a file only its owner can read, keeping lines of logins not changed.

    Only a regular file: as root, the chmod below would lock every other user out of a device
    such as /dev/null (which then stops PostgreSQL from starting)."""
    if path.exists() and not path.is_file():
        raise ValueError(f"{path} is not a regular file; the demo logins need one of their own")
    roles = {username: role for username, role, *_ in DEMO_USERS}
    kept: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] in roles:
                kept[parts[0]] = parts[1]
    kept |= passwords
    lines = [f"{u:<18} {kept[u]:<20} {roles[u]}" for u, *_ in DEMO_USERS if u in kept]
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text("# username          password             role\n" + "\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------
# The curated portfolio


@dataclass
class DemoResult:
    passwords: dict[str, str]
    projects_created: list[str]


def _at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def _money(value: float) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


class _Timeline:
    """Which stage a project was in on a given day."""

    def __init__(self, spec: ProjectSpec, today: dt.date):
        self.start = today - dt.timedelta(days=spec.started_days_ago)
        self.moves = [(today - dt.timedelta(days=m[1]), m[0]) for m in spec.path]

    def stage_on(self, day: dt.date) -> str:
        stage = Stage.IDEATION
        for since, to_stage in self.moves:
            if since <= day:
                stage = to_stage
        return stage


USAGE_SHARE = {Stage.DEVELOPMENT: 0.05, Stage.EVALUATION: 0.12, Stage.PILOT: 0.35, Stage.PRODUCTION: 1.0}
STATUS_TEXT = {
    Stage.IDEATION: ("Scoping the use case and its business value.", "Agree success criteria with the owner."),
    Stage.DATA_PREPARATION: (
        "Collecting and cleaning source data; privacy review of every source.",
        "Finish labelling the evaluation set.",
    ),
    Stage.DEVELOPMENT: (
        "Iterating on prompts and retrieval; the evaluation harness grows each week.",
        "Close the gap to the accuracy threshold.",
    ),
    Stage.EVALUATION: (
        "Running the evaluation suite against the acceptance thresholds.",
        "Red-team session and sign-off for the pilot.",
    ),
    Stage.PILOT: (
        "Pilot running with a limited user group; feedback triaged weekly.",
        "Decide on the production roll-out.",
    ),
    Stage.PRODUCTION: ("Stable in production; monitoring cost, quality and drift.", "Monthly model and prompt review."),
    Stage.RETIRED: ("Decommissioned; data deleted according to the retention policy.", ""),
}
STAGE_PROGRESS = {
    Stage.IDEATION: (0, 10),
    Stage.DATA_PREPARATION: (10, 30),
    Stage.DEVELOPMENT: (30, 55),
    Stage.EVALUATION: (55, 70),
    Stage.PILOT: (70, 85),
    Stage.PRODUCTION: (85, 100),
    Stage.RETIRED: (100, 100),
}


def _usage_entries(spec, project, timeline, today, prices, rng, by) -> list[CostEntry]:
    """Return token usage every other day, priced like the usage API prices it (price valid that day).

    Built in memory and bulk-inserted: thousands of rows through one service call each would make the
    first `make run` slow, and each row is validated below (model_price lookups, non-negative tokens).
    """
    entries = []
    first = max(timeline.start, today - dt.timedelta(days=365))
    for offset in range(0, (today - first).days, 2):
        day = first + dt.timedelta(days=offset)
        share = USAGE_SHARE.get(timeline.stage_on(day), 0)
        if not share:
            continue
        elapsed = 1 - (today - day).days / 365
        for use in spec.usage:
            volume = 2 * use.requests * share * (1 + (use.growth - 1) * elapsed) * rng.uniform(0.8, 1.2)
            requests = int(volume)
            prompt_tokens, tokens_out = requests * use.input_tokens, requests * use.output_tokens
            # A quarter of the prompt is served from cache; `input_tokens` excludes those, as in usage_ingest.
            cached = prompt_tokens // 4 if "llama" not in use.model else 0
            tokens_in = prompt_tokens - cached
            org = project.organization_id
            provider = prices.provider_for(organization_id=org, provider="", model=use.model) or ""
            price = prices.price_on(organization_id=org, provider=provider, model=use.model, date=day)
            amount = None
            if price is not None:
                amount = usage_price(
                    price=price, input_tokens=tokens_in, cached_input_tokens=cached, output_tokens=tokens_out
                )
            entry = CostEntry(
                project=project,
                date=day,
                category=CostCategory.INFERENCE,
                amount=amount,
                description=f"Token usage, {use.model}",
                model=use.model,
                provider=provider,
                input_tokens=tokens_in,
                cached_input_tokens=cached,
                output_tokens=tokens_out,
                requests=requests,
                source=CostSource.USAGE,
                price=price,
                external_id=f"usage-{use.model}-{day:%Y%m%d}",
                created_by=by,
            )
            entry.full_clean(
                exclude=["project", "price", "created_by"], validate_unique=False, validate_constraints=False
            )
            entries.append(entry)
    return entries


def _monthly_costs(spec: ProjectSpec, timeline: _Timeline, today: dt.date, rng: random.Random) -> list[dict]:
    """Return the month-end cost lines of the last twelve months: people, storage, stage-specific work."""
    rows = []
    month = dt.date(today.year - 1, today.month, 1)
    while month < today.replace(day=1):
        end = (month + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        stage = timeline.stage_on(end)
        if end >= timeline.start and not (stage == Stage.RETIRED and timeline.stage_on(month) == Stage.RETIRED):
            jitter = rng.uniform(0.9, 1.1)
            rows.append(
                dict(
                    date=end,
                    category=CostCategory.PERSONNEL,
                    amount=_money(spec.monthly_people * jitter),
                    description="Team time",
                )
            )
            rows.append(
                dict(
                    date=end,
                    category=CostCategory.STORAGE,
                    amount=_money(300 + 900 * rng.random()),
                    description="Storage and vector index",
                )
            )
            extra = {
                Stage.DATA_PREPARATION: (CostCategory.DATA_LABELING, 9000, "Annotation vendor"),
                Stage.DEVELOPMENT: (CostCategory.FINE_TUNING, 6000, "Fine-tuning and experiment runs"),
                Stage.EVALUATION: (CostCategory.OTHER, 4000, "Red-teaming and evaluation services"),
                Stage.PRODUCTION: (CostCategory.LICENSING, 2500, "Tooling and observability licences"),
            }.get(stage)
            if extra:
                rows.append(dict(date=end, category=extra[0], amount=_money(extra[1] * jitter), description=extra[2]))
            gpus = max((c.get("gpu_count", 0) for c in spec.infra), default=0)
            if gpus and stage not in (Stage.IDEATION, Stage.DATA_PREPARATION):
                hours = Decimal(gpus * 24 * end.day * rng.uniform(0.5, 0.9)).quantize(CENT)
                rows.append(
                    dict(
                        date=end,
                        category=CostCategory.INFERENCE,
                        amount=_money(float(hours) * 2.1),
                        description="On-premises GPU hours (depreciation and power)",
                        gpu_hours=hours,
                        energy_kwh=(hours * Decimal("0.7")).quantize(CENT),
                    )
                )
        month = end + dt.timedelta(days=1)
    return rows


def _quality(spec, project, timeline, today, by, rng) -> None:
    """Record the monthly evaluation: accuracy, hallucinations, latency, satisfaction, toxicity."""
    acc0, acc1, hal0, hal1, latency = spec.quality
    first = max(timeline.start, today - dt.timedelta(days=365))
    days = [first + dt.timedelta(days=d) for d in range(14, (today - first).days, 30)]
    days = [d for d in days if timeline.stage_on(d) not in (Stage.IDEATION, Stage.DATA_PREPARATION, Stage.RETIRED)]
    for i, day in enumerate(days):
        t = i / max(len(days) - 1, 1)
        spike = any(
            x.from_days_ago >= (today - day).days >= x.to_days_ago and x.health == Health.RED for x in spec.incidents
        )
        values = [
            (MetricKind.ACCURACY, acc0 + (acc1 - acc0) * t + rng.uniform(-0.01, 0.01), 0.85),
            (MetricKind.HALLUCINATION_RATE, (hal0 + (hal1 - hal0) * t) * (2.5 if spike else 1), 0.05),
            (MetricKind.LATENCY_P95_MS, latency * rng.uniform(0.85, 1.25), latency * 1.2),
            (MetricKind.TOXICITY_RATE, rng.uniform(0.001, 0.008), 0.01),
        ]
        if timeline.stage_on(day) in (Stage.PILOT, Stage.PRODUCTION):
            values.append((MetricKind.USER_SATISFACTION, 3.6 + 0.8 * t + rng.uniform(-0.1, 0.1), 4.0))
        for metric, value, threshold in values:
            quality_metric_create(
                project=project, by=by, date=day, metric=metric, value=round(value, 4), threshold=round(threshold, 4)
            )


def _risks(spec, project, today, people, manager) -> None:
    for r in spec.risks:
        entry = CATALOGUE[r.key]
        owner = people[spec.lead]
        raised = today - dt.timedelta(weeks=r.weeks_ago)
        risk = risk_create(
            project=project,
            by=owner,
            title=r.title or entry.title,
            category=entry.category,
            likelihood=r.likelihood or entry.likelihood,
            impact=r.impact or entry.impact,
            description=entry.description,
            mitigation_plan="" if r.no_plan else entry.mitigation_plan,
            nist_refs=list(entry.nist_refs),
            owasp_refs=list(entry.owasp_refs),
            owner=owner,
            treatment=Treatment.ACCEPT if r.status == RiskStatus.ACCEPTED else Treatment.MITIGATE,
            next_review_date=today + dt.timedelta(days=r.review_in_days),
        )
        reviewed = _at(raised)
        # History: the service stamps "now"; the demo dates the initial assessment when the risk was raised.
        RiskAssessment.objects.filter(risk=risk).update(assessed_at=reviewed)
        if r.reassess:
            weeks, likelihood, impact, note = r.reassess
            risk = risk_update(risk=risk, by=owner, likelihood=likelihood, impact=impact, note=note)
            reviewed = _at(today - dt.timedelta(weeks=weeks))
            RiskAssessment.objects.filter(risk=risk, note=note).update(assessed_at=reviewed)
        if r.status == RiskStatus.MITIGATING:
            risk = risk_update(risk=risk, by=owner, status=RiskStatus.MITIGATING)
        elif r.status == RiskStatus.ACCEPTED:
            risk = risk_accept(risk=risk, by=manager, justification=r.note, expires=today + dt.timedelta(days=180))
        elif r.status == RiskStatus.CLOSED:
            risk = risk_close(risk=risk, by=owner, note=r.note)
            Risk.objects.filter(pk=risk.pk).update(closed_at=_at(today - dt.timedelta(weeks=max(r.weeks_ago - 10, 1))))
        Risk.objects.filter(pk=risk.pk).update(last_reviewed_at=reviewed, created_at=_at(raised))


def _status_updates(spec, project, timeline, today, author, rng) -> None:
    """Log a weekly status (Fridays) over the last year, or since the project started."""
    first = max(timeline.start, today - dt.timedelta(days=364))
    day = first + dt.timedelta(days=(4 - first.weekday()) % 7)
    retired_logged = False
    while day <= today:
        stage = timeline.stage_on(day)
        if stage == Stage.RETIRED:
            if retired_logged:
                break
            retired_logged = True
        summary, next_steps = STATUS_TEXT[stage]
        health, blockers = Health.GREEN, ""
        for x in spec.incidents:
            if x.from_days_ago >= (today - day).days >= x.to_days_ago:
                health, summary, blockers = x.health, x.summary, x.blockers
        if health == Health.GREEN and stage != Stage.RETIRED and rng.random() < 0.08:
            health, blockers = Health.AMBER, "Key engineer on leave; one milestone slipped a week."
        low, high = STAGE_PROGRESS[stage]
        since = max([s for s, st in timeline.moves if s <= day and st == stage], default=timeline.start)
        progress = min(high, low + (day - since).days // 7)
        status_update_create(
            project=project,
            by=author,
            date=day,
            health=health,
            progress=progress,
            summary=summary,
            blockers=blockers,
            next_steps=next_steps,
            accomplishments="Weekly evaluation run completed." if stage != Stage.IDEATION else "",
        )
        day += dt.timedelta(days=7)


def _transitions(spec, project, timeline, people, manager) -> None:
    """Walk the project through its stages with the services, then date each move in the past."""
    by = people[spec.lead]
    for since, move in zip((m[0] for m in timeline.moves), spec.path, strict=True):
        to_stage, note = move[0], (move[2] if len(move) > 2 else "")
        unmet = [g for g in project_gates(project=project, to_stage=to_stage) if not g.passed]
        override = spec.overrides.get(to_stage) or (
            "Demo history: approved by the steering committee." if unmet else ""
        )
        transition = project_transition(
            project=project, to_stage=to_stage, by=manager if override else by, note=note, override_reason=override
        )
        # History: the service stamps "now"; the demo dates the move on the day it happened.
        StageTransition.objects.filter(pk=transition.pk).update(at=_at(since))
    entered = _at(timeline.moves[-1][0]) if timeline.moves else _at(timeline.start)
    Project.objects.filter(pk=project.pk).update(stage_entered_at=entered)


def _project_seed(spec, organization, teams, people, manager, prices, today) -> None:
    rng = random.Random(spec.slug)
    timeline = _Timeline(spec, today)
    lead = people[spec.lead]
    project = project_create(
        organization=organization,
        by=lead,
        name=spec.name,
        slug=spec.slug,
        summary=spec.summary,
        team=teams[spec.team],
        industry=spec.industry,
        use_case=spec.use_case,
        business_owner=people[spec.owner],
        technical_lead=lead,
        human_oversight_owner=people.get(spec.oversight),
        start_date=timeline.start,
        target_date=timeline.start + dt.timedelta(days=540),
        data_classification=spec.classification,
        ai_act_tier=spec.tier,
    )
    for component in spec.infra:
        infrastructure_component_create(project=project, by=lead, **component)
    monthly = _monthly_costs(spec, timeline, today, rng)
    for row in monthly:
        cost_entry_create(
            project=project,
            by=lead,
            source=CostSource.MANUAL,
            external_id=f"monthly-{row['date']:%Y%m}-{row['category']}",
            **row,
        )
    usage = _usage_entries(spec, project, timeline, today, prices, rng, lead)
    CostEntry.objects.bulk_create(usage, batch_size=1000)
    audit.record_batch(  # as usage_ingest records token usage: one event per project and batch
        model=CostEntry,
        organization_id=project.organization_id,
        project_id=project.pk,
        label=f"Token usage: {len(usage)} cost entries",
        created=[entry.pk for entry in usage],
    )
    # Budgets per calendar year, sized against the spend (extrapolated to the whole year) so the cost story holds.
    data_start = max(timeline.start, today - dt.timedelta(days=365))
    for year in sorted({today.year} | {r["date"].year for r in monthly}):
        year_start, year_end = dt.date(year, 1, 1), dt.date(year, 12, 31)
        spent = sum((r["amount"] for r in monthly if r["date"].year == year), Decimal(0))
        spent += sum((e.amount or 0 for e in usage if e.date.year == year), Decimal(0))
        measured = (min(today, year_end) - max(year_start, data_start)).days + 1
        planned = (year_end - max(year_start, timeline.start)).days + 1
        forecast = float(spent) * planned / max(measured, 1)
        budget_create(
            project=project,
            by=manager,
            period_start=year_start,
            period_end=year_end,
            amount=_money(max(round(forecast * spec.budget_factor, -3), 5000)),
            notes=f"FY{year} budget",
        )
    _risks(spec, project, today, people, manager)
    if not spec.metrics_after_transitions:
        _quality(spec, project, timeline, today, lead, rng)
    _transitions(spec, project, timeline, people, manager)
    if spec.metrics_after_transitions:
        _quality(spec, project, timeline, today, lead, rng)
    _status_updates(spec, project, timeline, today, lead, rng)
    # History: every row of the project was written today; date the project itself when it started.
    Project.objects.filter(pk=project.pk).update(created_at=_at(timeline.start))


def demo_seed(
    *, today: dt.date | None = None, superuser: bool = False, log: Callable[[str], None] = lambda _: None
) -> DemoResult:
    """Create what is missing of the demo portfolio; return new passwords and the projects created.

    `superuser` makes demo-admin a platform superuser too (the Django admin); by default no demo login is.
    """
    today = today or timezone.localdate()
    organization = Organization.objects.filter(slug=ORG_SLUG).first()
    if organization is None:
        organization = organization_create(name=ORG_NAME, slug=ORG_SLUG, currency="USD", timezone_name="Europe/London")
    passwords = demo_users_ensure(organization=organization, superuser=superuser)
    people = {u.username: u for u in User.objects.filter(username__in=[p[0] for p in DEMO_USERS + PERSONAS])}
    manager = people["demo-manager"]
    teams = {}
    for key, (name, description) in TEAMS.items():
        teams[key], _ = Team.objects.get_or_create(
            organization=organization, slug=key, defaults={"name": name, "description": description}
        )
    if not ModelPrice.objects.filter(organization=organization).exists():
        with transaction.atomic():
            for p in PRICES:
                model_price_create(
                    organization=organization,
                    by=manager,
                    provider=p.provider,
                    model=p.model,
                    input_per_mtok=Decimal(p.input),
                    output_per_mtok=Decimal(p.output),
                    cached_input_per_mtok=Decimal(p.cached) if p.cached else None,
                    valid_from=today - dt.timedelta(days=p.valid_days_ago),
                    deprecation_date=today + dt.timedelta(days=p.deprecation_in_days)
                    if p.deprecation_in_days
                    else None,
                )
    prices = price_book(organization_ids=[organization.pk], models={p.model for p in PRICES})
    existing = set(organization.projects.values_list("slug", flat=True))
    created = []
    for spec in PROJECTS:
        if spec.slug in existing:
            continue
        with transaction.atomic():  # a project is seeded whole or not at all
            _project_seed(spec, organization, teams, people, manager, prices, today)
        created.append(spec.slug)
        log(f"  {spec.name}")
    return DemoResult(passwords=passwords, projects_created=created)
