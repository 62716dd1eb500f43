"""Hardening of risks and exports, each test an attack a tenant's member could make (points 8–11 and extras).

Formula and Markdown injection in report exports, an acceptance kept through a contributor's
escalation, close and accept racing, lone surrogates in bulk ingestion, a contributor closing a
critical risk, an acceptance that never ends.
"""

import csv
import datetime as dt
import io
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from ops.models import CostEntry, ReportKind, Risk, RiskAssessment, RiskStatus
from ops.selectors.reports import MD_RISK_COLUMNS, report_csv, report_markdown, report_week
from ops.services import report_build, risk_accept
from ops.tests.factories import ModelPriceFactory, ReportFactory, RiskFactory
from projects.models import AuditEvent, Role
from projects.services import api_token_create, organization_today
from projects.tests.api_support import _fresh_throttle, as_role, client_for  # noqa: F401
from projects.tests.factories import ProjectFactory, member
from tests.concurrency import at_once
from tracker.exports import csv_cell, markdown_text

ROOT = Path(__file__).resolve().parents[2]
FORMULA = '=HYPERLINK("http://evil/","x")'
HTMX = {"HTTP_HX_REQUEST": "true"}


def _risk_report(org):
    start, end = report_week(organization_today(org))
    report = ReportFactory(organization=org, kind=ReportKind.RISK, period_start=start, period_end=end)
    return report_build(report_id=report.pk)


def _accepted(project, manager, *, likelihood=2, impact=2) -> Risk:
    risk = RiskFactory(project=project, likelihood=likelihood, impact=impact)
    expires = organization_today(project.organization) + dt.timedelta(days=90)
    return risk_accept(risk=risk, by=manager, justification="Vendor indemnity covers it", expires=expires)


# 8. Exports: formulas and Markdown


@pytest.mark.django_db
def test_a_formula_risk_title_comes_out_of_the_report_csv_as_text(project):
    RiskFactory(project=project, title=FORMULA, likelihood=5, impact=5)
    RiskFactory(project=project, title="@SUM(A1:A9)", likelihood=4, impact=4)

    rows = list(csv.DictReader(io.StringIO(report_csv(_risk_report(project.organization)))))

    titles = {row["title"] for row in rows if row["section"] == "top_risks"}
    assert titles == {"'" + FORMULA, "'@SUM(A1:A9)"}
    assert {row["score"] for row in rows if row["section"] == "top_risks"} == {"25", "16"}


@pytest.mark.django_db
def test_numbers_stay_raw_in_the_csv_negative_ones_included(project):
    ProjectFactory(organization=project.organization, name="-2+3 =cmd|' /C calc'!A0")
    start, end = report_week(organization_today(project.organization))
    report = ReportFactory(organization=project.organization, period_start=start, period_end=end)
    report = report_build(report_id=report.pk)
    report.data["projects"][0]["spend_period"] = "-12.50"  # a credit note: JSON keeps decimals as strings

    rows = list(csv.DictReader(io.StringIO(report_csv(report))))

    assert rows[0]["spend_period"] == "-12.50"
    assert {row["name"] for row in rows} == {project.name, "'-2+3 =cmd|' /C calc'!A0"}


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (FORMULA, "'" + FORMULA),
        ("+1+1", "'+1+1"),
        ("-1+1", "'-1+1"),
        ("@A1", "'@A1"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-", "'-"),
        ("-12.50", "-12.50"),
        ("12", "12"),
        ("plain = text", "plain = text"),
        (Decimal("-12.50"), Decimal("-12.50")),
        (-3, -3),
        (-1.5, -1.5),
        (dt.date(2026, 3, 1), dt.date(2026, 3, 1)),
        (None, None),
    ],
)
def test_csv_cell_neutralises_text_formulas_only(value, written):
    assert csv_cell(value) == written


