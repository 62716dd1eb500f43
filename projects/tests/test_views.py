"""Web pages of the projects app: dashboard, project list, project page and its forms."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from ops.models import CostEntry, InfrastructureComponent, QualityMetric, Risk
from ops.tests.factories import (
    BudgetFactory,
    CostEntryFactory,
    InfrastructureComponentFactory,
    QualityMetricFactory,
    ReportFactory,
    RiskAssessmentFactory,
    RiskFactory,
)
from projects.models import Health, Project, Role, Stage, StageTransition, StatusUpdate
from projects.tests.factories import MembershipFactory, OrganizationFactory, ProjectFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def org():
    return OrganizationFactory(name="Acme Bank")


def member(org, role: Role, client=None):
    user = UserFactory()
    MembershipFactory(user=user, organization=org, role=role)
    if client is not None:
        client.force_login(user)
    return user


@pytest.fixture
def contributor(org, client):
    return member(org, Role.CONTRIBUTOR, client)


@pytest.fixture
def project(org):
    return ProjectFactory(organization=org, name="Support bot", stage=Stage.EVALUATION)


def grow_portfolio(org, n: int) -> None:
    """Add `n` projects with costs, budgets, risks, metrics, status and infrastructure."""
    for _ in range(n):
        p = ProjectFactory(organization=org, health=Health.AMBER, last_status_date=dt.date(2026, 1, 1))
        BudgetFactory(project=p, amount=Decimal(100))
        CostEntryFactory(project=p, date=dt.date.today(), amount=Decimal(500), input_tokens=10, model="gpt-4o")
        RiskFactory(project=p, likelihood=5, impact=5, next_review_date=dt.date(2026, 1, 1))
        QualityMetricFactory(project=p)
        InfrastructureComponentFactory(project=p)
        StatusUpdate.objects.create(project=p, date=dt.date(2026, 1, 1), health="amber", progress=5, summary="s")


class TestSignIn:
    def test_pages_redirect_anonymous_users_to_sign_in(self, client, project):
        for url in (reverse("projects:dashboard"), reverse("projects:list"), project.get_absolute_url()):
            response = client.get(url)
            assert response.status_code == 302
            assert response.url.startswith(reverse("login"))

    def test_sign_in_page_renders_and_signs_in(self, client, org):
        user = member(org, Role.VIEWER)
        assert client.get(reverse("login")).status_code == 200
        response = client.post(reverse("login"), {"username": user.username, "password": "correct-horse-battery"})
        assert response.status_code == 302
        assert client.get(reverse("projects:dashboard")).status_code == 200

    def test_wrong_password_shows_an_error(self, client, org):
        user = member(org, Role.VIEWER)
        response = client.post(reverse("login"), {"username": user.username, "password": "nope"})
        assert response.status_code == 200
        assert b"errorlist" in response.content

    def test_password_change_page_renders(self, client, contributor):
        response = client.get(reverse("password_change"))
        assert response.status_code == 200
        assert b"New password" in response.content

    def test_sign_out_is_a_post(self, client, contributor):
        response = client.post(reverse("logout"))
        assert response.status_code == 302
        assert client.get(reverse("projects:dashboard")).status_code == 302

    def test_user_without_organization_sees_how_to_join(self, client):
        client.force_login(UserFactory())
        response = client.get(reverse("projects:dashboard"))
        assert response.status_code == 403
        assert b"not in an organization yet" in response.content


class TestOrganizationSwitcher:
    def test_switching_changes_the_dashboard_organization(self, client, org):
        user = member(org, Role.VIEWER, client)
        other = OrganizationFactory(name="Beta Health")
        MembershipFactory(user=user, organization=other, role=Role.VIEWER)
        ProjectFactory(organization=other, name="Clinical notes")
        page = client.get(reverse("projects:dashboard")).content.decode()
        assert "Acme Bank portfolio" in page and 'name="organization"' in page
        response = client.post(reverse("projects:organization-switch"), {"organization": other.pk, "next": "/"})
        assert response.status_code == 302
        assert "Beta Health portfolio" in client.get(reverse("projects:dashboard")).content.decode()
        assert "Clinical notes" in client.get(reverse("projects:list")).content.decode()

    def test_switching_to_a_foreign_organization_is_404(self, client, contributor):
        foreign = OrganizationFactory()
        response = client.post(reverse("projects:organization-switch"), {"organization": foreign.pk})
        assert response.status_code == 404
        assert client.session.get("organization_id") != foreign.pk

    def test_opening_a_project_of_another_own_organization_switches_to_it(self, client, org, contributor):
        other = OrganizationFactory(name="Beta Health")
        MembershipFactory(user=contributor, organization=other, role=Role.VIEWER)
        project = ProjectFactory(organization=other)
        assert client.get(project.get_absolute_url()).status_code == 200
        assert client.session["organization_id"] == other.pk


class TestDashboard:
    def test_empty_portfolio_says_what_to_do(self, client, contributor):
        page = client.get(reverse("projects:dashboard")).content.decode()
        assert "No projects yet" in page and "Create the first project" in page

    def test_viewer_gets_no_create_button(self, client, org):
        member(org, Role.VIEWER, client)
        page = client.get(reverse("projects:dashboard")).content.decode()
        assert "No projects yet" in page and reverse("projects:create") not in page

    def test_shows_health_counts_attention_top_risks_and_reports(self, client, org, contributor):
        red = ProjectFactory(organization=org, name="Fraud radar", health=Health.RED, last_status_date=dt.date.today())
        ProjectFactory(organization=org, name="Calm one", health=Health.GREEN, last_status_date=dt.date.today())
        RiskFactory(project=red, title="Prompt injection", likelihood=5, impact=5)
        report = ReportFactory(organization=org)
        response = client.get(reverse("projects:dashboard"))
        overview = response.context["overview"]
        assert overview.health == {"green": 1, "amber": 0, "red": 1, "none": 0}
        assert [p.name for p in overview.needs_attention] == ["Fraud radar"]
        page = response.content.decode()
        assert "Prompt injection" in page and report.get_absolute_url() in page
        assert 'data-chart="{&quot;labels&quot;' in page and "<script>" not in page

    def test_spend_and_budget_per_month_come_from_the_database(self, client, org, contributor):
        p = ProjectFactory(organization=org)
        today = dt.date.today()
        CostEntryFactory(project=p, date=today, amount=Decimal("250.00"))
        CostEntryFactory(project=p, date=today, amount=Decimal("50.00"))
        BudgetFactory(
            project=p,
            period_start=today.replace(day=1),
            period_end=today.replace(day=1) + dt.timedelta(days=9),
            amount=Decimal(1000),
        )
        month = client.get(reverse("projects:dashboard")).context["overview"].months[-1]
        assert month.spend == Decimal("300.00")
        assert month.budget == Decimal("1000.00")

    def test_foreign_organization_data_never_shows(self, client, contributor):
        other = OrganizationFactory()
        RiskFactory(project=ProjectFactory(organization=other), title="Secret foreign risk")
        assert "Secret foreign risk" not in client.get(reverse("projects:dashboard")).content.decode()

    def test_query_count_is_constant_as_the_portfolio_grows(
        self, client, org, contributor, django_assert_max_num_queries
    ):
        grow_portfolio(org, 2)
        # Needs attention counts unmet gates too, as the status report does; the manager's week adds the risk
        # counts, the risk snapshots, the weekly spend (up to three), overdue reviews and stage moves.
        with django_assert_max_num_queries(18):
            assert client.get(reverse("projects:dashboard")).status_code == 200
        grow_portfolio(org, 20)
        with django_assert_max_num_queries(18):
            assert client.get(reverse("projects:dashboard")).status_code == 200


class TestProjectList:
    def test_lists_rows_with_stage_health_spend_and_risks(self, client, org, contributor):
        today = dt.date.today()
        p = ProjectFactory(organization=org, name="Support bot", health=Health.AMBER)
        BudgetFactory(project=p, amount=Decimal(1000), period_start=today - dt.timedelta(days=30), period_end=today)
        CostEntryFactory(project=p, amount=Decimal(1500), date=today)
        RiskFactory(project=p)
        response = client.get(reverse("projects:list"))
        row = response.context["page"].object_list[0]
        assert (row.spend_to_date, row.budget.amount, row.budget.spend, row.open_risks) == (1500, 1000, 1500, 1)
        assert row.budget.over_budget and row.budget.over_tolerance
        assert "Support bot" in response.content.decode()

    def test_filters_search_and_sorting(self, client, org, contributor):
        team = TeamFactory(organization=org)
        a = ProjectFactory(organization=org, name="Alpha chat", stage=Stage.PILOT, team=team, industry="finance")
        b = ProjectFactory(organization=org, name="Beta docs", stage=Stage.IDEATION, use_case="clinical_documentation")
        InfrastructureComponentFactory(project=b, provider="azure")
        CostEntryFactory(project=b, amount=Decimal(9))

        def names(**params):
            return [p.name for p in client.get(reverse("projects:list"), params).context["page"]]

        assert names(stage="pilot") == ["Alpha chat"]
        assert names(team=team.pk) == ["Alpha chat"]
        assert names(industry="finance") == ["Alpha chat"]
        assert names(use_case="clinical_documentation") == ["Beta docs"]
        assert names(provider="azure") == ["Beta docs"]
        assert names(q="docs") == ["Beta docs"]
        assert names(sort="-spend") == ["Beta docs", "Alpha chat"]
        assert names(sort="name") == ["Alpha chat", "Beta docs"]
        assert a.pk and "No project matches" in client.get(reverse("projects:list"), {"q": "zzz"}).content.decode()

    def test_paginates(self, client, org, contributor):
        for i in range(30):
            ProjectFactory(organization=org, name=f"P{i:02}")
        first = client.get(reverse("projects:list"))
        assert len(first.context["page"].object_list) == 25
        assert len(client.get(reverse("projects:list"), {"page": 2}).context["page"].object_list) == 5

    def test_htmx_filter_returns_only_the_table(self, client, org, contributor):
        ProjectFactory(organization=org, name="Alpha chat")
        response = client.get(reverse("projects:list"), {"q": "alpha"}, HTTP_HX_TARGET="project-table", **HTMX)
        page = response.content.decode()
        assert page.lstrip().startswith('<div id="project-table"') and "<html" not in page

    def test_other_organizations_projects_are_not_listed(self, client, contributor):
        ProjectFactory(name="Foreign project")
        assert "Foreign project" not in client.get(reverse("projects:list")).content.decode()

    def test_query_count_is_constant_as_the_portfolio_grows(
        self, client, org, contributor, django_assert_max_num_queries
    ):
        grow_portfolio(org, 2)
        with django_assert_max_num_queries(6):
            client.get(reverse("projects:list"), {"provider": "aws", "sort": "-risks"})
        grow_portfolio(org, 20)
        with django_assert_max_num_queries(6):
            client.get(reverse("projects:list"), {"provider": "aws", "sort": "-risks"})


class TestProjectCreateAndEdit:
    def test_contributor_creates_a_project(self, client, org, contributor):
        response = client.post(
            reverse("projects:create"),
            {
                "name": "Newsroom drafts",
                "industry": "media",
                "use_case": "content_generation",
                "ai_act_tier": "minimal",
            },
        )
        project = Project.objects.get(organization=org, name="Newsroom drafts")
        assert response.status_code == 302 and response.url == project.get_absolute_url()

    def test_invalid_dates_are_shown_and_nothing_is_written(self, client, org, contributor):
        response = client.post(
            reverse("projects:create"),
            {
                "name": "Late",
                "industry": "media",
                "use_case": "other",
                "ai_act_tier": "minimal",
                "start_date": "2026-05-01",
                "target_date": "2026-01-01",
            },
        )
        assert response.status_code == 200
        assert response.context["form"].errors
        assert not Project.objects.filter(name="Late").exists()

    def test_viewer_cannot_open_or_post_the_form(self, client, org):
        member(org, Role.VIEWER, client)
        assert client.get(reverse("projects:create")).status_code == 403
        assert (
            client.post(
                reverse("projects:create"),
                {"name": "X", "industry": "media", "use_case": "other", "ai_act_tier": "minimal"},
            ).status_code
            == 403
        )
        assert not Project.objects.filter(name="X").exists()

    def test_edit_changes_only_what_changed(self, client, org, contributor, project):
        data = {
            "name": "Support bot v2",
            "industry": "other",
            "use_case": "other",
            "ai_act_tier": "limited",
            "data_classification": "personal",
        }
        assert client.post(reverse("projects:edit", args=[project.pk]), data).status_code == 302
        project.refresh_from_db()
        assert (project.name, project.ai_act_tier, project.data_classification) == (
            "Support bot v2",
            "limited",
            "personal",
        )


class TestProjectPage:
    def test_shows_every_section(self, client, org, contributor, project):
        CostEntryFactory(project=project, amount=Decimal(70), input_tokens=1000, output_tokens=50, model="gpt-4o")
        RiskFactory(project=project, title="Hallucinated refunds", likelihood=4, impact=4)
        InfrastructureComponentFactory(project=project, name="Bedrock endpoint")
        QualityMetricFactory(project=project, value=0.8, threshold=0.9)
        page = client.get(project.get_absolute_url()).content.decode()
        for text in (
            "Lifecycle",
            "Gates for Pilot",
            "Hallucinated refunds",
            "Bedrock endpoint",
            "Breached",
            "gpt-4o",
            'data-testid="cost-data"',
        ):
            assert text in page, text

    def test_other_organizations_project_is_404(self, client, contributor):
        foreign = ProjectFactory()
        assert client.get(foreign.get_absolute_url()).status_code == 404
        assert client.post(reverse("projects:status-create", args=[foreign.pk]), {}).status_code == 404

    def test_viewer_sees_no_forms(self, client, org, project):
        member(org, Role.VIEWER, client)
        page = client.get(project.get_absolute_url()).content.decode()
        assert "Log a status update" not in page and "Move the stage" not in page and "Add a cost" not in page

    def test_contributor_sees_forms_but_no_manager_ones(self, client, contributor, project):
        page = client.get(project.get_absolute_url()).content.decode()
        stage_form = client.get(reverse("projects:form", args=[project.pk, "stage"]), **HTMX).content.decode()
        assert "Log a status update" in page and "Set a budget" not in page
        assert "Move to" in stage_form and "Override justification" not in stage_form

    def test_manager_sees_budget_and_override(self, client, org, project):
        member(org, Role.MANAGER, client)
        page = client.get(project.get_absolute_url()).content.decode()
        stage_form = client.get(reverse("projects:form", args=[project.pk, "stage"]), **HTMX).content.decode()
        assert "Set a budget" in page and "Override justification" in stage_form

    def test_query_count_is_constant_as_the_project_grows(
        self, client, org, contributor, project, django_assert_max_num_queries
    ):
        def grow(n):
            for i in range(n):
                CostEntryFactory(
                    project=project, date=dt.date.today() - dt.timedelta(days=30 * i), model=f"m{i}", input_tokens=5
                )
                RiskFactory(project=project)
                QualityMetricFactory(project=project, date=dt.date(2026, 1, 1) + dt.timedelta(days=i))
                InfrastructureComponentFactory(project=project)
                BudgetFactory(project=project)

        grow(2)
        # The budget status and the spend to date panels: one query each.
        with django_assert_max_num_queries(23):
            client.get(project.get_absolute_url())
        grow(20)
        with django_assert_max_num_queries(23):
            client.get(project.get_absolute_url())


class TestStatusUpdateForm:
    def test_htmx_post_logs_status_and_swaps_the_health_badge(self, client, contributor, project):
        data = {"date": dt.date.today().isoformat(), "health": "red", "progress": 40, "summary": "Vendor outage"}
        response = client.post(reverse("projects:status-create", args=[project.pk]), data, **HTMX)
        page = response.content.decode()
        assert response.status_code == 200
        assert 'id="section-status"' in page and "Vendor outage" in page and "Status update logged." in page
        assert 'id="project-header" class="project-head" hx-swap-oob="true"' in page and "Off track" in page
        project.refresh_from_db()
        assert project.health == Health.RED

    def test_errors_show_inline_and_nothing_is_written(self, client, contributor, project):
        data = {
            "date": (dt.date.today() + dt.timedelta(days=3)).isoformat(),
            "health": "red",
            "progress": 140,
            "summary": "",
        }
        response = client.post(reverse("projects:status-create", args=[project.pk]), data, **HTMX)
        page = response.content.decode()
        assert "Ensure this value is less than or equal to 100" in page and "This field is required" in page
        assert "hx-swap-oob" not in page
        assert not StatusUpdate.objects.exists()

    def test_future_date_refused_by_the_service_shows_on_the_date_field(self, client, contributor, project):
        data = {
            "date": (dt.date.today() + dt.timedelta(days=3)).isoformat(),
            "health": "red",
            "progress": 10,
            "summary": "x",
        }
        response = client.post(reverse("projects:status-create", args=[project.pk]), data, **HTMX)
        assert response.context["page_forms"]["status"].form.errors["date"] == ["In the future."]
        assert not StatusUpdate.objects.exists()

    def test_without_htmx_success_redirects(self, client, contributor, project):
        data = {"date": dt.date.today().isoformat(), "health": "green", "progress": 10, "summary": "ok"}
        response = client.post(reverse("projects:status-create", args=[project.pk]), data)
        assert response.status_code == 302 and response.url == project.get_absolute_url()

    def test_viewer_is_forbidden(self, client, org, project):
        member(org, Role.VIEWER, client)
        data = {"date": dt.date.today().isoformat(), "health": "green", "progress": 10, "summary": "ok"}
        assert client.post(reverse("projects:status-create", args=[project.pk]), data, **HTMX).status_code == 403
        assert not StatusUpdate.objects.exists()


class TestStageMove:
    def test_refused_move_lists_missing_gates(self, client, contributor, project):
        response = client.post(reverse("projects:transition", args=[project.pk]), {"to_stage": "pilot"}, **HTMX)
        page = response.content.decode()
        assert (
            "The move was refused" in page and "A budget is recorded" in page and "Infrastructure is recorded" in page
        )
        project.refresh_from_db()
        assert project.stage == Stage.EVALUATION and not StageTransition.objects.exists()

    def test_move_without_gates_succeeds(self, client, org, contributor):
        p = ProjectFactory(organization=org, stage=Stage.IDEATION)
        response = client.post(reverse("projects:transition", args=[p.pk]), {"to_stage": "data_preparation"}, **HTMX)
        assert "Stage moved." in response.content.decode()
        p.refresh_from_db()
        assert p.stage == Stage.DATA_PREPARATION

    def test_moving_back_without_a_note_is_refused_inline(self, client, contributor, project):
        response = client.post(reverse("projects:transition", args=[project.pk]), {"to_stage": "ideation"}, **HTMX)
        assert "needs a note" in response.content.decode()
        project.refresh_from_db()
        assert project.stage == Stage.EVALUATION

    def test_manager_override_moves_and_records_the_justification(self, client, org, project):
        member(org, Role.MANAGER, client)
        project.data_classification = "internal"
        project.save()
        response = client.post(
            reverse("projects:transition", args=[project.pk]),
            {"to_stage": "pilot", "override_reason": "Board approved a 2-week pilot"},
            **HTMX,
        )
        assert "Stage moved." in response.content.decode()
        transition = StageTransition.objects.get(project=project)
        assert transition.override_reason == "Board approved a 2-week pilot" and "budget" in transition.overridden_gates

    def test_contributor_override_is_forbidden(self, client, contributor, project):
        response = client.post(
            reverse("projects:transition", args=[project.pk]),
            {"to_stage": "pilot", "override_reason": "please"},
            **HTMX,
        )
        assert response.status_code == 403
        assert not StageTransition.objects.exists()

    def test_move_with_all_gates_met(self, client, org, contributor, project):
        project.data_classification = "internal"
        project.save()
        BudgetFactory(project=project)
        InfrastructureComponentFactory(project=project)
        QualityMetricFactory(project=project)
        RiskAssessmentFactory(risk=RiskFactory(project=project))
        client.post(reverse("projects:transition", args=[project.pk]), {"to_stage": "pilot"}, **HTMX)
        project.refresh_from_db()
        assert project.stage == Stage.PILOT


class TestOpsFormsOnTheProjectPage:
    def test_cost_added(self, client, contributor, project):
        data = {
            "date": dt.date.today().isoformat(),
            "category": "inference",
            "amount": "12.50",
            "model": "gpt-4o",
            "input_tokens": "1000",
        }
        response = client.post(reverse("ops:cost-create", args=[project.pk]), data, **HTMX)
        assert "Cost recorded." in response.content.decode()
        entry = CostEntry.objects.get(project=project)
        assert (entry.amount, entry.input_tokens, entry.output_tokens) == (Decimal("12.50"), 1000, 0)

    def test_negative_cost_shows_error_and_writes_nothing(self, client, contributor, project):
        data = {"date": dt.date.today().isoformat(), "category": "inference", "amount": "-1"}
        response = client.post(reverse("ops:cost-create", args=[project.pk]), data, **HTMX)
        assert "greater than or equal to 0" in response.content.decode()
        assert not CostEntry.objects.exists()

    def test_budget_needs_a_manager(self, client, contributor, project):
        data = {"period_start": "2026-01-01", "period_end": "2026-12-31", "amount": "1000", "tolerance_pct": "10"}
        assert client.post(reverse("ops:budget-create", args=[project.pk]), data, **HTMX).status_code == 403
        assert not project.budgets.exists()

    def test_manager_sets_budget_and_bad_period_is_shown(self, client, org, project):
        member(org, Role.MANAGER, client)
        bad = {"period_start": "2026-12-31", "period_end": "2026-01-01", "amount": "1000", "tolerance_pct": "10"}
        response = client.post(reverse("ops:budget-create", args=[project.pk]), bad, **HTMX)
        assert response.context["page_forms"]["budget"].form.errors and not project.budgets.exists()
        good = bad | {"period_start": "2026-01-01", "period_end": "2026-12-31"}
        client.post(reverse("ops:budget-create", args=[project.pk]), good, **HTMX)
        assert project.budgets.count() == 1

    def test_risk_added_shows_in_the_mini_heat_map(self, client, contributor, project):
        data = {"title": "Leaks PII", "category": "data_privacy", "likelihood": 4, "impact": 5, "treatment": "mitigate"}
        response = client.post(reverse("ops:risk-create", args=[project.pk]), data, **HTMX)
        page = response.content.decode()
        assert "Leaks PII" in page and 'aria-label="Likelihood 4, impact 5: 1 risk"' in page
        assert Risk.objects.get(project=project).severity == "critical"

    def test_risk_owner_outside_the_organization_is_refused(self, client, contributor, project):
        outsider = UserFactory()
        data = {
            "title": "X",
            "category": "security",
            "likelihood": 2,
            "impact": 2,
            "treatment": "mitigate",
            "owner": outsider.pk,
        }
        response = client.post(reverse("ops:risk-create", args=[project.pk]), data, **HTMX)
        assert "owner" in response.context["page_forms"]["risk"].form.errors
        assert not Risk.objects.exists()

    def test_catalogue_risk_in_one_click(self, client, contributor, project):
        response = client.post(reverse("ops:risk-catalogue", args=[project.pk]), {"key": "prompt_injection"}, **HTMX)
        assert "Prompt injection" in response.content.decode()
        assert Risk.objects.get(project=project).owasp_refs == ["LLM01"]

    def test_unknown_catalogue_key_writes_nothing(self, client, contributor, project):
        client.post(reverse("ops:risk-catalogue", args=[project.pk]), {"key": "nope"}, **HTMX)
        assert not Risk.objects.exists()

    def test_infrastructure_recorded_with_frameworks(self, client, contributor, project):
        data = {
            "name": "vLLM cluster",
            "kind": "compute",
            "provider": "on_premises",
            "hosting": "local",
            "environment": "production",
            "frameworks": "vLLM, LangChain",
            "gpu_count": 4,
            "gpu_type": "H100",
        }
        response = client.post(reverse("ops:infrastructure-create", args=[project.pk]), data, **HTMX)
        assert "vLLM cluster" in response.content.decode()
        assert InfrastructureComponent.objects.get(project=project).frameworks == ["vLLM", "LangChain"]

    def test_infrastructure_missing_name_writes_nothing(self, client, contributor, project):
        data = {"kind": "compute", "provider": "aws", "hosting": "cloud", "environment": "dev", "gpu_count": 0}
        response = client.post(reverse("ops:infrastructure-create", args=[project.pk]), data, **HTMX)
        assert "This field is required" in response.content.decode()
        assert not InfrastructureComponent.objects.exists()

    def test_metric_recorded_against_threshold(self, client, contributor, project):
        data = {
            "date": dt.date.today().isoformat(),
            "metric": "hallucination_rate",
            "value": "0.08",
            "threshold": "0.05",
        }
        response = client.post(reverse("ops:metric-create", args=[project.pk]), data, **HTMX)
        assert "Breached" in response.content.decode()
        assert QualityMetric.objects.get(project=project).higher_is_better is False

    def test_custom_metric_without_name_is_refused(self, client, contributor, project):
        data = {"date": dt.date.today().isoformat(), "metric": "custom", "value": "1"}
        response = client.post(reverse("ops:metric-create", args=[project.pk]), data, **HTMX)
        assert response.context["page_forms"]["metric"].form.errors
        assert not QualityMetric.objects.exists()

    def test_gates_refresh_out_of_band_after_adding_infrastructure(self, client, contributor, project):
        data = {
            "name": "Endpoint",
            "kind": "compute",
            "provider": "aws",
            "hosting": "cloud",
            "environment": "dev",
            "gpu_count": 0,
        }
        page = client.post(reverse("ops:infrastructure-create", args=[project.pk]), data, **HTMX).content.decode()
        assert 'id="section-stage" class="section" aria-labelledby="stage-title" hx-swap-oob="true"' in page
        assert '<li class="passed">Infrastructure is recorded' in page
