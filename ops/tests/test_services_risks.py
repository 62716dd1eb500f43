"""The risk register: create, reassess, accept, close, the catalogue; against PostgreSQL."""

import datetime as dt

import pytest

from ops.catalogue import CATALOGUE
from ops.models import (
    NistGenAIRisk,
    OwaspLLMRisk,
    Risk,
    RiskAssessment,
    RiskCategory,
    RiskSource,
    RiskStatus,
    Severity,
    Treatment,
)
from ops.services import risk_accept, risk_close, risk_create, risk_create_from_catalogue, risk_update
from ops.tests.factories import RiskFactory
from projects.models import Role
from projects.services import organization_today
from projects.tests.factories import OrganizationFactory, ProjectFactory, UserFactory, member
from tracker.exceptions import Conflict, NotPermitted, ValidationFailed

pytestmark = pytest.mark.django_db


@pytest.fixture
def risk(project, contributor):
    return risk_create(
        project=project,
        by=contributor,
        title="Hallucinated refunds",
        category=RiskCategory.RELIABILITY,
        likelihood=3,
        impact=3,
    )


def tomorrow(org) -> dt.date:
    return organization_today(org) + dt.timedelta(days=1)


# risk_create


@pytest.mark.parametrize(
    ("likelihood", "impact", "score", "severity"),
    [
        (1, 1, 1, Severity.LOW),
        (1, 4, 4, Severity.LOW),
        (2, 2, 4, Severity.LOW),
        (1, 5, 5, Severity.MEDIUM),
        (3, 3, 9, Severity.MEDIUM),
        (2, 5, 10, Severity.HIGH),
        (3, 4, 12, Severity.HIGH),
        (4, 4, 16, Severity.HIGH),
        (4, 5, 20, Severity.CRITICAL),
        (5, 5, 25, Severity.CRITICAL),
    ],
)
def test_risk_create_derives_score_and_severity_in_the_database(
    project, contributor, likelihood, impact, score, severity
):
    risk = risk_create(
        project=project,
        by=contributor,
        title="Band",
        category=RiskCategory.COST,
        likelihood=likelihood,
        impact=impact,
    )

    assert (risk.score, risk.severity) == (score, severity)
    assert Risk.objects.filter(pk=risk.pk, score=score, severity=severity).exists()
    assert Severity.for_score(score) == severity


def test_risk_create_records_the_initial_assessment(project, contributor):
    risk = risk_create(
        project=project, by=contributor, title="Leak", category=RiskCategory.DATA_PRIVACY, likelihood=2, impact=5
    )

    assessment = RiskAssessment.objects.get(risk=risk)
    assert (assessment.likelihood, assessment.impact, assessment.score, assessment.by) == (2, 5, 10, contributor)
    risk.refresh_from_db()
    assert risk.last_reviewed_at == assessment.assessed_at
    assert (risk.organization, risk.status, risk.source) == (project.organization, RiskStatus.OPEN, RiskSource.MANUAL)


def test_risk_create_for_the_whole_portfolio(org, contributor):
    risk = risk_create(
        organization=org,
        by=contributor,
        title="Most spend on one provider",
        category=RiskCategory.VENDOR_LOCK_IN,
        likelihood=3,
        impact=3,
    )

    assert (risk.organization, risk.project) == (org, None)


def test_risk_create_needs_a_project_or_an_organization(contributor):
    with pytest.raises(ValidationFailed):
        risk_create(by=contributor, title="Orphan", category=RiskCategory.COST, likelihood=1, impact=1)

    assert not Risk.objects.exists()


def test_risk_create_with_references_owner_and_plan(org, project, contributor, manager):
    risk = risk_create(
        project=project,
        by=contributor,
        title="Prompt injection",
        category=RiskCategory.SECURITY,
        likelihood=3,
        impact=4,
        owner=manager,
        treatment=Treatment.MITIGATE,
        mitigation_plan="Filter retrieved text",
        nist_refs=[NistGenAIRisk.INFORMATION_SECURITY],
        owasp_refs=[OwaspLLMRisk.LLM01, OwaspLLMRisk.LLM06],
        next_review_date=dt.date(2026, 9, 1),
    )

    stored = Risk.objects.get(pk=risk.pk)
    assert (stored.owner, stored.nist_refs, stored.owasp_refs) == (
        manager,
        ["information_security"],
        ["LLM01", "LLM06"],
    )