def test_no_module_writes_csv_without_csv_cell():
    """One writer for every CSV: a new export cannot forget the neutralisation."""
    writers = [
        path.relative_to(ROOT).as_posix()
        for app in ("ops", "projects", "tracker")
        for path in (ROOT / app).rglob("*.py")
        if "tests" not in path.parts and re.search(r"csv\.(writer|DictWriter)\(", path.read_text())
    ]
    # The FOCUS import writes csv only as COPY's input to the database, never as a file people open.
    assert writers == ["ops/imports/focus.py", "tracker/exports.py"]


@pytest.mark.django_db
def test_html_and_markdown_in_titles_and_names_come_out_of_the_markdown_export_escaped(org, project):
    org.name = "<b>Acme</b>"
    org.save()
    title = "<img src=x onerror=alert(1)> [click](http://evil/) | **urgent** `x`"
    RiskFactory(project=project, title=title, likelihood=5, impact=5)

    markdown = report_markdown(_risk_report(org))

    assert "<img" not in markdown and "<b>" not in markdown
    assert not re.search(r"(?<!\\)\]\(", markdown)  # no link survives
    assert "# Risk report: &lt;b&gt;Acme&lt;/b&gt;," in markdown
    row = next(line for line in markdown.splitlines() if "onerror" in line)
    assert "&lt;img src=x onerror=alert(1)&gt; \\[click\\](http://evil/) \\| \\*\\*urgent\\*\\* \\`x\\`" in row
    # The title's pipe is escaped, so the row keeps the table's columns.
    assert len(re.findall(r"(?<!\\)\|", row)) == len(MD_RISK_COLUMNS) + 1


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("- item", "\\- item"),
        ("+ item", "\\+ item"),
        ("1. first", "1\\. first"),
        ("# heading", "\\# heading"),
        ("a\nb\r\nc", "a b c"),
        ("-12.50", "-12.50"),
        ("R&D", "R&amp;D"),
        ("~~gone~~ _x_ \\", "\\~\\~gone\\~\\~ \\_x\\_ \\\\"),
        (None, ""),
        (25, "25"),
    ],
)
def test_markdown_text_escapes_markup(value, escaped):
    assert markdown_text(value) == escaped


# 9. An accepted risk escalated by a contributor


@pytest.mark.django_db
def test_a_contributor_escalating_an_accepted_risk_ends_the_acceptance(project, manager):
    risk = _accepted(project, manager)
    client = as_role(project.organization)

    response = client.patch(f"/api/v1/risks/{risk.pk}/", {"likelihood": 5, "impact": 5}, format="json")

    assert response.status_code == 200, response.json()
    risk.refresh_from_db()
    assert (risk.status, risk.score, risk.accepted_by, risk.acceptance_justification, risk.acceptance_expires) == (
        RiskStatus.OPEN,
        25,
        None,
        "",
        None,
    )
    assert "Acceptance ended: reassessed from 2 × 2 to 5 × 5" in risk.status_note
    assert RiskAssessment.objects.filter(risk=risk, likelihood=5, impact=5).exists()
    event = AuditEvent.objects.filter(object_type="ops.risk", object_id=str(risk.pk)).latest("pk")
    assert event.changes["status"] == ["accepted", "open"]
    assert event.changes["accepted_by_id"] == [manager.pk, None]
    assert event.changes["acceptance_justification"] == ["Vendor indemnity covers it", ""]


@pytest.mark.django_db
def test_a_contributor_cannot_keep_the_acceptance_by_sending_the_status_back(project, manager):
    risk = _accepted(project, manager)
    body = {"likelihood": 5, "impact": 5, "status": "accepted"}

    response = as_role(project.organization).patch(f"/api/v1/risks/{risk.pk}/", body, format="json")

    assert response.status_code == 200, response.json()
    risk.refresh_from_db()
    assert (risk.status, risk.accepted_by) == (RiskStatus.OPEN, None)


@pytest.mark.django_db
def test_a_status_of_accepted_on_an_open_risk_is_still_refused(project):
    risk = RiskFactory(project=project)

    response = as_role(project.organization).patch(f"/api/v1/risks/{risk.pk}/", {"status": "accepted"}, format="json")

    assert response.status_code == 400
    assert Risk.objects.get(pk=risk.pk).status == RiskStatus.OPEN


