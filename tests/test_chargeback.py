"""Chargeback / showback (issue 17, point 4): every cost once, the groups sum to the total, the unallocated rest
shown; tags validated and carried by costs, FOCUS and OTLP; the page, the API and the CSV."""

import csv
import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ops import focus
from ops.models import CostEntry, CostSource, InfrastructureComponent
from ops.selectors.chargeback import chargeback
from ops.tests.factories import CostEntryFactory
from projects.models import Role
from projects.services import cost_centre_create, project_update
from projects.tags import tags_parse, tags_validate
from projects.tests.api_support import client_for
from projects.tests.factories import OrganizationFactory, ProjectFactory, TeamFactory, member
from tracker.exceptions import ValidationFailed

pytestmark = pytest.mark.django_db
MARCH = dt.date(2026, 3, 1)


@pytest.fixture
def portfolio(org, manager):
    """Two cost centres, a team, tags on projects and entries, one project with none, usage without a price."""
    support = cost_centre_create(organization=org, by=manager, code="CC-100", name="Support")
    research = cost_centre_create(organization=org, by=manager, code="CC-200", name="Research")
    team = TeamFactory(organization=org, name="Platform", slug="platform")
    a = ProjectFactory(organization=org, cost_centre=support, team=team, tags={"env": "prod"})
    b = ProjectFactory(organization=org, cost_centre=research, archived=True, tags={"env": "dev"})
    c = ProjectFactory(organization=org)  # nothing: unallocated everywhere
    InfrastructureComponent.objects.create(project=a, name="Bedrock", kind="foundation_model", provider="aws")
    rows = [
        (a, "100.10", {}),
        (a, "50.05", {"env": "staging"}),  # the entry's own tag wins over the project's
        (b, "200.00", {}),
        (c, "33.33", {"env": "prod"}),
        (c, "16.52", {}),
    ]
    for project, amount, tags in rows:
        CostEntryFactory(project=project, date=dt.date(2026, 3, 10), amount=Decimal(amount), tags=tags)
    CostEntry.objects.create(
        project=c, date=dt.date(2026, 3, 31), category="inference", amount=None, source=CostSource.USAGE, model="x"
    )
    CostEntryFactory(project=a, date=dt.date(2026, 2, 28), amount=Decimal("999"))  # another month
    CostEntryFactory(project=ProjectFactory(organization=OrganizationFactory()), date=MARCH, amount=Decimal("777"))
    return org


TOTAL = Decimal("400.00")


@pytest.mark.parametrize(
    ("group_by", "expected"),
    [
        ("cost_centre", [("CC-200", "200.00"), ("CC-100", "150.15"), ("", "49.85")]),
        ("team", [("platform", "150.15"), ("", "249.85")]),
        ("provider", [("aws", "150.15"), ("", "249.85")]),
        ("tag:env", [("dev", "200.00"), ("prod", "133.43"), ("staging", "50.05"), ("", "16.52")]),
        ("tag:missing", [("", "400.00")]),
    ],
)
def test_every_cost_counts_once_and_the_groups_sum_to_the_total(portfolio, group_by, expected):
    report = chargeback(organization=portfolio, month=dt.date(2026, 3, 17), group_by=group_by)
    assert [(r.key, f"{r.amount:.2f}") for r in report.rows] == expected
    assert report.total == TOTAL == sum(r.amount for r in report.rows)
    assert report.entries == 6 and report.unpriced_entries == 1 and report.incomplete  # the unpriced usage counted
    unallocated = [r for r in report.rows if r.unallocated]
    assert len(unallocated) == 1 and unallocated == report.rows[-1:] and unallocated[0].label == "Unallocated"


def test_one_query_whatever_the_size(portfolio, manager):
    with CaptureQueriesContext(connection) as small:
        chargeback(organization=portfolio, month=MARCH, group_by="tag:env")
    project = ProjectFactory(organization=portfolio, tags={"env": "qa"})
    CostEntry.objects.bulk_create(
        CostEntry(project=project, date=MARCH, category="inference", amount=Decimal(1)) for _ in range(50)
    )
    with CaptureQueriesContext(connection) as large:
        report = chargeback(organization=portfolio, month=MARCH, group_by="tag:env")
    assert len(small) == len(large) == 1 and report.total == TOTAL + 50


def test_an_unknown_grouping_is_refused(portfolio):
    for bad in ("project", "tag:", "tag:Bad Key", ""):
        with pytest.raises(ValidationFailed):
            chargeback(organization=portfolio, month=MARCH, group_by=bad)


