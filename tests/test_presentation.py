"""One presentation layer: what people read carries labels, money and dates from tracker/formatting.py.

The rendered reports, the Markdown export, the digest e-mail and the history page are read for raw
codes (of choice fields whose code differs from its label) and for the glued forms a template made
of them by cutting underscores; money reads in the organization's currency and locale; dates in one
format per context; history in sentences with field labels.
"""

import datetime as dt
import html
import re
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from ops.models import Hosting, Provider, ReportKind, RiskCategory, RiskSource, RiskStatus, SignalRule
from ops.selectors.reports import report_csv, report_markdown
from ops.services import report_build, report_digest_send
from ops.tests.factories import (
    BudgetFactory,
    CostEntryFactory,
    InfrastructureComponentFactory,
    ReportFactory,
    RiskAssessmentFactory,
    RiskFactory,
)
from projects.models import AIActTier, DataClassification, Health, Industry, Role, Stage, UseCase
from projects.services import organization_update, project_update, status_update_create
from projects.tests.api_support import as_role
from projects.tests.factories import MembershipFactory, OrganizationFactory, ProjectFactory, UserFactory, member
from tracker import formatting
from tracker.exceptions import ValidationFailed

pytestmark = pytest.mark.django_db

WEEK = (dt.date(2026, 3, 2), dt.date(2026, 3, 8))
# Codes that differ from their labels, as the data of this portfolio holds them, and the glued forms
# seen before ("Datapreparation" from capfirst|cut:"_", "overbudget" from join|cut:"_").
RAW_CODES = [
    Stage.DATA_PREPARATION.value,
    "over_budget",
    "health_red",
    Health.GREEN.value,
    Health.AMBER.value,
    "blocked_gates",
    RiskCategory.DATA_PRIVACY.value,
    "human_ai_configuration",
    Industry.PUBLIC_SECTOR.value,
    UseCase.CUSTOMER_SUPPORT.value,
    DataClassification.SENSITIVE_PERSONAL.value,
    Provider.ON_PREMISES.value,
    SignalRule.BUDGET_OVERRUN.value,
    "last_status_date",
    "data_classification",
    "stage_entered_at",
    "costentry",
    "statusupdate",
    "stagetransition",
]
GLUED = ["healthred", "overbudget", "Datapreparation", "blockedgates", "dataprivacy", "laststatusdate"]