@pytest.mark.django_db
def test_a_managers_reassessment_keeps_the_acceptance(project, manager):
    risk = _accepted(project, manager)

    response = client_for(manager).patch(f"/api/v1/risks/{risk.pk}/", {"likelihood": 3}, format="json")

    assert response.status_code == 200, response.json()
    risk.refresh_from_db()
    assert (risk.status, risk.score, risk.accepted_by, risk.acceptance_justification) == (
        RiskStatus.ACCEPTED,
        6,
        manager,
        "Vendor indemnity covers it",
    )


@pytest.mark.django_db
def test_a_contributor_editing_only_the_text_of_an_accepted_risk_keeps_it_accepted(project, manager):
    risk = _accepted(project, manager)

    response = as_role(project.organization).patch(f"/api/v1/risks/{risk.pk}/", {"description": "More"}, format="json")

    assert response.status_code == 200
    risk.refresh_from_db()
    assert (risk.status, risk.accepted_by, risk.description) == (RiskStatus.ACCEPTED, manager, "More")


@pytest.mark.django_db
def test_the_web_edit_form_keeps_an_accepted_risk_accepted_for_a_manager_and_ends_it_for_a_contributor(
    client, project, manager
):
    risk = _accepted(project, manager)
    client.force_login(manager)
    page = client.get(risk.get_absolute_url())
    assert page.context["edit_form"]["status"].value() == RiskStatus.ACCEPTED
    data = {"title": risk.title, "category": risk.category, "treatment": "accept", "status": "accepted"}

    client.post(reverse("ops:risk-edit", args=[risk.pk]), {**data, "likelihood": 3, "impact": 2}, **HTMX)
    risk.refresh_from_db()
    assert (risk.status, risk.likelihood, risk.accepted_by) == (RiskStatus.ACCEPTED, 3, manager)

    client.force_login(member(project.organization, Role.CONTRIBUTOR))
    response = client.post(reverse("ops:risk-edit", args=[risk.pk]), {**data, "likelihood": 5, "impact": 5}, **HTMX)
    assert "Risk saved." in response.content.decode()
    risk.refresh_from_db()
    assert (risk.status, risk.score, risk.accepted_by) == (RiskStatus.OPEN, 25, None)


# 10. Close and accept at once; a double close


def _api_client(user) -> APIClient:
    _, key = api_token_create(user=user, name="race")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.mark.django_db(transaction=True)
def test_close_and_accept_sent_together_one_wins_the_other_is_a_409(org):
    project = ProjectFactory(organization=org)
    manager, contributor = member(org, Role.MANAGER), member(org, Role.CONTRIBUTOR)
    accepting, closing = _api_client(manager), _api_client(contributor)
    expires = (organization_today(org) + dt.timedelta(days=30)).isoformat()
    outcomes = set()
    for trial in range(6):
        risk = RiskFactory(project=project, title=f"Race {trial}")
        accept = {"justification": "Tolerable", "expires": expires}

        def accept_it(risk=risk, accept=accept):
            return accepting.post(f"/api/v1/risks/{risk.pk}/accept/", accept, format="json").status_code

        def close_it(risk=risk):
            return closing.post(f"/api/v1/risks/{risk.pk}/close/", {"note": "Gone"}, format="json").status_code

        statuses = at_once(accept_it, close_it)

        assert sorted(statuses) == [200, 409], statuses
        risk.refresh_from_db()
        if statuses[0] == 200:
            assert (risk.status, risk.closed_at, risk.acceptance_justification) == ("accepted", None, "Tolerable")
        else:
            assert (risk.status, risk.accepted_by, risk.acceptance_justification) == ("closed", None, "")
            assert risk.closed_at is not None
        outcomes.add(risk.status)
    assert outcomes <= {"accepted", "closed"}


