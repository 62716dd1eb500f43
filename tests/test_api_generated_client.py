"""A typed client generated from the schema by openapi-python-client syncs, exports and ingests against a live server.

The client is generated once for the module from the schema the app serves; every answer it gets is parsed into
its typed models, so a schema lie (a missing field, a code outside its enum, a wrong type) fails here the way
it fails an integrator.
"""

import csv
import datetime as dt
import importlib
import io
import json
import subprocess  # nosec B404: runs the pinned generator over a file this module writes
import sys
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from ops.models import CostEntry
from ops.tests.factories import CostEntryFactory
from projects.models import Project, Role
from projects.services import api_token_create
from projects.tests.factories import OrganizationFactory, ProjectFactory, member
from tests.openapi_check import api_schema

GENERATOR = Path(sys.executable).with_name("openapi-python-client")
PACKAGE = "tracker_client"


@pytest.fixture(scope="module")
def tracker_client(tmp_path_factory):
    """Generate the typed client from the served schema into a temporary folder and import it."""
    folder = tmp_path_factory.mktemp("generated")
    schema = folder / "schema.json"
    schema.write_text(json.dumps(api_schema()))
    config = folder / "config.json"
    config.write_text(json.dumps({"package_name_override": PACKAGE, "post_hooks": []}))
    run = subprocess.run(  # nosec B603: fixed arguments
        [
            *(str(GENERATOR), "generate", "--path", str(schema), "--config", str(config), "--meta", "none"),
            *("--output-path", str(folder / PACKAGE), "--fail-on-warning"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


@pytest.fixture
def portfolio(transactional_db, settings):
    """An organization with projects and costs, and a manager's token; cursor pages serve rows at once."""
    settings.API_SYNC_CLOCK_MARGIN_SECONDS = 0  # the server runs in this process: one clock
    organization = OrganizationFactory(currency="EUR")
    projects = [ProjectFactory(organization=organization) for _ in range(5)]
    for project in projects:
        CostEntryFactory(project=project, amount=Decimal("12.5000"))
    user = member(organization, Role.MANAGER)
    return organization, projects, api_token_create(user=user, name="generated client")[1]


def sync(list_page, on_page=None) -> list[int]:
    """Follow a list by cursor (`ordering=updated_at`) to its end, as a BI tool would; return the ids in order."""
    seen, cursor, pages = [], None, 0
    while True:
        page = list_page(cursor)
        seen += [row.id for row in page.results]
        pages += 1
        if on_page:
            on_page(pages)
        if not page.next_:
            return seen
        cursor = parse_qs(urlparse(page.next_).query)["cursor"][0]


def test_a_generated_client_syncs_by_cursor_while_rows_are_added(tracker_client, live_server, portfolio):
    from tracker_client.api.costs import costs_list
    from tracker_client.api.projects import projects_list
    from tracker_client.models import CostsListOrdering, ProjectsListOrdering
    from tracker_client.types import UNSET

    organization, projects, token = portfolio
    client = tracker_client.AuthenticatedClient(base_url=live_server.url, token=token, raise_on_unexpected_status=True)

    def add_rows(page: int) -> None:
        if page == 1:  # between the first and the second page: new rows, committed at once
            for project in [ProjectFactory(organization=organization) for _ in range(3)]:
                CostEntryFactory(project=project)

    seen = sync(
        lambda cursor: projects_list.sync(
            client=client, ordering=ProjectsListOrdering.UPDATED_AT, page_size=2, cursor=cursor or UNSET
        ),
        on_page=add_rows,
    )
    assert len(seen) == len(set(seen)), "a project repeated"
    assert set(seen) == set(Project.objects.filter(organization=organization).values_list("pk", flat=True))
    assert len(seen) == 8

    before = set(CostEntry.objects.filter(project__organization=organization).values_list("pk", flat=True))
    late: list[int] = []

    def add_costs(page: int) -> None:
        if page == 2:
            late.extend(CostEntryFactory(project=projects[0]).pk for _ in range(4))

    seen = sync(
        lambda cursor: costs_list.sync(
            client=client, ordering=CostsListOrdering.UPDATED_AT, page_size=3, cursor=cursor or UNSET
        ),
        on_page=add_costs,
    )
    assert len(seen) == len(set(seen)), "a cost repeated"
    assert set(seen) == before | set(late) and len(late) == 4


def test_a_generated_client_downloads_an_export_and_retries_a_bulk_ingest(tracker_client, live_server, portfolio):
    from tracker_client.api.costs import costs_bulk_create, costs_export_list
    from tracker_client.models import CostBulkRequest, CostCategoryEnum, CostEntryCreateRequest, CostsExportListFormat

    _, projects, token = portfolio
    client = tracker_client.AuthenticatedClient(base_url=live_server.url, token=token, raise_on_unexpected_status=True)

    download = costs_export_list.sync_detailed(client=client, format_=CostsExportListFormat.CSV)
    assert download.status_code == 200
    rows = list(csv.DictReader(io.StringIO(download.parsed)))
    assert len(rows) == 5 and {row["currency"] for row in rows} == {"EUR"}
    assert {row["amount"] for row in rows} == {"12.5000"}

    body = CostBulkRequest(
        entries=[
            CostEntryCreateRequest(
                project=projects[1].pk,
                date=dt.date(2026, 3, day),
                category=CostCategoryEnum.INFERENCE,
                amount="3.25",
                external_id=f"gateway-{day}",
            )
            for day in (1, 2, 3)
        ]
    )
    first = costs_bulk_create.sync_detailed(client=client, body=body)
    assert first.status_code == 201 and first.parsed.created == 3
    retried = costs_bulk_create.sync_detailed(client=client, body=body)
    assert retried.status_code == 200 and retried.parsed.created == 0
    assert sorted(row.external_id for row in retried.parsed.existing) == ["gateway-1", "gateway-2", "gateway-3"]
    assert CostEntry.objects.filter(project=projects[1], external_id__startswith="gateway-").count() == 3
