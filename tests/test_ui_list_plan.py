"""The project list's query plan (issue 16, the list ≤ 3× its raw SQL): one organization's today is a constant.

The list shows one organization, so its as-of date is computed once in Python (`organization_today`) and
a recurring budget's period start is `calendar_period`'s date; before, the timezone conversion and the
truncation were SQL repeated inside every figure that reads them (16.6 KB of statement at 5,000 projects).
"""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from ops.models import Recurrence
from ops.tests.factories import BudgetFactory, CostEntryFactory
from projects.tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db

# 30 Nov 2026 12:00 UTC is already 1 Dec 2026, 02:00 in Kiritimati (UTC+14): a new month there only.
NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


@time_machine.travel(NOW, tick=False)
def test_project_list_reads_the_organizations_today_as_a_constant(client, org, viewer):
    org.timezone = "Pacific/Kiritimati"
    org.save()
    project = ProjectFactory(organization=org, name="Claims triage")
    BudgetFactory(
        project=project,
        period_start=dt.date(2026, 1, 1),
        period_end=dt.date(2026, 1, 31),
        recurrence=Recurrence.MONTHLY,
        amount=Decimal("100.00"),
    )
    CostEntryFactory(project=project, date=dt.date(2026, 11, 30), amount=Decimal("10.00"))
    CostEntryFactory(project=project, date=dt.date(2026, 12, 1), amount=Decimal("25.00"))
    client.force_login(viewer)

    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("projects:list") + "?sort=-spend")

    assert response.status_code == 200
    row = response.context["page"][0]
    # The organization's December, not UTC's November: the same figures as before, from a constant date.
    assert (row.budget.period_start, row.budget.period_end) == (dt.date(2026, 12, 1), dt.date(2026, 12, 31))
    assert (row.budget.spend, row.spend_to_date) == (Decimal("25.00"), Decimal("35.00"))
    assert "1 Dec 2026 – 31 Dec 2026" in response.content.decode()
    statements = [q["sql"] for q in captured.captured_queries]
    assert not any("timezone(" in sql for sql in statements)
    assert not any("DATE_TRUNC" in sql.upper() for sql in statements)