@pytest.mark.django_db
def test_a_double_close_is_200_then_409_and_keeps_the_first_note(project):
    risk = RiskFactory(project=project)
    client = as_role(project.organization)

    first = client.post(f"/api/v1/risks/{risk.pk}/close/", {"note": "Model replaced"}, format="json")
    second = client.post(f"/api/v1/risks/{risk.pk}/close/", {"note": "Again"}, format="json")

    assert (first.status_code, second.status_code) == (200, 409)
    assert second.json()["code"] == "conflict" and "status" in second.json()["errors"]
    risk.refresh_from_db()
    assert (risk.status, risk.status_note) == (RiskStatus.CLOSED, "Model replaced")


@pytest.mark.django_db
def test_accepting_a_closed_or_accepted_risk_is_a_409(project, manager):
    client = client_for(manager)
    body = {"justification": "Fine", "expires": (organization_today(project.organization) + dt.timedelta(days=9))}
    closed = RiskFactory(project=project, status=RiskStatus.CLOSED)
    accepted = _accepted(project, manager)

    assert client.post(f"/api/v1/risks/{closed.pk}/accept/", body, format="json").status_code == 409
    assert client.post(f"/api/v1/risks/{accepted.pk}/accept/", body, format="json").status_code == 409
    assert Risk.objects.get(pk=closed.pk).accepted_by is None


@pytest.mark.django_db
def test_closing_an_accepted_risk_is_a_409_until_it_is_reopened(project, manager):
    risk = _accepted(project, manager)
    client = client_for(manager)

    assert client.post(f"/api/v1/risks/{risk.pk}/close/", {"note": "Fixed"}, format="json").status_code == 409
    assert client.patch(f"/api/v1/risks/{risk.pk}/", {"status": "open"}, format="json").status_code == 200
    assert client.post(f"/api/v1/risks/{risk.pk}/close/", {"note": "Fixed"}, format="json").status_code == 200

    risk.refresh_from_db()
    assert (risk.status, risk.accepted_by, risk.status_note) == (RiskStatus.CLOSED, None, "Fixed")


@pytest.mark.django_db
def test_a_double_close_in_the_web_ui_shows_the_conflict_on_the_form(client, project):
    risk = RiskFactory(project=project, status=RiskStatus.CLOSED, status_note="Done")
    client.force_login(member(project.organization, Role.CONTRIBUTOR))

    response = client.post(reverse("ops:risk-close", args=[risk.pk]), {"note": "Again"}, **HTMX)

    assert response.status_code == 200 and "The risk is closed: only an open or mitigating" in response.content.decode()
    assert Risk.objects.get(pk=risk.pk).status_note == "Done"


# 11. Lone surrogates in bulk ingestion


def _post_raw(client: APIClient, url: str, body: dict):
    # json.dumps escapes the surrogate as \ud800, as any JSON client would send it.
    return client.post(url, data=json.dumps(body), content_type="application/json")


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["description", "model", "external_id"])
def test_a_lone_surrogate_in_bulk_costs_is_a_400_naming_the_row(project, field):
    good = {"project": project.pk, "date": "2026-03-01", "category": "inference", "amount": "1.00"}
    entries = [good, {**good, field: "bad \ud800 text"}]

    response = _post_raw(as_role(project.organization), "/api/v1/costs/bulk/", {"entries": entries})

    assert response.status_code == 400, response.content
    assert response.json()["errors"] == {f"entries.1.{field}": ["Unpaired surrogate characters are not allowed."]}
    assert not CostEntry.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["description", "model", "external_id"])
def test_a_lone_surrogate_in_bulk_usage_is_a_400_naming_the_row(project, field):
    ModelPriceFactory(organization=project.organization, model="gpt-4o", valid_from=dt.date(2026, 1, 1))
    good = {"project": project.pk, "date": "2026-03-01", "model": "gpt-4o", "input_tokens": 10, "output_tokens": 5}
    entries = [good, good, {**good, field: "\udfff"}]

    response = _post_raw(as_role(project.organization), "/api/v1/usage/", {"entries": entries})

    assert response.status_code == 400, response.content
    assert set(response.json()["errors"]) == {f"entries.2.{field}"}
    assert not CostEntry.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/v1/costs/bulk/", {"entries": [{"\ud800": 1}]}, "entries.0.\ud800"),
        ("/api/v1/costs/bulk/", {"entries": [], "\ud800": 1}, "\ud800"),
        ("/api/v1/usage/", {"entries": [{"model": "\ud800", "\udc00x": 1}]}, "entries.0.\udc00x"),
        ("/api/v1/risks/", {"title": "x", "category": "\ud800", "likelihood": 1, "impact": 1}, "category"),
    ],
)
def test_an_error_naming_a_lone_surrogate_is_a_400_not_a_500(project, url, body, field):
    response = _post_raw(as_role(project.organization), url, body)

    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]  # written as a \u escape in the JSON answer
    assert not CostEntry.objects.exists() and not Risk.objects.exists()