def test_tags_are_validated(org, manager):
    tags_validate({"env": "prod", "cost-centre/sub.a:b_c": "x y"})
    for bad in (
        [],
        {"Env": "x"},
        {"": "x"},
        {"env": 3},
        {"env": "a\nb"},
        {"k": "x" * 257},
        {f"k{i}": "" for i in range(51)},
    ):
        with pytest.raises(ValidationError):
            tags_validate(bad)
    assert tags_parse("env=prod\nteam = search, a=") == {"env": "prod", "team": "search", "a": ""}
    with pytest.raises(ValidationError):
        tags_parse("no-equals")
    project = ProjectFactory(organization=org)
    with pytest.raises(ValidationFailed):
        project_update(project=project, by=manager, tags={"Bad": "x"})
    project.refresh_from_db()
    assert project.tags == {}


def test_the_api_takes_and_answers_tags_and_cost_centres(org, manager, contributor):
    centre = cost_centre_create(organization=org, by=manager, code="CC-9", name="Nine")
    foreign = cost_centre_create(
        organization=(other := OrganizationFactory()), by=member(other, Role.MANAGER), code="CC-9", name="Theirs"
    )
    project = ProjectFactory(organization=org)
    client = client_for(manager)
    url = f"/api/v1/projects/{project.pk}/"
    changed = client.patch(url, {"cost_centre": centre.pk, "tags": {"env": "prod"}}, format="json")
    assert changed.status_code == 200, changed.json()
    assert (changed.json()["cost_centre"], changed.json()["tags"]) == (centre.pk, {"env": "prod"})
    assert client.patch(url, {"cost_centre": foreign.pk}, format="json").status_code == 400
    assert client.patch(url, {"tags": {"BAD": "x"}}, format="json").status_code == 400
    body = {"project": project.pk, "date": "2026-03-02", "category": "inference", "amount": "5.00"}
    cost = client_for(contributor).post("/api/v1/costs/", {**body, "tags": {"feature": "search"}}, format="json")
    assert cost.status_code == 201 and cost.json()["tags"] == {"feature": "search"}
    bad = client_for(contributor).post("/api/v1/costs/", {**body, "tags": {"feature": ["x"]}}, format="json")
    assert bad.status_code == 400
    bulk = client_for(contributor).post(
        "/api/v1/costs/bulk/",
        {"entries": [{**body, "external_id": "t1", "tags": {"feature": "chat"}}, {**body, "tags": {"Bad": "x"}}]},
        format="json",
    )
    assert bulk.status_code == 400 and "entries.1.tags" in json.dumps(bulk.json())
    assert CostEntry.objects.filter(project=project).count() == 1  # all or nothing
    ok = client_for(contributor).post(
        "/api/v1/costs/bulk/", {"entries": [{**body, "external_id": "t1", "tags": {"feature": "chat"}}]}, format="json"
    )
    assert ok.status_code in (200, 201), ok.json()
    assert CostEntry.objects.get(external_id="t1").tags == {"feature": "chat"}
    # Resent as recorded: nothing new; with other tags: a conflict.
    again = {"entries": [{**body, "external_id": "t1", "tags": {"feature": "chat"}}]}
    assert client_for(contributor).post("/api/v1/costs/bulk/", again, format="json").status_code in (200, 201)
    again["entries"][0]["tags"] = {"feature": "other"}
    assert client_for(contributor).post("/api/v1/costs/bulk/", again, format="json").status_code == 409


def test_the_chargeback_api_and_csv(portfolio, manager, django_assert_max_num_queries):
    client = client_for(manager)
    answer = client.get("/api/v1/chargeback/", {"month": "2026-03", "group_by": "cost_centre"})
    assert answer.status_code == 200, answer.json()
    data = answer.json()
    assert (data["total"], data["currency"], data["month_start"], data["incomplete"]) == (
        "400.0000",
        portfolio.currency,
        "2026-03-01",
        True,
    )
    assert [(r["key"], r["amount"], r["unallocated"]) for r in data["rows"]][-1] == ("", "49.8500", True)
    assert sum(Decimal(r["amount"]) for r in data["rows"]) == Decimal(data["total"])
    exported = client.get("/api/v1/chargeback/export/", {"month": "2026-03", "group_by": "tag:env"})
    assert exported.status_code == 200 and exported["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert [(r["key"], r["amount"], r["currency"], r["unallocated"]) for r in rows][-1] == (
        "",
        "16.5200",
        portfolio.currency,
        "true",
    )
    assert sum(Decimal(r["amount"]) for r in rows) == TOTAL
    for params in (
        {"month": "2026-3", "group_by": "team"},
        {"month": "2026-03", "group_by": "x"},
        {"month": "2026-03"},
    ):
        assert client.get("/api/v1/chargeback/", params).status_code == 400
    assert client.get("/api/v1/chargeback/", {"month": "2026-03", "group_by": "team", "x": "1"}).status_code == 400
    with django_assert_max_num_queries(8):
        assert client.get("/api/v1/chargeback/", {"month": "2026-03", "group_by": "team"}).status_code == 200


