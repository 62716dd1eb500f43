"""ETag on the API's detail and list answers; If-None-Match answers 304 while the body is unchanged."""

import pytest

from ops.tests.factories import CostEntryFactory
from projects.models import Role
from projects.tests.api_support import _fresh_throttle, as_role  # noqa: F401
from projects.tests.factories import OrganizationFactory, ProjectFactory


@pytest.fixture
def project():
    return ProjectFactory(organization=OrganizationFactory(name="Acme"))


@pytest.mark.django_db
def test_a_detail_answer_is_tagged_and_an_unchanged_one_is_a_304_until_it_changes(project, django_assert_num_queries):
    client = as_role(project.organization, Role.MANAGER)
    url = f"/api/v1/projects/{project.pk}/"
    first = client.get(url)
    tag = first["ETag"]
    assert first.status_code == 200 and tag.startswith('"') and not tag.startswith("W/")  # strong
    assert first["Cache-Control"] == "private, no-cache"

    # The same queries as the 200: the body is built to hash it, only not sent.
    with django_assert_num_queries(len_queries(client, url)):
        same = client.get(url, headers={"If-None-Match": tag})
    assert same.status_code == 304 and same.content == b"" and same["ETag"] == tag
    assert "RateLimit-Remaining" in same
    assert client.get(url, headers={"If-None-Match": f'W/{tag}, "other"'}).status_code == 304  # weak comparison

    client.patch(url, {"summary": "Now with citations"}, format="json")
    changed = client.get(url, headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed["ETag"] != tag and changed.json()["summary"] == "Now with citations"


def len_queries(client, url) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.django_db
def test_a_list_tag_changes_when_a_row_is_added_on_page_numbers_and_cursor_pages(project, settings):
    settings.API_SYNC_CLOCK_MARGIN_SECONDS = 0  # else a cursor page rightly holds back the row just added
    client = as_role(project.organization, Role.VIEWER)
    CostEntryFactory(project=project)
    for url in ("/api/v1/costs/", "/api/v1/costs/?ordering=updated_at"):
        tag = client.get(url)["ETag"]
        assert client.get(url, headers={"If-None-Match": tag}).status_code == 304, url
        CostEntryFactory(project=project)
        again = client.get(url, headers={"If-None-Match": tag})
        assert again.status_code == 200 and again["ETag"] != tag, url


@pytest.mark.django_db
def test_callers_with_different_bodies_get_different_tags(project):
    ProjectFactory(organization=OrganizationFactory())  # another organization's project
    mine = as_role(project.organization, Role.VIEWER).get("/api/v1/projects/")
    theirs = as_role(OrganizationFactory(), Role.VIEWER).get("/api/v1/projects/")
    assert mine["ETag"] != theirs["ETag"]


@pytest.mark.django_db
def test_no_tag_on_writes_errors_and_streamed_exports(project):
    client = as_role(project.organization, Role.ADMIN)
    created = client.post("/api/v1/teams/", {"organization": project.organization.pk, "name": "Search"}, format="json")
    assert created.status_code == 201 and "ETag" not in created
    missing = client.get("/api/v1/projects/999999/")
    assert missing.status_code == 404 and "ETag" not in missing
    export = client.get("/api/v1/costs/export/?format=csv")
    assert export.status_code == 200 and export.streaming and "ETag" not in export
    assert client.get("/api/v1/costs/export/?format=csv", headers={"If-None-Match": "*"}).status_code == 200