@pytest.mark.parametrize(("likelihood", "impact"), [(0, 3), (6, 3), (3, 0), (3, 6)])
def test_risk_create_refuses_likelihood_or_impact_outside_1_to_5(project, contributor, likelihood, impact):
    with pytest.raises(ValidationFailed) as excinfo:
        risk_create(
            project=project,
            by=contributor,
            title="Off",
            category=RiskCategory.COST,
            likelihood=likelihood,
            impact=impact,
        )

    assert set(excinfo.value.errors) <= {"likelihood", "impact"}
    assert not Risk.objects.exists()
    assert not RiskAssessment.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"nist_refs": ["confabulation", "made_up"]}, "nist_refs"),
        ({"nist_refs": "confabulation"}, "nist_refs"),
        ({"owasp_refs": ["LLM11"]}, "owasp_refs"),
        ({"owasp_refs": ["llm01"]}, "owasp_refs"),
        ({"residual_likelihood": 6}, "residual_likelihood"),
        ({"treatment": "ignore"}, "treatment"),
    ],
)
def test_risk_create_refuses_bad_fields_and_writes_nothing(project, contributor, fields, field):
    with pytest.raises(ValidationFailed) as excinfo:
        risk_create(
            project=project,
            by=contributor,
            title="Bad",
            category=RiskCategory.SECURITY,
            likelihood=2,
            impact=2,
            **fields,
        )

    assert list(excinfo.value.errors) == [field]
    assert not Risk.objects.exists()
    assert not RiskAssessment.objects.exists()


def test_risk_create_refuses_an_unknown_category(project, contributor):
    with pytest.raises(ValidationFailed) as excinfo:
        risk_create(project=project, by=contributor, title="Bad", category="weather", likelihood=2, impact=2)

    assert list(excinfo.value.errors) == ["category"]
    assert not Risk.objects.exists()


@pytest.mark.parametrize("field", ["status", "score", "severity", "source", "signal_key"])
def test_risk_create_refuses_derived_and_decision_fields(project, contributor, field):
    with pytest.raises(ValidationFailed) as excinfo:
        risk_create(
            project=project,
            by=contributor,
            title="x",
            category=RiskCategory.COST,
            likelihood=1,
            impact=1,
            **{field: "x"},
        )

    assert excinfo.value.errors == {field: ["Unknown field."]}
    assert not Risk.objects.exists()


def test_risk_create_refuses_an_owner_who_is_not_a_member(project, contributor):
    outsider = member(OrganizationFactory(), Role.ADMIN)

    for owner in (outsider, UserFactory()):
        with pytest.raises(ValidationFailed) as excinfo:
            risk_create(
                project=project,
                by=contributor,
                title="x",
                category=RiskCategory.COST,
                likelihood=1,
                impact=1,
                owner=owner,
            )
        assert list(excinfo.value.errors) == ["owner"]
    assert not Risk.objects.exists()


def test_risk_create_refused_to_a_viewer(org, project):
    with pytest.raises(NotPermitted):
        risk_create(
            project=project, by=member(org, Role.VIEWER), title="x", category=RiskCategory.COST, likelihood=1, impact=1
        )

    assert not Risk.objects.exists()


def test_risk_create_refused_to_a_member_of_another_organization(project):
    with pytest.raises(NotPermitted):
        risk_create(
            project=project,
            by=member(OrganizationFactory(), Role.ADMIN),
            title="x",
            category=RiskCategory.COST,
            likelihood=1,
            impact=1,
        )

    assert not Risk.objects.exists()


# risk_create_from_catalogue


def test_risk_create_from_catalogue_copies_the_entry(project, contributor):
    entry = CATALOGUE["pii_leakage"]

    risk = risk_create_from_catalogue(project=project, by=contributor, key="pii_leakage")

    stored = Risk.objects.get(pk=risk.pk)
    assert (stored.title, stored.category, stored.likelihood, stored.impact) == (
        entry.title,
        entry.category,
        entry.likelihood,
        entry.impact,
    )
    assert (stored.nist_refs, stored.owasp_refs) == (["data_privacy"], ["LLM02"])
    assert stored.mitigation_plan == entry.mitigation_plan
    assert RiskAssessment.objects.filter(risk=risk).count() == 1


def test_risk_create_from_catalogue_lets_the_team_adjust_the_rating(project, contributor, manager):
    risk = risk_create_from_catalogue(
        project=project, by=contributor, key="hallucination", likelihood=5, impact=5, owner=manager
    )

    assert (risk.score, risk.severity, risk.owner) == (25, Severity.CRITICAL, manager)


@pytest.mark.parametrize("key", list(CATALOGUE))
def test_every_catalogue_entry_makes_a_valid_risk(project, contributor, key):
    risk = risk_create_from_catalogue(project=project, by=contributor, key=key)

    assert risk.pk is not None and risk.severity in Severity.values


