"""Synthetic load-test projects for the benchmarks (bench.ui, bench.load); see `synthetic_seed`."""

import datetime as dt
import random
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from ops.catalogue import CATALOGUE
from ops.demo.seed import STATUS_TEXT, _at, _money
from ops.demo.story import ORG_SLUG
from ops.models import (
    Budget,
    ComponentKind,
    CostCategory,
    CostEntry,
    CostSource,
    Environment,
    Hosting,
    InfrastructureComponent,
    MetricKind,
    Provider,
    QualityMetric,
    Risk,
    RiskAssessment,
    RiskCategory,
    RiskSource,
    RiskStatus,
    Treatment,
)
from projects.models import (
    AIActTier,
    DataClassification,
    Health,
    Industry,
    Membership,
    Organization,
    Project,
    Role,
    Stage,
    StageTransition,
    StatusUpdate,
    UseCase,
)

User = get_user_model()

# ---------------------------------------------------------------------------------------------
# Synthetic load-test projects

SYNTHETIC_ORGS = 9  # plus the demo organization: ten in all
SYNTHETIC_CHUNK = 100  # projects per transaction: a killed run keeps only whole projects
SYNTHETIC_MODELS = [
    ("gpt-4o", 2.5, 10.0),
    ("claude-sonnet-4", 3.0, 15.0),
    ("gemini-2.5-flash", 0.3, 2.5),
    ("llama-3.1-70b-instruct", 0.0, 0.0),
]
SYNTHETIC_FRAMEWORKS = ["LangChain", "LlamaIndex", "Transformers", "vLLM", "Semantic Kernel", "LangGraph"]
SYNTHETIC_GPUS = ["", "", "NVIDIA A100 80GB", "NVIDIA H100 80GB", "NVIDIA L4", "NVIDIA L40S"]
COST_WEIGHTS = {
    CostCategory.INFERENCE: 50,
    CostCategory.PERSONNEL: 12,
    CostCategory.STORAGE: 10,
    CostCategory.FINE_TUNING: 8,
    CostCategory.TRAINING: 5,
    CostCategory.DATA_LABELING: 6,
    CostCategory.LICENSING: 5,
    CostCategory.OTHER: 4,
}


def synthetic_slug(index: int) -> str:
    return f"synthetic-{index:05d}"


def _synthetic_orgs() -> list[tuple[Organization, User]]:
    """Return the ten organizations projects are spread over, each with the manager who writes its data."""
    demo = Organization.objects.get(slug=ORG_SLUG)
    orgs = [(demo, User.objects.get(username="demo-manager"))]
    for n in range(1, SYNTHETIC_ORGS + 1):
        org, _ = Organization.objects.get_or_create(
            slug=f"synthetic-org-{n:02d}", defaults={"name": f"Synthetic Org {n:02d}", "currency": "USD"}
        )
        manager, is_new = User.objects.get_or_create(username=f"synthetic-manager-{n:02d}")
        if is_new:
            manager.set_unusable_password()
            manager.save(update_fields=["password"])
        Membership.objects.get_or_create(user=manager, organization=org, defaults={"role": Role.MANAGER})
        orgs.append((org, manager))
    return orgs