def visible_text(page: str) -> str:
    """Return what a reader sees: no scripts (chart data), tags or attributes."""
    page = re.sub(r"<script.*?</script>", " ", page, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def raw_codes_in(text: str) -> list[str]:
    return [code for code in RAW_CODES + GLUED if re.search(rf"(?<![\w]){re.escape(code)}(?![\w])", text, flags=re.I)]


@pytest.fixture
def portfolio(client):
    with time_machine.travel(dt.datetime(2026, 3, 5, 12, tzinfo=dt.UTC), tick=False):
        org, aria, gated, manager = _portfolio()
    client.force_login(manager)  # now: a session started in the past would have expired
    return org, aria, gated, manager


def _portfolio():
    org = OrganizationFactory(name="Acme", currency="USD", timezone="UTC", locale="en")
    manager = member(org, Role.MANAGER)
    manager.email = "manager@example.com"
    manager.save()
    aria = ProjectFactory(
        organization=org,
        name="Ask Aria",
        stage=Stage.DATA_PREPARATION,
        industry=Industry.PUBLIC_SECTOR,
        use_case=UseCase.CUSTOMER_SUPPORT,
        data_classification=DataClassification.SENSITIVE_PERSONAL,
        ai_act_tier=AIActTier.HIGH,
    )
    gated = ProjectFactory(organization=org, name="Fraud radar", stage=Stage.EVALUATION)
    BudgetFactory(project=aria, period_start=dt.date(2026, 1, 1), period_end=dt.date(2026, 12, 31), amount=1000)
    CostEntryFactory(project=aria, date=dt.date(2026, 3, 4), amount=Decimal("3979202.46"))
    status_update_create(
        project=aria, by=manager, date=dt.date(2026, 3, 3), health=Health.RED, progress=20, summary="s"
    )
    InfrastructureComponentFactory(project=aria, provider=Provider.ON_PREMISES, hosting=Hosting.HYBRID)
    privacy = RiskFactory(
        project=aria, title="PII in prompts", category=RiskCategory.DATA_PRIVACY, status=RiskStatus.OPEN
    )
    RiskAssessmentFactory(risk=privacy)
    RiskFactory(
        project=aria,
        title="Budget overrun",
        source=RiskSource.SIGNAL,
        signal_rule=SignalRule.BUDGET_OVERRUN,
        signal_key="budget:1",
    )
    project_update(project=aria, by=manager, data_classification=DataClassification.PERSONAL)
    return org, aria, gated, manager


def build(kind: str, org):
    report = ReportFactory(organization=org, kind=kind, period_start=WEEK[0], period_end=WEEK[1])
    return report_build(report_id=report.pk)


def test_reports_markdown_digest_and_history_show_labels_never_raw_codes(client, portfolio):
    org, aria, _, _ = portfolio
    status, risk = build(ReportKind.STATUS, org), build(ReportKind.RISK, org)
    attention = {a["name"]: a["reasons"] for a in status.data["needs_attention"]}
    # The data keeps the codes (a machine format) ...
    assert {"health_red", "over_budget"} <= set(attention["Ask Aria"]) and "blocked_gates" in attention["Fraud radar"]
    assert "data_preparation" in report_csv(status)

    status_page = visible_text(client.get(status.get_absolute_url()).content.decode())
    risk_page = visible_text(client.get(risk.get_absolute_url()).content.decode())
    report_digest_send(report_id=status.pk)
    digest = [part for m in mail.outbox for part in (m.body, visible_text(m.alternatives[0][0]))]
    history = visible_text(client.get(reverse("projects:history", args=[aria.pk])).content.decode())
    readings = {
        "status page": status_page,
        "risk page": risk_page,
        "status markdown": report_markdown(status),
        "risk markdown": report_markdown(risk),
        **{f"digest {i}": text for i, text in enumerate(digest)},
        "history": history,
    }

    # ... and what people read shows their labels.
    assert {name: raw_codes_in(text) for name, text in readings.items()} == {name: [] for name in readings}
    assert digest and "Data preparation" in status_page and "Off track, Over budget" in status_page
    assert "Gates of the next stage not met" in readings["status markdown"]
    assert "Data privacy" in readings["risk markdown"] and "signal: Budget overrun" in risk_page


def test_money_reads_in_the_organizations_currency_and_locale(client, portfolio):
    org, *_ = portfolio
    german = OrganizationFactory(currency="EUR", locale="de")
    amount = Decimal("3979202.46")

    assert formatting.money(amount, org) == "$3,979,202.46"
    assert formatting.money(amount, german) == "3.979.202,46\xa0€"
    assert formatting.money(amount, german, whole=True) == "3.979.202\xa0€"
    assert formatting.percent("103.6", org) == "103.6%" and formatting.percent("103.6", german) == "103,6\xa0%"
    assert formatting.percent("67", org) == "67.0%"
    assert formatting.number(1234567, german) == "1.234.567"
    status = build(ReportKind.STATUS, org)
    assert "$3,979,202.46" in visible_text(client.get(status.get_absolute_url()).content.decode())
    assert "- **Spend in the period**: $3,979,202.46" in report_markdown(status)
    # Machines keep raw decimals and get the currency in a column.
    header, row, *_ = report_csv(status).splitlines()
    assert header.endswith(",currency") and "3979202.46" in row and row.endswith(",USD")


def test_dates_read_in_one_format_per_context(client, portfolio):
    org, aria, *_ = portfolio
    berlin = OrganizationFactory(timezone="Europe/Berlin", locale="de")
    moment = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)

    assert formatting.date(dt.date(2026, 12, 1), org) == "1 Dec 2026"
    assert formatting.date(moment, org) == "1 Dec 2026, 09:00"
    assert formatting.date(moment, berlin) == "1 Dez. 2026, 10:00"
    assert formatting.date("2026-12-01", org) == "1 Dec 2026"
    assert formatting.date(moment, org, formatting.Context.MACHINE) == "2026-12-01T09:00:00+00:00"
    status = build(ReportKind.STATUS, org)
    page = visible_text(client.get(status.get_absolute_url()).content.decode())
    assert "2 Mar 2026 – 8 Mar 2026" in page and "2026-03-02" not in page
    project_page = visible_text(client.get(aria.get_absolute_url()).content.decode())
    assert "last status 3 Mar 2026" in project_page and "March 3, 2026" not in project_page