def test_the_focus_export_carries_the_tags(portfolio, manager):
    answer = client_for(manager).get(
        "/api/v1/costs/export/", {"format": "focus", "date_after": "2026-03-01", "date_before": "2026-03-31"}
    )
    rows = list(csv.DictReader(io.StringIO(b"".join(answer.streaming_content).decode())))
    tags = sorted(json.dumps(json.loads(r["Tags"]), sort_keys=True) for r in rows)
    assert any('"env": "staging"' in t and '"tracker_cost_centre": "CC-100"' in t for t in tags)
    assert any('"env": "prod"' in t and "tracker_cost_centre" not in t for t in tags)
    assert sum(Decimal(r["BilledCost"]) for r in rows) == TOTAL


def test_focus_tags_map_to_our_tags():
    assert focus.tags_from_focus(
        '{"user:CostCenter": "CC-1", "Team Name": "Search", "tracker_project": "x", "n": 3}'
    ) == {
        "user:costcenter": "CC-1",
        "team_name": "Search",
        "n": "3",
    }
    assert focus.tags_from_focus("") == {} and focus.tags_from_focus({"-a": "b"}) == {"a": "b"}
    with pytest.raises(ValueError):
        focus.tags_from_focus("[1]")


def test_the_page_shows_the_table_chart_and_downloads(portfolio, manager, client, django_assert_max_num_queries):
    client.force_login(manager)
    with django_assert_max_num_queries(12):
        page = client.get("/chargeback/", {"month": "2026-03", "group_by": "tag", "tag": "env"})
    assert page.status_code == 200
    html = page.content.decode()
    assert "Unallocated" in html and "staging" in html and "data-chart" in html and "As a table" in html
    assert "/api/v1/chargeback/export/?month=2026-03&amp;group_by=tag%3Aenv" in html
    assert "format=focus" in html
    assert client.get("/chargeback/", {"month": "2026-03", "group_by": "tag"}).status_code == 200  # form error shown


def test_otlp_resource_attributes_chosen_as_tag_keys_tag_the_usage_and_split_its_aggregate(org, manager):
    from ops.otlp import UsageSpan, UsageSpans
    from ops.services.otlp import otlp_traces_ingest

    org.otlp_tag_keys = ["deployment.environment"]
    org.save()
    project = ProjectFactory(organization=org, otel_service_names=["chat"])
    end = dt.datetime.now(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0) - dt.timedelta(days=1)

    def span(n: int, resource: dict) -> UsageSpan:
        return UsageSpan(
            trace_id=n.to_bytes(16, "big"),
            span_id=n.to_bytes(8, "big"),
            end=end,
            service_name="chat",
            project="",
            provider="openai",
            model="gpt-4o",
            input_tokens=10,
            cached_input_tokens=0,
            output_tokens=5,
            resource=resource,
        )

    prod, staging = {"service.name": "chat", "deployment.environment": "prod"}, {"deployment.environment": "staging"}
    spans = [span(1, prod), span(2, prod), span(3, staging), span(4, {"host.name": "x"})]
    result = otlp_traces_ingest(organization=org, by=manager, usage=UsageSpans(spans=spans))
    assert result.counted == 4
    rows = sorted(
        (e.tags.get("deployment.environment", ""), e.requests) for e in CostEntry.objects.filter(project=project)
    )
    assert rows == [("", 1), ("prod", 2), ("staging", 1)]
    # Resent: each span still counted once, into the same entries.
    otlp_traces_ingest(organization=org, by=manager, usage=UsageSpans(spans=spans))
    assert CostEntry.objects.filter(project=project).count() == 3
    report = chargeback(organization=org, month=end.date(), group_by="tag:deployment.environment")
    assert [(r.key, r.entries) for r in report.rows] == [("prod", 1), ("staging", 1), ("", 1)]
