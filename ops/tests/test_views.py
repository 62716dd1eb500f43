"""Web pages of the ops app: the risk page, a risk's page and its decisions, the report archive."""

import datetime as dt

import pytest
from django.urls import reverse

from ops.models import Report, ReportKind, ReportState, Risk, RiskSource, RiskStatus
from ops.services.reports import report_build
from ops.tests.factories import ReportFactory, RiskFactory
from projects.models import Role
from projects.services import organization_today
from projects.tests.factories import MembershipFactory, OrganizationFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def org():
    return OrganizationFactory(name="Acme Bank")


def sign_in(client, org, role: Role):
    user = UserFactory()
    MembershipFactory(user=user, organization=org, role=role)
    client.force_login(user)
    return user


@pytest.fixture
def project(org):
    return ProjectFactory(organization=org, name="Fraud radar")


class TestRiskPage:
    def test_heat_map_counts_active_risks_and_a_cell_filters_the_register(self, client, org, project):
        sign_in(client, org, Role.VIEWER)
        RiskFactory(project=project, title="A", likelihood=4, impact=5)
        RiskFactory(project=project, title="B", likelihood=4, impact=5)
        RiskFactory(project=project, title="C", likelihood=1, impact=1)
        RiskFactory(project=project, title="Closed one", likelihood=4, impact=5, status=RiskStatus.CLOSED)
        response = client.get(reverse("ops:risks"))
        cells = {(c.likelihood, c.impact): c.count for row in response.context["overview"].heatmap for c in row}
        assert cells[(4, 5)] == 2 and cells[(1, 1)] == 1 and sum(cells.values()) == 3
        filtered = client.get(reverse("ops:risks"), {"likelihood": 4, "impact": 5})
        assert [r.title for r in filtered.context["page"]] == ["A", "B"]
        # The heat map keeps every cell while one is selected.
        assert sum(c.count for row in filtered.context["overview"].heatmap for c in row) == 3

    def test_filters_by_category_project_owner_and_status(self, client, org, project):
        owner = sign_in(client, org, Role.MANAGER)
        other = ProjectFactory(organization=org)
        RiskFactory(project=project, title="Privacy", category="data_privacy", owner=owner)
        RiskFactory(project=other, title="Cost", category="cost")
        RiskFactory(project=other, title="Gone", category="cost", status=RiskStatus.CLOSED)

        def titles(**params):
            return sorted(r.title for r in client.get(reverse("ops:risks"), params).context["page"])

        assert titles(category="data_privacy") == ["Privacy"]
        assert titles(project=other.pk) == ["Cost"]
        assert titles(owner=owner.pk) == ["Privacy"]
        assert titles(status="closed") == ["Gone"]
        assert titles(status="all") == ["Cost", "Gone", "Privacy"]

    def test_top_risks_overdue_reviews_and_signals(self, client, org, project):
        sign_in(client, org, Role.VIEWER)
        RiskFactory(project=project, title="Overdue", next_review_date=dt.date(2020, 1, 1))
        RiskFactory(
            project=project,
            title="Spend over budget",
            source=RiskSource.SIGNAL,
            signal_key="over_budget:1",
            signal_rule="over_budget",
        )
        overview = client.get(reverse("ops:risks")).context["overview"]
        assert [r.title for r in overview.overdue] == ["Overdue"]
        assert [r.title for r in overview.signals] == ["Spend over budget"]
        assert len(overview.top_risks) == 2

    def test_htmx_filter_returns_only_the_results(self, client, org, project):
        sign_in(client, org, Role.VIEWER)
        page = client.get(
            reverse("ops:risks"), {"category": "cost"}, HTTP_HX_TARGET="risk-results", **HTMX
        ).content.decode()
        assert page.lstrip().startswith('<div id="risk-results"') and "<html" not in page

    def test_empty_register_says_where_risks_come_from(self, client, org):
        sign_in(client, org, Role.VIEWER)
        assert "No risk matches" in client.get(reverse("ops:risks")).content.decode()

    def test_other_organizations_risks_never_show(self, client, org):
        sign_in(client, org, Role.VIEWER)
        RiskFactory(title="Foreign risk")
        assert "Foreign risk" not in client.get(reverse("ops:risks")).content.decode()