def test_risk_create_from_catalogue_refuses_an_unknown_key(project, contributor):
    with pytest.raises(ValidationFailed) as excinfo:
        risk_create_from_catalogue(project=project, by=contributor, key="alien_invasion")

    assert list(excinfo.value.errors) == ["key"]
    assert not Risk.objects.exists()


def test_risk_create_from_catalogue_refused_to_a_viewer(org, project):
    with pytest.raises(NotPermitted):
        risk_create_from_catalogue(project=project, by=member(org, Role.VIEWER), key="bias")

    assert not Risk.objects.exists()


# risk_update


def test_risk_update_new_rating_is_a_reassessment(risk, manager):
    updated = risk_update(risk=risk, by=manager, likelihood=5, impact=4, note="Seen in production logs")

    assert (updated.score, updated.severity) == (20, Severity.CRITICAL)
    stored = Risk.objects.get(pk=risk.pk)
    assert (stored.likelihood, stored.impact, stored.score, stored.severity) == (5, 4, 20, Severity.CRITICAL)
    latest = RiskAssessment.objects.filter(risk=risk).order_by("-assessed_at", "-pk").first()
    assert (latest.likelihood, latest.impact, latest.by, latest.note) == (5, 4, manager, "Seen in production logs")
    assert RiskAssessment.objects.filter(risk=risk).count() == 2


def test_risk_update_only_impact_change_is_a_reassessment(risk, contributor):
    risk_update(risk=risk, by=contributor, impact=1)

    assert list(RiskAssessment.objects.filter(risk=risk).order_by("pk").values_list("likelihood", "impact")) == [
        (3, 3),
        (3, 1),
    ]
    assert Risk.objects.get(pk=risk.pk).severity == Severity.LOW


def test_risk_update_without_a_rating_change_records_no_assessment(risk, contributor):
    risk_update(risk=risk, by=contributor, title="Hallucinated refund amounts", likelihood=3, impact=3)
    risk_update(risk=risk, by=contributor, mitigation_plan="Ground answers in the policy", status=RiskStatus.MITIGATING)

    stored = Risk.objects.get(pk=risk.pk)
    assert (stored.title, stored.status) == ("Hallucinated refund amounts", RiskStatus.MITIGATING)
    assert RiskAssessment.objects.filter(risk=risk).count() == 1


@pytest.mark.parametrize("status", [RiskStatus.ACCEPTED, RiskStatus.CLOSED, "snoozed"])
def test_risk_update_refuses_status_other_than_open_or_mitigating(risk, manager, status):
    with pytest.raises(ValidationFailed) as excinfo:
        risk_update(risk=risk, by=manager, status=status, likelihood=1)

    assert list(excinfo.value.errors) == ["status"]
    stored = Risk.objects.get(pk=risk.pk)
    assert (stored.status, stored.likelihood) == (RiskStatus.OPEN, 3)
    assert RiskAssessment.objects.filter(risk=risk).count() == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"likelihood": 6}, "likelihood"),
        ({"impact": 0}, "impact"),
        ({"owasp_refs": ["LLM99"]}, "owasp_refs"),
        ({"category": "weather"}, "category"),
        ({"title": ""}, "title"),
    ],
)
def test_risk_update_refuses_bad_values_and_writes_nothing(risk, contributor, changes, field):
    with pytest.raises(ValidationFailed) as excinfo:
        risk_update(risk=risk, by=contributor, **changes)

    assert list(excinfo.value.errors) == [field]
    stored = Risk.objects.get(pk=risk.pk)
    assert (stored.title, stored.likelihood, stored.impact, stored.owasp_refs) == ("Hallucinated refunds", 3, 3, [])
    assert RiskAssessment.objects.filter(risk=risk).count() == 1


def test_risk_update_refuses_an_owner_who_is_not_a_member(risk, contributor):
    with pytest.raises(ValidationFailed) as excinfo:
        risk_update(risk=risk, by=contributor, owner=member(OrganizationFactory(), Role.ADMIN))

    assert list(excinfo.value.errors) == ["owner"]
    assert Risk.objects.get(pk=risk.pk).owner is None


def test_risk_update_refuses_an_unknown_field(risk, contributor):
    with pytest.raises(ValidationFailed) as excinfo:
        risk_update(risk=risk, by=contributor, score=1)

    assert excinfo.value.errors == {"score": ["Unknown field."]}


def test_risk_update_refused_to_a_viewer(org, risk):
    with pytest.raises(NotPermitted):
        risk_update(risk=risk, by=member(org, Role.VIEWER), likelihood=5)

    assert Risk.objects.get(pk=risk.pk).likelihood == 3
    assert RiskAssessment.objects.filter(risk=risk).count() == 1


