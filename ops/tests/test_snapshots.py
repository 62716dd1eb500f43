"""Daily trend snapshots: open risks by severity per organization, spend per project."""

import datetime as dt
from decimal import Decimal

import pytest

from ops.models import CostSource, RiskSnapshot, RiskStatus, SpendSnapshot
from ops.services import snapshots_take
from ops.tests.factories import CostEntryFactory, RiskFactory
from projects.tests.factories import OrganizationFactory, ProjectFactory

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 3, 10)


def test_snapshot_counts_open_risks_by_severity_and_spend_per_project():
    org = OrganizationFactory()
    alpha, idle = ProjectFactory(organization=org), ProjectFactory(organization=org)
    RiskFactory(project=alpha, likelihood=5, impact=5)
    RiskFactory(project=alpha, likelihood=2, impact=5)
    RiskFactory(project=None, organization=org, likelihood=1, impact=2)
    RiskFactory(project=alpha, likelihood=5, impact=5, status=RiskStatus.CLOSED)
    RiskFactory(project=ProjectFactory(), likelihood=5, impact=5)  # another organization
    CostEntryFactory(project=alpha, date=DAY, amount=Decimal("10.50"))
    CostEntryFactory(project=alpha, date=DAY - dt.timedelta(days=3), amount=Decimal("4"))
    CostEntryFactory(project=alpha, date=DAY + dt.timedelta(days=1), amount=Decimal("100"))
    CostEntryFactory(project=alpha, date=DAY, amount=None, source=CostSource.USAGE)

    snapshot = snapshots_take(organization=org, date=DAY)
    assert (snapshot.low, snapshot.medium, snapshot.high, snapshot.critical, snapshot.total) == (1, 0, 1, 1, 3)
    rows = {s.project_id: s for s in SpendSnapshot.objects.filter(date=DAY)}
    assert set(rows) == {alpha.pk, idle.pk}
    assert (rows[alpha.pk].spend_day, rows[alpha.pk].spend_to_date, rows[alpha.pk].unpriced_entries) == (
        Decimal("10.5"),
        Decimal("14.5"),
        1,
    )
    assert (rows[idle.pk].spend_day, rows[idle.pk].spend_to_date) == (0, 0)


def test_taking_a_snapshot_again_refreshes_it_in_place():
    org = OrganizationFactory()
    project = ProjectFactory(organization=org)
    snapshots_take(organization=org, date=DAY)
    CostEntryFactory(project=project, date=DAY, amount=Decimal("3"))  # arrived late
    RiskFactory(project=project, likelihood=4, impact=4)
    snapshots_take(organization=org, date=DAY)
    assert RiskSnapshot.objects.get(organization=org).high == 1
    assert SpendSnapshot.objects.get(project=project).spend_to_date == Decimal("3")
    assert RiskSnapshot.objects.count() == 1 and SpendSnapshot.objects.count() == 1
