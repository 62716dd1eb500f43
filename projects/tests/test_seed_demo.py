"""seed_demo: the curated demo portfolio (through the services) and the synthetic load-test projects."""

import datetime as dt
import itertools
import os
import stat
from decimal import Decimal
from io import StringIO

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone

from ops.demo import DEMO_USERS, ORG_SLUG
from ops.models import (
    CostEntry,
    CostSource,
    Hosting,
    InfrastructureComponent,
    MetricKind,
    ModelPrice,
    Provider,
    QualityMetric,
    Risk,
    RiskAssessment,
    RiskCategory,
    RiskStatus,
    Severity,
)
from ops.selectors.portfolio import usage_price
from projects.models import Membership, Organization, Project, Stage, StageTransition, StatusUpdate

User = get_user_model()


def _counts() -> dict[str, int]:
    return {model._meta.label: model.objects.count() for model in apps.get_models()}


def _seed(credentials, *args: str) -> str:
    out = StringIO()
    call_command("seed_demo", "--credentials-file", str(credentials), *args, stdout=out)
    return out.getvalue()


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker, tmp_path_factory):
    """Seed the demo once for the module, inside a transaction rolled back afterwards."""
    credentials = tmp_path_factory.mktemp("seed") / ".demo-credentials"
    with django_db_blocker.unblock(), transaction.atomic():
        output = _seed(credentials)
        yield {"credentials": credentials, "output": output, "counts": _counts()}
        transaction.set_rollback(True)


@pytest.fixture
def demo(seeded, db):
    return Organization.objects.get(slug=ORG_SLUG)


def test_seed_covers_every_stage_provider_hosting_and_risk_category(demo):
    projects = Project.objects.filter(organization=demo)
    assert 14 <= projects.count() <= 17
    assert set(projects.values_list("stage", flat=True)) == set(Stage.values)
    components = InfrastructureComponent.objects.filter(project__organization=demo)
    assert set(components.values_list("provider", flat=True)) == set(Provider.values)
    assert set(components.values_list("hosting", flat=True)) == set(Hosting.values)
    risks = Risk.objects.filter(organization=demo)
    assert set(risks.values_list("category", flat=True)) == set(RiskCategory.values)
    assert set(risks.values_list("status", flat=True)) == set(RiskStatus.values)


def test_seed_creates_one_login_per_role_and_no_superuser(demo):
    for username, role, *_ in DEMO_USERS:
        user = User.objects.get(username=username)
        assert Membership.objects.get(user=user, organization=demo).role == role
        assert not user.is_staff and not user.is_superuser
        assert user.has_usable_password()
    # The people who own projects exist as members but cannot sign in.
    personas = User.objects.filter(memberships__organization=demo).exclude(username__startswith="demo-")
    assert personas.exists()
    assert not any(p.has_usable_password() for p in personas)