@pytest.mark.django_db
def test_a_surrogate_pair_is_a_character_and_is_recorded(project):
    entry = {"project": project.pk, "date": "2026-03-01", "category": "inference", "amount": "1.00"}
    entry["description"] = "GPU \U0001f680"

    response = _post_raw(as_role(project.organization), "/api/v1/costs/bulk/", {"entries": [entry]})

    assert response.status_code == 201, response.content
    assert CostEntry.objects.get().description == "GPU \U0001f680"


# Extras: closing a critical risk; the acceptance cap


@pytest.mark.django_db
def test_a_contributor_cannot_close_a_critical_risk(project):
    risk = RiskFactory(project=project, likelihood=5, impact=4)

    response = as_role(project.organization).post(f"/api/v1/risks/{risk.pk}/close/", {"note": "Meh"}, format="json")

    assert response.status_code == 403
    risk.refresh_from_db()
    assert (risk.status, risk.closed_at, risk.status_note) == (RiskStatus.OPEN, None, "")
    manager = as_role(project.organization, Role.MANAGER)
    assert manager.post(f"/api/v1/risks/{risk.pk}/close/", {"note": "Replaced"}, format="json").status_code == 200


@pytest.mark.django_db
def test_a_contributor_closing_a_critical_risk_in_the_web_ui_is_refused(client, project):
    risk = RiskFactory(project=project, likelihood=5, impact=5)
    client.force_login(member(project.organization, Role.CONTRIBUTOR))

    page = client.get(risk.get_absolute_url()).content.decode()
    response = client.post(reverse("ops:risk-close", args=[risk.pk]), {"note": "Meh"}, **HTMX)

    assert "Close the risk" not in page and "needs a manager" in page
    assert response.status_code == 403
    assert Risk.objects.get(pk=risk.pk).status == RiskStatus.OPEN


@pytest.mark.django_db
def test_a_contributor_still_closes_a_high_risk(project):
    risk = RiskFactory(project=project, likelihood=4, impact=4)

    response = as_role(project.organization).post(f"/api/v1/risks/{risk.pk}/close/", {"note": "Done"}, format="json")

    assert response.status_code == 200


@pytest.mark.django_db
def test_an_acceptance_until_9999_is_refused(project, manager):
    risk = RiskFactory(project=project)
    client = client_for(manager)

    response = client.post(
        f"/api/v1/risks/{risk.pk}/accept/", {"justification": "Forever", "expires": "9999-12-31"}, format="json"
    )

    assert response.status_code == 400
    assert "365 days" in response.json()["errors"]["expires"][0]
    risk.refresh_from_db()
    assert (risk.status, risk.accepted_by, risk.acceptance_expires) == (RiskStatus.OPEN, None, None)


@pytest.mark.django_db
def test_the_acceptance_cap_is_a_setting(project, manager, settings):
    settings.RISK_ACCEPTANCE_MAX_DAYS = 30
    today = organization_today(project.organization)
    client = client_for(manager)
    risk = RiskFactory(project=project)
    url = f"/api/v1/risks/{risk.pk}/accept/"

    late = client.post(url, {"justification": "Ok", "expires": today + dt.timedelta(days=31)}, format="json")
    on_time = client.post(url, {"justification": "Ok", "expires": today + dt.timedelta(days=30)}, format="json")

    assert (late.status_code, on_time.status_code) == (400, 200)
