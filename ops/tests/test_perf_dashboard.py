"""The shape of the dashboard's per-project SQL: each lookup once, no join a figure does not need.

The figures themselves are checked against the live sums in test_snapshot_figures.py and test_portfolio.py.
"""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ops.models import RiskSnapshot
from ops.selectors.portfolio import monthly_spend, with_budget_status, with_spend_to_date
from ops.tests.factories import CostEntryFactory
from projects.models import Project
from projects.tests.factories import OrganizationFactory, ProjectFactory

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 3, 8)


def test_the_covering_budget_is_read_once_per_project_however_many_figures_use_it():
    sql = str(with_budget_status(Project.objects.all(), as_of=DAY).query)
    # One join and the one subquery choosing which budget it is; its columns are not looked up again inside
    # each snapshot-day and spend term.
    assert sql.count('FROM "ops_budget"') == 1
    assert sql.count('JOIN "ops_budget"') == 1


@pytest.mark.parametrize("annotate", [with_budget_status, with_spend_to_date])
def test_snapshot_lookups_do_not_join_the_project_to_sort_by_it(annotate):
    sql = str(annotate(Project.objects.all(), as_of=DAY).query)
    assert 'JOIN "projects_project"' not in sql


def test_the_months_entries_outside_the_snapshots_are_listed_days_not_ranges():
    org = OrganizationFactory()
    project = ProjectFactory(organization=org)
    CostEntryFactory(project=project, date=dt.date(2026, 2, 1), amount=5)
    CostEntryFactory(project=project, date=dt.date(2026, 2, 14), amount=7)
    RiskSnapshot.objects.bulk_create(RiskSnapshot(organization=org, date=dt.date(2026, 2, day)) for day in range(1, 14))
    months = [(dt.date(2026, 1, 1), dt.date(2026, 1, 31)), (dt.date(2026, 2, 1), dt.date(2026, 2, 28))]
    with CaptureQueriesContext(connection) as queries:
        spend = monthly_spend(projects=Project.objects.filter(pk=project.pk), months=months)
    live = queries.captured_queries[-1]["sql"]
    # January has no snapshot: all of it; February: its first day and the days after the 13th.
    # One range only: the clause for organizations with no snapshot in the months at all.
    assert live.count("BETWEEN") == 1
    assert "'2026-01-31'::date" in live and "'2026-02-01'::date" in live and "'2026-02-14'::date" in live
    assert "'2026-02-13'::date" not in live
    # No spend snapshot rows were taken here, so the snapshot difference is 0 and both entries count live.
    assert (spend[dt.date(2026, 1, 1)].amount, spend[dt.date(2026, 2, 1)].amount) == (0, 12)