def test_credentials_file_is_private_and_holds_the_working_passwords(seeded, demo):
    path = seeded["credentials"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = [line.split() for line in path.read_text().splitlines() if not line.startswith("#")]
    assert [parts[0] for parts in lines] == [u for u, *_ in DEMO_USERS]
    for username, password, role in lines:
        assert User.objects.get(username=username).check_password(password)
        assert f"{username}" in seeded["output"] and password in seeded["output"]
        assert role == Membership.objects.get(user__username=username).role


def test_seeding_twice_changes_nothing_and_prints_no_password(seeded, demo):
    before = seeded["credentials"].read_text()
    output = _seed(seeded["credentials"])
    assert _counts() == seeded["counts"]
    assert "already present" in output
    assert "password" not in output.lower() and "logins" not in output.lower()
    assert seeded["credentials"].read_text() == before


def test_reset_passwords_rewrites_the_file_and_the_old_password_stops_working(seeded, demo, tmp_path):
    path = tmp_path / "creds"
    old = {p[0]: p[1] for p in (line.split() for line in seeded["credentials"].read_text().splitlines()[1:])}
    _seed(path, "--reset-passwords")
    new = {p[0]: p[1] for p in (line.split() for line in path.read_text().splitlines()[1:])}
    admin = User.objects.get(username="demo-admin")
    assert new.keys() == old.keys()
    assert admin.check_password(new["demo-admin"]) and not admin.check_password(old["demo-admin"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_stage_history_is_dated_in_the_past_and_matches_the_project(demo):
    today = timezone.now()
    for project in Project.objects.filter(organization=demo).exclude(stage=Stage.IDEATION):
        moves = list(StageTransition.objects.filter(project=project).order_by("at"))
        assert moves, project
        assert moves[-1].to_stage == project.stage
        assert project.stage_entered_at == moves[-1].at < today - dt.timedelta(days=7)
        assert all(a.to_stage == b.from_stage for a, b in itertools.pairwise(moves))
    # The one gate override of the story is recorded with its justification.
    overridden = StageTransition.objects.filter(project__organization=demo).exclude(overridden_gates=[])
    assert [(t.project.slug, t.to_stage, t.overridden_gates) for t in overridden] == [
        ("scribecare", Stage.PILOT, ["quality_metrics"])
    ]
    assert overridden[0].override_reason
    # Rework: a move back carries a note.
    back = StageTransition.objects.get(project__slug="newsroom-copilot", to_stage=Stage.DEVELOPMENT, from_stage="pilot")
    assert back.note


def test_a_year_of_status_updates_sets_health_from_the_newest(demo):
    aria = Project.objects.get(organization=demo, slug="ask-aria")
    updates = StatusUpdate.objects.filter(project=aria).order_by("date")
    assert updates.count() >= 50
    assert (updates.last().date - updates.first().date).days >= 350
    assert (aria.health, aria.last_status_date) == (updates.last().health, updates.last().date)


def test_token_usage_is_priced_from_the_price_valid_on_its_date(demo):
    usage = CostEntry.objects.filter(project__organization=demo, source=CostSource.USAGE)
    assert usage.count() > 1000
    gpt4o = usage.filter(model="gpt-4o", amount__isnull=False).select_related("price")
    prices = set()
    for entry in gpt4o:
        valid = ModelPrice.objects.filter(organization=demo, model="gpt-4o", valid_from__lte=entry.date)
        assert entry.price == valid.order_by("-valid_from").first()
        # Priced like real ingestion: `input_tokens` excludes the cached tokens, counted apart.
        assert entry.cached_input_tokens and entry.amount == usage_price(
            price=entry.price,
            input_tokens=entry.input_tokens,
            cached_input_tokens=entry.cached_input_tokens,
            output_tokens=entry.output_tokens,
        )
        prices.add(entry.price_id)
    assert len(prices) == 2  # the mid-year price cut: older costs keep the older price
    # Usage of a model with no price is kept, flagged unpriced, never costed at 0.
    unpriced = usage.filter(amount__isnull=True)
    assert unpriced.exists() and set(unpriced.values_list("model", flat=True)) == {"gpt-4.1-mini"}
    assert not ModelPrice.objects.filter(model="gpt-4.1-mini").exists()
    on_prem = usage.filter(model__startswith="llama")
    assert on_prem.exists() and set(on_prem.values_list("amount", flat=True)) == {Decimal("0.0000")}


def test_quality_metrics_have_thresholds_and_risks_tell_the_story(demo):
    metrics = QualityMetric.objects.filter(project__organization=demo)
    assert set(metrics.values_list("metric", flat=True)) == set(MetricKind.values) - {MetricKind.CUSTOM}
    assert not metrics.filter(threshold__isnull=True).exists()
    risks = Risk.objects.filter(organization=demo)
    assert risks.filter(severity=Severity.CRITICAL).exists()
    today = timezone.localdate()
    assert risks.filter(status__in=RiskStatus.active(), next_review_date__lt=today).exists()
    accepted = risks.filter(status=RiskStatus.ACCEPTED)
    assert accepted.exists() and all(r.acceptance_justification and r.acceptance_expires > today for r in accepted)
    assert all(r.closed_at and r.status_note for r in risks.filter(status=RiskStatus.CLOSED))
    assert not risks.filter(nist_refs=[], owasp_refs=[]).exclude(category=RiskCategory.ETHICS_BIAS).exists()
    # Every risk was assessed; reassessments are kept as history.
    assert not risks.filter(assessments__isnull=True).exists()
    assert RiskAssessment.objects.filter(risk__organization=demo).count() > risks.count()
    # The recurring problems: privacy, cost and hallucination risks on several projects.
    for category in (RiskCategory.DATA_PRIVACY, RiskCategory.COST, RiskCategory.RELIABILITY):
        assert risks.filter(category=category).values("project").distinct().count() >= 3


def test_credentials_file_must_be_a_regular_file(demo, tmp_path):
    # As root a chmod on a device (say /dev/null) would lock every other user out of it.
    fifo = tmp_path / "not-a-file"
    os.mkfifo(fifo)
    before = stat.S_IMODE(fifo.stat().st_mode)
    with pytest.raises(CommandError, match="not a regular file"):
        _seed(fifo, "--reset-passwords")
    assert stat.S_IMODE(fifo.stat().st_mode) == before