class TestRiskDetail:
    def test_viewer_reads_without_forms(self, client, org, project):
        sign_in(client, org, Role.VIEWER)
        risk = RiskFactory(project=project, title="Leak")
        page = client.get(risk.get_absolute_url()).content.decode()
        assert "Leak" in page and "Edit or reassess" not in page and "Accept the risk" not in page

    def test_contributor_can_close_but_not_accept(self, client, org, project):
        sign_in(client, org, Role.CONTRIBUTOR)
        risk = RiskFactory(project=project)
        page = client.get(risk.get_absolute_url()).content.decode()
        assert "Close the risk" in page and "Accept the risk" not in page
        response = client.post(
            reverse("ops:risk-accept", args=[risk.pk]), {"justification": "x", "expires": "2099-01-01"}, **HTMX
        )
        assert response.status_code == 403
        risk.refresh_from_db()
        assert risk.status == RiskStatus.OPEN

    def test_cross_organization_risk_is_404(self, client, org):
        sign_in(client, org, Role.MANAGER)
        risk = RiskFactory()
        assert client.get(risk.get_absolute_url()).status_code == 404
        assert client.post(reverse("ops:risk-close", args=[risk.pk]), {"note": "x"}).status_code == 404
        risk.refresh_from_db()
        assert risk.status == RiskStatus.OPEN

    def test_reassessment_updates_score_and_records_it(self, client, org, project):
        sign_in(client, org, Role.CONTRIBUTOR)
        risk = RiskFactory(project=project, likelihood=2, impact=2)
        data = {
            "title": risk.title,
            "category": risk.category,
            "likelihood": 5,
            "impact": 4,
            "treatment": "mitigate",
            "status": "mitigating",
            "note": "Incident last week",
        }
        response = client.post(reverse("ops:risk-edit", args=[risk.pk]), data, **HTMX)
        assert "Risk saved." in response.content.decode()
        risk.refresh_from_db()
        assert (risk.score, risk.severity, risk.status) == (20, "critical", "mitigating")
        assert risk.assessments.get().note == "Incident last week"

    def test_edit_with_bad_input_shows_errors_and_keeps_the_risk(self, client, org, project):
        sign_in(client, org, Role.CONTRIBUTOR)
        risk = RiskFactory(project=project, title="Keep me", likelihood=2, impact=2)
        data = {
            "title": "",
            "category": risk.category,
            "likelihood": 9,
            "impact": 4,
            "treatment": "mitigate",
            "status": "open",
        }
        response = client.post(reverse("ops:risk-edit", args=[risk.pk]), data, **HTMX)
        errors = response.context["edit_form"].errors
        assert "title" in errors and "likelihood" in errors
        risk.refresh_from_db()
        assert (risk.title, risk.likelihood) == ("Keep me", 2)

    def test_manager_accepts_with_justification_and_future_expiry(self, client, org, project):
        sign_in(client, org, Role.MANAGER)
        risk = RiskFactory(project=project)
        past = client.post(
            reverse("ops:risk-accept", args=[risk.pk]), {"justification": "ok", "expires": "2020-01-01"}, **HTMX
        )
        assert "expire in the future" in past.content.decode()
        risk.refresh_from_db()
        assert risk.status == RiskStatus.OPEN
        client.post(
            reverse("ops:risk-accept", args=[risk.pk]),
            {"justification": "Residual risk tolerable", "expires": organization_today(org) + dt.timedelta(days=90)},
            **HTMX,
        )
        risk.refresh_from_db()
        assert (risk.status, risk.acceptance_justification) == (RiskStatus.ACCEPTED, "Residual risk tolerable")

    def test_close_needs_a_note(self, client, org, project):
        sign_in(client, org, Role.CONTRIBUTOR)
        risk = RiskFactory(project=project)
        response = client.post(reverse("ops:risk-close", args=[risk.pk]), {"note": ""}, **HTMX)
        assert "This field is required" in response.content.decode()
        risk.refresh_from_db()
        assert risk.status == RiskStatus.OPEN
        response = client.post(reverse("ops:risk-close", args=[risk.pk]), {"note": "Model replaced"})
        assert response.status_code == 302
        risk.refresh_from_db()
        assert (risk.status, risk.status_note) == (RiskStatus.CLOSED, "Model replaced")