def _synthetic_project(index: int, org: Organization, manager: User, today: dt.date) -> tuple[Project, dict]:
    """Build one project and its rows in memory, from a random generator seeded with its index."""
    rng = random.Random(index)
    stage = rng.choice(Stage.values)
    order = Stage.order(stage)
    start = today - dt.timedelta(days=rng.randint(200, 700))
    # Stage entry dates spread between the start and a few weeks ago.
    span = (today - dt.timedelta(days=14) - start).days
    entered = sorted(start + dt.timedelta(days=rng.randint(1, span)) for _ in range(order))
    day = lambda: today - dt.timedelta(days=rng.randint(0, 364))  # noqa: E731
    project = Project(
        organization=org,
        name=f"Synthetic project {index:05d}",
        slug=synthetic_slug(index),
        summary="Generated for load testing.",
        industry=rng.choice(Industry.values),
        use_case=rng.choice(UseCase.values),
        data_classification=rng.choice(DataClassification.values),
        ai_act_tier=rng.choice([AIActTier.MINIMAL, AIActTier.LIMITED, AIActTier.HIGH, AIActTier.UNASSESSED]),
        business_owner=manager,
        technical_lead=manager,
        start_date=start,
        target_date=start + dt.timedelta(days=540),
        stage=stage,
        stage_entered_at=_at(entered[-1] if entered else start),
    )
    rows: dict[str, list] = {"transitions": [], "status": [], "budgets": [], "infra": [], "costs": [], "metrics": []}
    stages = Stage.values
    for step, when in enumerate(entered):
        to_stage = stage if step == order - 1 else stages[step + 1]
        rows["transitions"].append(
            StageTransition(from_stage=stages[step], to_stage=to_stage, at=_at(when), by=manager, note="Synthetic")
        )
    for n in range(10):
        rows["status"].append(
            StatusUpdate(
                author=manager,
                date=today - dt.timedelta(days=35 * n + rng.randint(0, 6)),
                health=rng.choices(Health.values, weights=[6, 3, 1])[0],
                progress=max(0, min(100, order * 15 - n * 2)),
                summary=rng.choice(list(STATUS_TEXT.values()))[0],
            )
        )
    latest = max(rows["status"], key=lambda s: s.date)
    project.health, project.progress, project.last_status_date = latest.health, latest.progress, latest.date
    for year in sorted({today.year, today.year - 1})[-rng.randint(1, 2) :]:
        rows["budgets"].append(
            Budget(
                period_start=dt.date(year, 1, 1),
                period_end=dt.date(year, 12, 31),
                amount=_money(rng.randint(50, 600) * 1000),
                tolerance_pct=Decimal(10),
            )
        )
    provider = rng.choice(Provider.values)
    hosting = Hosting.LOCAL if provider == Provider.ON_PREMISES else rng.choice(Hosting.values)
    for kind in rng.sample(ComponentKind.values, rng.randint(3, 5)):
        gpu = rng.choice(SYNTHETIC_GPUS) if kind in (ComponentKind.COMPUTE, ComponentKind.FOUNDATION_MODEL) else ""
        rows["infra"].append(
            InfrastructureComponent(
                name=f"{ComponentKind(kind).label} {index:05d}",
                kind=kind,
                provider=provider,
                hosting=hosting,
                environment=rng.choice(Environment.values),
                model_name=rng.choice(SYNTHETIC_MODELS)[0] if kind == ComponentKind.FOUNDATION_MODEL else "",
                frameworks=rng.sample(SYNTHETIC_FRAMEWORKS, 2),
                gpu_type=gpu,
                gpu_count=rng.randint(1, 8) if gpu else 0,
            )
        )
    categories, weights = list(COST_WEIGHTS), list(COST_WEIGHTS.values())
    for n in range(200):
        category = rng.choices(categories, weights)[0]
        entry = CostEntry(
            date=day(), category=category, source=CostSource.API, external_id=f"synthetic-{n}", created_by=manager
        )
        if category == CostCategory.INFERENCE:
            model, price_in, price_out = rng.choice(SYNTHETIC_MODELS)
            entry.model, entry.input_tokens, entry.output_tokens = (
                model,
                rng.randint(10**5, 10**8),
                rng.randint(10**4, 10**7),
            )
            entry.amount = _money((entry.input_tokens * price_in + entry.output_tokens * price_out) / 1e6)
        else:
            entry.amount = _money(rng.uniform(50, 8000))
        rows["costs"].append(entry)
    for _ in range(10):
        metric = rng.choice([m for m in MetricKind.values if m != MetricKind.CUSTOM])
        lower = metric in (MetricKind.HALLUCINATION_RATE, MetricKind.TOXICITY_RATE, MetricKind.LATENCY_P95_MS)
        scale = {MetricKind.LATENCY_P95_MS: 3000, MetricKind.USER_SATISFACTION: 5}.get(metric, 1)
        rows["metrics"].append(
            QualityMetric(
                date=day(),
                metric=metric,
                value=round(rng.random() * scale, 4),
                threshold=round((0.1 if lower else 0.8) * scale, 4),
                higher_is_better=not lower,
            )
        )
    rows["risks"] = []
    for n, category in enumerate(
        rng.sample(RiskCategory.values, len(RiskCategory.values)) + rng.sample(RiskCategory.values, 2)
    ):
        refs = [r for r in CATALOGUE.values() if r.category == category]
        template = rng.choice(refs)
        status = rng.choices(RiskStatus.values, weights=[5, 3, 1, 2])[0]
        accepted = status == RiskStatus.ACCEPTED
        risk = Risk(
            organization=org,
            title=f"{template.title} ({n + 1})",
            description=template.description,
            category=category,
            likelihood=rng.randint(1, 5),
            impact=rng.randint(1, 5),
            status=status,
            treatment=Treatment.ACCEPT if accepted else Treatment.MITIGATE,
            owner=manager,
            mitigation_plan=template.mitigation_plan,
            next_review_date=today + dt.timedelta(days=rng.randint(-60, 90)),
            last_reviewed_at=_at(day()),
            nist_refs=list(template.nist_refs),
            owasp_refs=list(template.owasp_refs),
            source=RiskSource.MANUAL,
            accepted_by=manager if accepted else None,
            acceptance_justification="Within appetite (synthetic)." if accepted else "",
            acceptance_expires=today + dt.timedelta(days=120) if accepted else None,
            closed_at=_at(day()) if status == RiskStatus.CLOSED else None,
        )
        rows["risks"].append(risk)
    return project, rows


