"""The project page's forms load when opened: fragment endpoints, permissions, the page's cost, refreshes."""

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from ops.models import Budget, CostEntry
from ops.tests.factories import CostEntryFactory, RiskFactory
from projects.models import Role, Stage
from projects.panels import FORMS
from projects.tests.factories import MembershipFactory, OrganizationFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
# The forms of the page (eight, and the token-usage form since repricing), the role each needs and its URL.
PAGE_FORMS = {
    "stage": (Role.CONTRIBUTOR, "projects:transition"),
    "status": (Role.CONTRIBUTOR, "projects:status-create"),
    "cost": (Role.CONTRIBUTOR, "ops:cost-create"),
    "usage": (Role.CONTRIBUTOR, "ops:usage-create"),
    "budget": (Role.MANAGER, "ops:budget-create"),
    "catalogue": (Role.CONTRIBUTOR, "ops:risk-catalogue"),
    "risk": (Role.CONTRIBUTOR, "ops:risk-create"),
    "infrastructure": (Role.CONTRIBUTOR, "ops:infrastructure-create"),
    "metric": (Role.CONTRIBUTOR, "ops:metric-create"),
}
# Before this change the page rendered the eight forms (18 queries and 21 <form>s, the catalogue and risk owner choices
# included); the page now reads its figures only.
# The snapshots add one: the organization's snapshot days behind the monthly spend.
# Estimated vs billed (ops/selectors/billing.py) adds two: the months' estimates and their bills.
# The energy section adds one: the latest CodeCarbon runs with the project's totals beside them.
# The budget forecast adds one: the daily spend of its window (`portfolio.cost_figures`).
# The budget thresholds crossed (issue 17) add one: the latest crossings of the project's budgets.
PAGE_QUERIES = 23


@pytest.fixture
def project():
    return ProjectFactory(organization=OrganizationFactory(name="Acme Bank"), stage=Stage.EVALUATION)


def signed_in(client, project, role: Role):
    user = UserFactory()
    MembershipFactory(user=user, organization=project.organization, role=role)
    client.force_login(user)
    return user


def form_url(project, key: str) -> str:
    return reverse("projects:form", args=[project.pk, key])


def test_the_registry_holds_the_forms_of_the_page():
    assert {key: (spec.role, spec.action) for key, (_, spec) in FORMS.items()} == PAGE_FORMS


def test_page_renders_no_form_of_its_sections_only_their_disclosures(client, project, django_assert_num_queries):
    signed_in(client, project, Role.MANAGER)
    RiskFactory(project=project)
    CostEntryFactory(project=project, amount=Decimal(5))
    with django_assert_num_queries(PAGE_QUERIES):
        page = client.get(project.get_absolute_url()).content.decode()
    for key, (_, action) in PAGE_FORMS.items():
        assert reverse(action, args=[project.pk]) not in page, key
        assert f'data-testid="form-{key}"' in page and f'data-form-url="{form_url(project, key)}"' in page
    # The only forms left are the page chrome's (organization switch, sign-out).
    assert not re.search(r"<form[^>]*hx-post", page)


def test_page_query_count_stays_the_same_as_the_project_grows(client, project, django_assert_num_queries):
    signed_in(client, project, Role.MANAGER)
    for i in range(15):
        RiskFactory(project=project)
        CostEntryFactory(project=project, date=dt.date.today() - dt.timedelta(days=20 * i), model=f"m{i}")
    with django_assert_num_queries(PAGE_QUERIES):
        client.get(project.get_absolute_url())


@pytest.mark.parametrize("key", PAGE_FORMS)
def test_each_fragment_returns_its_form_to_a_member_who_may_use_it(client, project, key):
    role, action = PAGE_FORMS[key]
    signed_in(client, project, role)
    response = client.get(form_url(project, key), **HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    target = reverse(action, args=[project.pk])
    assert f'action="{target}" hx-post="{target}"' in body and "<html" not in body


@pytest.mark.parametrize("key", PAGE_FORMS)
def test_each_fragment_is_refused_below_its_role(client, project, key):
    role, _ = PAGE_FORMS[key]
    signed_in(client, project, Role.VIEWER if role == Role.CONTRIBUTOR else Role.CONTRIBUTOR)
    assert client.get(form_url(project, key), **HTMX).status_code == 403


def test_fragment_of_another_organizations_project_or_an_unknown_form_is_404(client, project):
    signed_in(client, project, Role.ADMIN)
    foreign = ProjectFactory()
    assert client.get(form_url(foreign, "cost"), **HTMX).status_code == 404
    assert client.get(form_url(project, "nonsense"), **HTMX).status_code == 404


def test_without_script_the_fragment_is_a_page_whose_form_posts_plainly(client, project):
    signed_in(client, project, Role.CONTRIBUTOR)
    response = client.get(form_url(project, "cost"))
    body = response.content.decode()
    assert response.status_code == 200 and "<html" in body and "<h1>Add a cost</h1>" in body
    assert f'action="{reverse("ops:cost-create", args=[project.pk])}"' in body and "hx-post" not in body
    # …and posting it plainly comes back to the project page.
    data = {"date": dt.date.today().isoformat(), "category": "other", "amount": "12.50", "description": "Hosting"}
    posted = client.post(reverse("ops:cost-create", args=[project.pk]), data)
    assert posted.status_code == 302 and posted.url == project.get_absolute_url()


def _chart(section: str) -> dict:
    match = re.search(r'<canvas data-chart="([^"]+)" data-testid="cost-data"', section)
    assert match, "the refreshed costs section has no chart data"
    return json.loads(match.group(1).replace("&quot;", '"'))


def test_costs_section_refreshed_after_a_cost_still_carries_the_chart(client, project):
    signed_in(client, project, Role.CONTRIBUTOR)
    data = {"date": dt.date.today().isoformat(), "category": "other", "amount": "40.00", "description": "GPU"}
    section = client.post(reverse("ops:cost-create", args=[project.pk]), data, **HTMX).content.decode()
    assert 'id="section-costs"' in section and "Cost recorded." in section
    assert _chart(section)["series"][0]["data"][-1] == 40.0 and "<script" not in section
    assert CostEntry.objects.filter(project=project).count() == 1


def test_costs_section_refreshed_after_a_budget_still_carries_the_chart(client, project):
    signed_in(client, project, Role.MANAGER)
    today = dt.date.today()
    data = {
        "period_start": today.replace(day=1).isoformat(),
        "period_end": today.replace(month=12, day=31).isoformat(),
        "category": "",
        "amount": "1000",
        "tolerance_pct": "10",
    }
    section = client.post(reverse("ops:budget-create", args=[project.pk]), data, **HTMX).content.decode()
    assert "Budget set." in section and Budget.objects.filter(project=project).count() == 1
    assert _chart(section)["series"][1]["label"] == "Budget" and "<script" not in section


def test_a_refused_submit_redisplays_its_form_open_with_the_errors(client, project):
    signed_in(client, project, Role.CONTRIBUTOR)
    section = client.post(reverse("ops:cost-create", args=[project.pk]), {"amount": "-1"}, **HTMX).content.decode()
    assert 'data-testid="form-cost" open' in section and 'class="errorlist"' in section
    assert not CostEntry.objects.filter(project=project).exists()
