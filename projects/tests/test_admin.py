"""The admin: every page of every projects/ops model answers, history is read-only, lists do not grow queries."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from ops.imports.models import BilledCost, BillingMappingRule, ChargeCategory, ImportFormat, ImportJob, MappingField
from ops.models import (
    BudgetThresholdCrossing,
    CostEntry,
    EnergyRun,
    ExchangeRate,
    ReferenceRate,
    ReminderKind,
    ReviewReminder,
    Risk,
    RiskAssessment,
    RiskCategory,
    RiskSnapshot,
    SpendSnapshot,
)
from ops.tests.factories import (
    BudgetFactory,
    CostEntryFactory,
    InfrastructureComponentFactory,
    ModelPriceFactory,
    QualityMetricFactory,
    ReportFactory,
    RiskAssessmentFactory,
    RiskFactory,
)
from projects.models import (
    ApiToken,
    CostCentre,
    Health,
    Invitation,
    NotificationKind,
    NotificationSubscription,
    Project,
    Role,
    Stage,
    StageTransition,
    StatusUpdate,
)
from projects.services import service_token_create
from projects.tests.factories import MembershipFactory, ProjectFactory, TeamFactory

READ_ONLY = {
    "projects.StageTransition",
    "projects.ServiceAccount",
    "projects.Invitation",
    "projects.NotificationSubscription",  # each member's own choice
    "projects.AuditEvent",
    "ops.RiskAssessment",
    "ops.RiskSnapshot",
    "ops.EnergyRun",
    "ops.SpendSnapshot",
    "ops.ReviewReminder",
    "ops.BudgetThresholdCrossing",
    "ops.ReferenceRate",
    "ops.ImportJob",
    "ops.BilledCost",
}


def _registered() -> list:
    return [m for m in admin.site._registry if m._meta.app_label in ("projects", "ops")]


def _url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _project_with_everything(n: int = 0) -> Project:
    member = MembershipFactory(role=Role.MANAGER)
    team = TeamFactory(organization=member.organization)
    project = ProjectFactory(organization=member.organization, team=team, technical_lead=member.user)
    now = timezone.now()
    StageTransition.objects.create(project=project, from_stage=Stage.IDEATION, to_stage=Stage.DATA_PREPARATION, at=now)
    StatusUpdate.objects.create(
        project=project, author=member.user, date=dt.date(2026, 3, 6), health=Health.GREEN, progress=20, summary="ok"
    )
    CostCentre.objects.create(organization=project.organization, code=f"CC-{n}", name="Platform", owner=member.user)
    budget = BudgetFactory(project=project)
    BudgetThresholdCrossing.objects.create(
        budget=budget,
        period_start=budget.period_start,
        period_end=budget.period_end,
        threshold_pct=Decimal(80),
        amount=budget.amount,
        spend=Decimal(900),
        crossed_on=budget.period_start,
    )
    ExchangeRate.objects.create(
        organization=project.organization,
        currency="GBP",
        quote_currency="EUR",
        valid_from=dt.date(2026, 3, 1),
        rate=Decimal("1.17"),
    )
    # Reference rates belong to no organization: one day per project keeps (date, currency) unique.
    ReferenceRate.objects.create(
        date=dt.date(2026, 3, 1) + dt.timedelta(days=n), currency="USD", per_euro=Decimal("1.08")
    )
    job = ImportJob.objects.create(
        organization=project.organization, format=ImportFormat.FOCUS, filename="bill.csv", created_by=member.user
    )
    BillingMappingRule.objects.create(
        organization=project.organization,
        field=MappingField.SERVICE_NAME,
        value="Azure OpenAI",
        project=project,
        created_by=member.user,
    )
    march = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    BilledCost.objects.create(
        organization=project.organization,
        project=project,
        import_job=job,
        source="Microsoft",
        line=2,
        billing_period_start=march,
        billing_period_end=dt.datetime(2026, 4, 1, tzinfo=dt.UTC),
        charge_period_start=march,
        charge_period_end=march + dt.timedelta(days=1),
        charge_category=ChargeCategory.USAGE,
        billed_cost=Decimal("12.5"),
        currency="EUR",
        service_name="Azure OpenAI",
        row_hash=f"{n:032d}",
    )
    price = ModelPriceFactory(organization=project.organization)
    CostEntryFactory(project=project, model="gpt-4o", price=price, created_by=member.user)
    InfrastructureComponentFactory(project=project)
    QualityMetricFactory(project=project)
    risk = RiskFactory(project=project, owner=member.user)
    RiskAssessmentFactory(risk=risk, by=member.user)
    ReportFactory(organization=project.organization, project=project)
    ApiToken.objects.create(user=member.user, name=f"gateway {n}", prefix="llmt_abc", key_hash=f"{n:064d}")
    admin_user = MembershipFactory(organization=project.organization, role=Role.ADMIN).user
    service_token_create(organization=project.organization, scope="ingest", name=f"otlp {n}", by=admin_user)
    Invitation.objects.create(
        organization=project.organization, email=f"invitee{n}@example.com", key_hash=f"{n:064d}", expires_at=now
    )
    NotificationSubscription.objects.create(
        user=member.user, organization=project.organization, kind=NotificationKind.RISK_DIGEST, enabled=False
    )
    RiskSnapshot.objects.create(organization=project.organization, date=dt.date(2026, 3, 1), high=1)
    SpendSnapshot.objects.create(project=project, date=dt.date(2026, 3, 1), spend_day=Decimal(5))
    EnergyRun.objects.create(
        organization=project.organization,
        project=project,
        run_id=f"run-{n}",
        recorded_at=now,
        duration_s=Decimal(60),
        energy_kwh=Decimal("0.5"),
        emissions_kg=Decimal("0.2"),
    )
    ReviewReminder.objects.create(
        risk=risk, kind=ReminderKind.OVERDUE, review_date=dt.date(2026, 3, 1), recipient="a@example.com", sent_at=now
    )
    return project


@pytest.fixture
def portfolio(db):
    return [_project_with_everything(n) for n in range(2)]


def test_every_model_of_both_apps_is_registered():
    from django.apps import apps

    models = {m for app in ("projects", "ops") for m in apps.get_app_config(app).get_models()}
    # The OTLP receiver's span keys are its idempotency bookkeeping, purged after a week, and the admin
    # cannot show a composite primary key.
    models.discard(apps.get_model("ops", "OtlpSpanKey"))
    # Idempotency keys are the API's bookkeeping of answers to replay, purged after a day.
    models.discard(apps.get_model("projects", "IdempotencyKey"))
    assert models == set(_registered())


def test_every_changelist_search_and_change_page_answers_for_a_superuser(admin_client, portfolio):
    for model in _registered():
        assert model.objects.exists(), model
        for params in ("", "?q=a"):
            response = admin_client.get(_url(model, "changelist") + params)
            assert response.status_code == 200, (model, params)
        obj = model.objects.first()
        assert admin_client.get(_url(model, "change", obj.pk)).status_code == 200, model


def test_add_page_answers_except_for_history_which_cannot_be_added(admin_client, portfolio):
    for model in _registered():
        expected = 403 if model._meta.label in READ_ONLY else 200
        assert admin_client.get(_url(model, "add")).status_code == expected, model


def test_history_cannot_be_changed_or_deleted_in_the_admin(admin_client, portfolio):
    transition = StageTransition.objects.first()
    response = admin_client.post(_url(StageTransition, "change", transition.pk), {"note": "rewritten"})
    assert response.status_code == 403
    assert admin_client.post(_url(StageTransition, "delete", transition.pk), {"post": "yes"}).status_code == 403
    assessment = RiskAssessment.objects.first()
    assert admin_client.post(_url(RiskAssessment, "delete", assessment.pk), {"post": "yes"}).status_code == 403
    transition.refresh_from_db()
    assert transition.note == "" and RiskAssessment.objects.filter(pk=assessment.pk).exists()


def test_generated_risk_fields_are_shown_read_only(admin_client, portfolio):
    risk = Risk.objects.first()
    response = admin_client.get(_url(Risk, "change", risk.pk))
    form = response.context["adminform"].form
    assert "score" not in form.fields and "severity" not in form.fields
    assert "likelihood" in form.fields
    assert str(risk.score) in response.content.decode()


def test_changelists_cost_the_same_queries_for_2_or_12_projects(admin_client, db):
    def queries() -> dict[str, int]:
        counts = {}
        for model in _registered():
            with CaptureQueriesContext(connection) as ctx:
                assert admin_client.get(_url(model, "changelist")).status_code == 200
            counts[model._meta.label] = len(ctx)
        return counts

    for n in range(2):
        _project_with_everything(n)
    few = queries()
    for n in range(2, 12):
        _project_with_everything(n)
    assert queries() == few


def test_project_page_shows_only_the_newest_cost_entries_and_links_to_all(
    admin_client, db, django_assert_max_num_queries
):
    project = _project_with_everything()
    CostEntry.objects.bulk_create(
        CostEntry(project=project, date=dt.date(2025, 1, 1) + dt.timedelta(days=d), category="inference", amount=1)
        for d in range(60)
    )
    with django_assert_max_num_queries(40):
        response = admin_client.get(_url(Project, "change", project.pk))
    inline = next(f for f in response.context["inline_admin_formsets"] if f.formset.model is CostEntry)
    shown = [form.instance.date for form in inline.formset.forms]
    assert len(shown) == 20 and shown == sorted(shown, reverse=True)
    assert f"project__id__exact={project.pk}" in response.content.decode()


def test_risk_added_on_a_project_page_belongs_to_the_projects_organization(admin_client, db):
    project = _project_with_everything()
    page = admin_client.get(_url(Project, "change", project.pk))
    data = _form_data(page)
    prefix = next(f.formset.prefix for f in page.context["inline_admin_formsets"] if f.formset.model is Risk)
    total = int(data[f"{prefix}-TOTAL_FORMS"])
    data |= {
        f"{prefix}-TOTAL_FORMS": str(total + 1),
        f"{prefix}-{total}-title": "Prompt injection via product reviews",
        f"{prefix}-{total}-category": RiskCategory.SECURITY,
        f"{prefix}-{total}-likelihood": "4",
        f"{prefix}-{total}-impact": "5",
        f"{prefix}-{total}-status": "open",
    }
    response = admin_client.post(_url(Project, "change", project.pk), data)
    assert response.status_code == 302, response.context and response.context["errors"]
    risk = Risk.objects.get(title="Prompt injection via product reviews")
    assert (risk.project, risk.organization, risk.score) == (project, project.organization, 20)


def _form_data(page) -> dict[str, str]:
    """Return what the browser would post back for an unchanged admin change form."""
    data: dict[str, str] = {}

    def add(form) -> None:
        for name, field in form.fields.items():
            value = form[name].value()
            if value is None or value is False:
                continue
            key = form.add_prefix(name)
            data[key] = field.widget.format_value(value) if hasattr(field.widget, "format_value") else value
            if isinstance(value, list | tuple):
                data[key] = [str(v) for v in value]
            elif hasattr(value, "pk"):
                data[key] = str(value.pk)

    add(page.context["adminform"].form)
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        add(formset.management_form)
        for form in formset.forms:
            add(form)
    return {k: ("" if v is None else v) for k, v in data.items()}


def test_a_token_created_in_the_admin_shows_its_key_once_and_stores_only_the_hash(admin_client, portfolio):
    from projects.tokens import hash_key

    user = MembershipFactory().user
    response = admin_client.post(
        _url(ApiToken, "add"), {"user": user.pk, "name": "ci pipeline", "your_password": "password"}, follow=True
    )
    assert response.status_code == 200
    message = next(str(m) for m in response.context["messages"] if "ci pipeline" in str(m))
    raw_key = message.split(": ")[1].split(" ")[0]
    token = ApiToken.objects.get(user=user, name="ci pipeline")
    assert token.key_hash == hash_key(raw_key) and raw_key not in token.key_hash
    assert ApiToken.objects.filter(user=user).count() == 1


def test_the_admin_mints_no_token_without_the_operators_own_password(admin_client, portfolio):
    """A stolen admin session cannot mint a token for anybody: the add form asks for the password again."""
    user = MembershipFactory().user
    for guess in ("", "not-it"):
        response = admin_client.post(
            _url(ApiToken, "add"), {"user": user.pk, "name": "thief", "your_password": guess}, follow=True
        )
        assert response.status_code == 200
        assert "your_password" in response.context["adminform"].form.errors
    assert not ApiToken.objects.filter(user=user).exists()