def synthetic_seed(*, count: int, today: dt.date | None = None, progress: bool = True) -> int:
    """Ensure `count` synthetic projects exist (synthetic-00001…), spread over ten organizations.

    Load-test data is written with bulk_create, bypassing the services: a service call per row would
    take hours for a million cost entries, and these rows are generated valid (non-negative amounts,
    1–5 ratings, stage moves that follow the lifecycle). Each project's data comes from a generator
    seeded with its index, so reruns and larger counts reproduce the same projects; existing slugs are
    skipped. No audit events are written for them: load-test volume, not anyone's change.
    Return how many projects were created.
    """
    from tqdm import tqdm

    today = today or timezone.localdate()
    orgs = _synthetic_orgs()
    existing = set(
        Project.objects.filter(slug__startswith="synthetic-", organization__in=[o for o, _ in orgs]).values_list(
            "slug", flat=True
        )
    )
    missing = [i for i in range(1, count + 1) if synthetic_slug(i) not in existing]
    with tqdm(total=len(missing), unit="project", desc="Synthetic projects", disable=not (progress and missing)) as bar:
        for start in range(0, len(missing), SYNTHETIC_CHUNK):
            chunk = missing[start : start + SYNTHETIC_CHUNK]
            built = [_synthetic_project(i, *orgs[i % len(orgs)], today) for i in chunk]
            with transaction.atomic():
                Project.objects.bulk_create([project for project, _ in built])
                children: dict[type, list] = {}
                for project, rows in built:
                    for key, items in rows.items():
                        for item in items:
                            item.project = project
                        children.setdefault(key, []).extend(items)
                Risk.objects.bulk_create(children.pop("risks"), batch_size=2000)
                assessments = [
                    RiskAssessment(
                        risk=r,
                        assessed_at=r.last_reviewed_at,
                        by=r.owner,
                        likelihood=r.likelihood,
                        impact=r.impact,
                        note="Initial assessment",
                    )
                    for project, rows in built
                    for r in rows["risks"]
                ]
                RiskAssessment.objects.bulk_create(assessments, batch_size=2000)
                models = {
                    "transitions": StageTransition,
                    "status": StatusUpdate,
                    "budgets": Budget,
                    "infra": InfrastructureComponent,
                    "costs": CostEntry,
                    "metrics": QualityMetric,
                }
                for key, model in models.items():
                    model.objects.bulk_create(children[key], batch_size=5000)
            bar.update(len(chunk))
    return len(missing)