def test_every_template_formats_through_the_formatting_library():
    """No template formats a date or a number by hand (Django's date/intcomma filters, cut of codes)."""
    templates = Path(__file__).resolve().parent.parent / "templates"
    hand_made = re.compile(r"\|date:|\|intcomma|\|floatformat:[0-9]|cut:\"_\"|\|title\b|get_severity_display")
    offenders = [
        path.relative_to(templates).as_posix()
        for path in templates.rglob("*.html")
        if hand_made.search(path.read_text())
    ] + [p.relative_to(templates).as_posix() for p in templates.rglob("*.txt") if hand_made.search(p.read_text())]
    assert offenders == []


def test_history_reads_as_sentences_with_field_and_choice_labels(client, portfolio):
    _, aria, *_ = portfolio
    page = visible_text(client.get(reverse("projects:history", args=[aria.pk])).content.decode())
    assert "Health: — → Off track" in page
    assert "Last status date: — → 3 Mar 2026" in page
    assert "Data classification: Sensitive personal data → Personal data" in page
    assert "Updated project Ask Aria" in page and "Created status update" in page


def test_the_locale_is_set_where_the_organization_is_edited(portfolio):
    org, *_ = portfolio
    admin = UserFactory()
    MembershipFactory(user=admin, organization=org, role=Role.ADMIN)
    url = f"/api/v1/organizations/{org.pk}/"
    api = as_role(org, Role.ADMIN)
    assert api.get(url).json()["locale"] == "en"
    assert api.patch(url, {"locale": "de_CH"}, format="json").status_code == 200
    assert api.patch(url, {"locale": "xx_YY"}, format="json").status_code == 400
    with pytest.raises(ValidationFailed):
        organization_update(organization=org, by=admin, locale="not a locale")
    org.refresh_from_db()
    assert org.locale == "de_CH"


def test_the_project_list_names_the_provider_filter_and_reds_an_over_budget_bar(client, portfolio):
    page = client.get(reverse("projects:list")).content.decode()
    assert "[invalid name]" not in page and '<label for="id_provider">Provider</label>' in page
    over = "Spend in the current budget period against its budget: over budget"
    meter = re.search(rf'<meter[^>]*aria-label="{over}"[^>]*>', page)[0]
    # Over budget: the value lies past `high` and the optimum under `low`, which browsers draw red.
    attributes = dict(re.findall(r'(\w+)="([^"]*)"', meter))
    assert float(attributes["value"]) > float(attributes["high"]) and float(attributes["optimum"]) < float(
        attributes["low"]
    )


def test_the_project_form_names_the_human_oversight_owner_and_the_high_tier_gate_passes(client, portfolio):
    org, _, _, manager = portfolio
    project = ProjectFactory(organization=org, name="Triage", stage=Stage.EVALUATION, ai_act_tier=AIActTier.HIGH)
    gate = "A human-oversight owner is named (EU AI Act high-risk system)"
    unmet = f'<li class="unmet">{gate}'
    assert unmet in client.get(project.get_absolute_url()).content.decode()
    form = client.get(reverse("projects:edit", args=[project.pk])).content.decode()
    assert 'name="human_oversight_owner"' in form

    data = {"name": "Triage", "industry": project.industry, "use_case": project.use_case, "ai_act_tier": "high"}
    response = client.post(reverse("projects:edit", args=[project.pk]), data | {"human_oversight_owner": manager.pk})

    assert response.status_code == 302
    project.refresh_from_db()
    assert project.human_oversight_owner == manager
    page = client.get(project.get_absolute_url()).content.decode()
    assert f'<li class="passed">{gate}' in page and unmet not in page