class TestReports:
    def test_archive_groups_by_week_and_filters_by_kind(self, client, org):
        sign_in(client, org, Role.VIEWER)
        ReportFactory(
            organization=org, kind=ReportKind.STATUS, period_start=dt.date(2026, 3, 2), period_end=dt.date(2026, 3, 8)
        )
        ReportFactory(
            organization=org, kind=ReportKind.RISK, period_start=dt.date(2026, 3, 2), period_end=dt.date(2026, 3, 8)
        )
        ReportFactory(
            organization=org, kind=ReportKind.STATUS, period_start=dt.date(2026, 3, 9), period_end=dt.date(2026, 3, 15)
        )
        ReportFactory(kind=ReportKind.STATUS)  # another organization's
        weeks = client.get(reverse("ops:reports")).context["weeks"]
        assert [len(v) for v in weeks.values()] == [1, 2]
        risk_only = client.get(reverse("ops:reports"), {"kind": "risk"}).context["weeks"]
        assert [r.kind for v in risk_only.values() for r in v] == ["risk"]

    def test_empty_archive_explains_the_schedule(self, client, org):
        sign_in(client, org, Role.VIEWER)
        page = client.get(reverse("ops:reports")).content.decode()
        assert "No reports yet" in page and "Generate a report now" not in page

    def test_generate_now_needs_a_manager(self, client, org):
        sign_in(client, org, Role.CONTRIBUTOR)
        response = client.post(reverse("ops:report-create"), {"kind": "status", "week": "2026-03-04"})
        assert response.status_code == 403
        assert not Report.objects.exists()

    def test_generate_now_requests_the_week_and_shows_progress(self, client, org):
        sign_in(client, org, Role.MANAGER)
        response = client.post(reverse("ops:report-create"), {"kind": "risk", "week": "2026-03-04"})
        report = Report.objects.get(organization=org)
        assert (report.period_start, report.period_end, report.kind) == (
            dt.date(2026, 3, 2),
            dt.date(2026, 3, 8),
            "risk",
        )
        assert response.status_code == 302 and response.url == report.get_absolute_url()
        page = client.get(report.get_absolute_url()).content.decode()
        assert reverse("ops:report-progress", args=[report.pk]) in page and 'hx-trigger="every 2s"' in page
        progress = client.get(reverse("ops:report-progress", args=[report.pk]), **HTMX)
        assert "HX-Refresh" not in progress
        report_build(report_id=report.pk)
        done = client.get(reverse("ops:report-progress", args=[report.pk]), **HTMX)
        assert done["HX-Refresh"] == "true"

    def test_generate_now_with_a_bad_kind_shows_the_error(self, client, org):
        sign_in(client, org, Role.MANAGER)
        response = client.post(reverse("ops:report-create"), {"kind": "nope", "week": "2026-03-04"})
        assert response.status_code == 400 and response.context["request_form"].errors["kind"]
        assert not Report.objects.exists()

    @pytest.mark.parametrize("kind", [ReportKind.STATUS, ReportKind.RISK])
    def test_ready_report_renders_with_chart_tables_and_downloads(self, client, org, project, kind):
        sign_in(client, org, Role.VIEWER)
        RiskFactory(project=project, title="Shown in the report", likelihood=5, impact=5)
        report = ReportFactory(
            organization=org, kind=kind, period_start=dt.date.today() - dt.timedelta(days=6), period_end=dt.date.today()
        )
        report_build(report_id=report.pk)
        report.refresh_from_db()
        assert report.state == ReportState.READY
        page = client.get(report.get_absolute_url()).content.decode()
        assert 'data-chart="{&quot;labels&quot;' in page and "Summary" in page
        assert ("Shown in the report" if kind == ReportKind.RISK else "Fraud radar") in page
        markdown = client.get(reverse("ops:report-download", args=[report.pk, "md"]))
        assert markdown["Content-Type"].startswith("text/markdown") and "attachment" in markdown["Content-Disposition"]
        csv = client.get(reverse("ops:report-download", args=[report.pk, "csv"]))
        assert csv["Content-Type"].startswith("text/csv") and csv.content
        assert client.get(reverse("ops:report-download", args=[report.pk, "pdf"])).status_code == 404

    def test_download_of_a_pending_report_redirects_to_its_progress(self, client, org):
        sign_in(client, org, Role.VIEWER)
        report = ReportFactory(organization=org)
        response = client.get(reverse("ops:report-download", args=[report.pk, "csv"]))
        assert response.status_code == 302 and response.url == report.get_absolute_url()

    def test_cross_organization_report_is_404(self, client, org):
        sign_in(client, org, Role.MANAGER)
        report = ReportFactory()
        assert client.get(report.get_absolute_url()).status_code == 404
        assert client.get(reverse("ops:report-download", args=[report.pk, "md"])).status_code == 404

    def test_failed_report_offers_a_retry_to_managers(self, client, org):
        sign_in(client, org, Role.MANAGER)
        report = ReportFactory(organization=org, state=ReportState.FAILED, error="Database went away")
        page = client.get(report.get_absolute_url()).content.decode()
        assert "Database went away" in page and "Try again" in page


def test_error_pages_use_the_app_layout(client, org, project):
    sign_in(client, org, Role.VIEWER)
    missing = client.get("/no-such-page/")
    assert missing.status_code == 404 and "Page not found" in missing.content.decode()
    forbidden = client.post(reverse("ops:risk-create", args=[project.pk]), {"title": "x"})
    assert forbidden.status_code == 403 and "Not allowed" in forbidden.content.decode()
    assert not Risk.objects.exists()