def test_risk_update_works_from_a_stale_copy(risk, contributor):
    stale = Risk.objects.get(pk=risk.pk)
    risk_update(risk=risk, by=contributor, likelihood=4)

    updated = risk_update(risk=stale, by=contributor, title="Renamed")

    stored = Risk.objects.get(pk=risk.pk)
    assert (stored.title, stored.likelihood) == ("Renamed", 4)
    assert updated.likelihood == 4


# risk_accept


def test_risk_accept_by_a_manager_records_the_decision(org, risk, manager):
    expires = organization_today(org) + dt.timedelta(days=90)

    risk_accept(risk=risk, by=manager, justification="  Low exposure during the pilot  ", expires=expires)

    stored = Risk.objects.get(pk=risk.pk)
    assert (stored.status, stored.accepted_by, stored.acceptance_expires) == (RiskStatus.ACCEPTED, manager, expires)
    assert stored.acceptance_justification == "Low exposure during the pilot"


@pytest.mark.parametrize("role", [Role.VIEWER, Role.CONTRIBUTOR])
def test_risk_accept_refused_below_manager(org, risk, role):
    with pytest.raises(NotPermitted):
        risk_accept(risk=risk, by=member(org, role), justification="Fine", expires=tomorrow(org))

    assert Risk.objects.get(pk=risk.pk).status == RiskStatus.OPEN


@pytest.mark.parametrize(
    ("justification", "days", "field"),
    [("", 30, "justification"), ("   ", 30, "justification"), ("Fine", 0, "expires"), ("Fine", -1, "expires")],
)
def test_risk_accept_needs_a_justification_and_a_future_expiry(org, risk, manager, justification, days, field):
    expires = organization_today(org) + dt.timedelta(days=days)

    with pytest.raises(ValidationFailed) as excinfo:
        risk_accept(risk=risk, by=manager, justification=justification, expires=expires)

    assert list(excinfo.value.errors) == [field]
    stored = Risk.objects.get(pk=risk.pk)
    assert (stored.status, stored.accepted_by, stored.acceptance_justification) == (RiskStatus.OPEN, None, "")


def test_risk_accept_refuses_a_closed_risk(org, risk, manager):
    risk_close(risk=risk, by=manager, note="Feature removed")

    with pytest.raises(Conflict) as excinfo:
        risk_accept(risk=risk, by=manager, justification="Fine", expires=tomorrow(org))

    assert list(excinfo.value.errors) == ["status"]
    assert Risk.objects.get(pk=risk.pk).status == RiskStatus.CLOSED


# risk_close


def test_risk_close_records_when_and_why(risk, contributor):
    risk_close(risk=risk, by=contributor, note="  Model replaced  ")

    stored = Risk.objects.get(pk=risk.pk)
    assert (stored.status, stored.status_note) == (RiskStatus.CLOSED, "Model replaced")
    assert stored.closed_at is not None


@pytest.mark.parametrize("note", ["", "  "])
def test_risk_close_needs_a_note(risk, contributor, note):
    with pytest.raises(ValidationFailed) as excinfo:
        risk_close(risk=risk, by=contributor, note=note)

    assert list(excinfo.value.errors) == ["note"]
    stored = Risk.objects.get(pk=risk.pk)
    assert (stored.status, stored.closed_at) == (RiskStatus.OPEN, None)


def test_risk_close_refuses_an_already_closed_risk(risk, contributor):
    risk_close(risk=risk, by=contributor, note="Done")
    closed_at = Risk.objects.get(pk=risk.pk).closed_at

    with pytest.raises(Conflict):
        risk_close(risk=risk, by=contributor, note="Again")

    stored = Risk.objects.get(pk=risk.pk)
    assert (stored.closed_at, stored.status_note) == (closed_at, "Done")


def test_risk_close_refused_to_a_viewer(org, risk):
    with pytest.raises(NotPermitted):
        risk_close(risk=risk, by=member(org, Role.VIEWER), note="Done")

    assert Risk.objects.get(pk=risk.pk).status == RiskStatus.OPEN


def test_risk_close_of_an_accepted_risk_ends_the_acceptance_first(org, manager):
    risk = RiskFactory(project=ProjectFactory(organization=org))
    risk_accept(risk=risk, by=manager, justification="Fine", expires=tomorrow(org))

    with pytest.raises(Conflict):
        risk_close(risk=risk, by=manager, note="Vendor fixed it")
    risk_update(risk=risk, by=manager, status=RiskStatus.OPEN)
    risk_close(risk=risk, by=manager, note="Vendor fixed it")

    stored = Risk.objects.get(pk=risk.pk)
    assert (stored.status, stored.accepted_by, stored.acceptance_justification) == (RiskStatus.CLOSED, None, "")
