"""CSV exports written by PostgreSQL's COPY: the very bytes the Python writer makes, chunk after chunk of ids."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import transaction

from ops import exports
from ops.models import CostEntry, Risk
from ops.tests.factories import CostEntryFactory, RiskFactory
from projects.models import Role
from projects.tests.api_support import _fresh_throttle, as_role  # noqa: F401
from projects.tests.factories import OrganizationFactory, ProjectFactory

pytestmark = pytest.mark.django_db

HOSTILE = [
    '=HYPERLINK("http://evil")',
    "+1-2",
    "-12.5",  # a plain number: no apostrophe
    "-",
    "@SUM(A1)",
    "\tTab first",
    "a,b",
    'quote " inside',
    "two\nlines",
    "",
    " leading space",
    "ünïcødé ✓",
    "\\.",
    "'already quoted",
]


def python_csv(export: exports.Export, queryset) -> bytes:
    header, rows = export.rows(queryset, exports.ExportFormat.CSV)
    with transaction.atomic():
        return b"".join(exports.csv_stream(header=header, rows=rows))


def copy_csv(export: exports.Export, queryset) -> bytes:
    with transaction.atomic():
        return b"".join(export.copy_csv(queryset))


@pytest.fixture
def project():
    return ProjectFactory(organization=OrganizationFactory(currency="EUR"), slug="-dash-slug")


def test_costs_by_copy_are_the_python_writers_bytes(project):
    for n, text in enumerate(HOSTILE):
        CostEntryFactory(
            project=project,
            description=text,
            model=HOSTILE[-1 - n],
            external_id=text,
            amount=None if n % 3 == 0 else Decimal("12.3456") * n,
            source="usage" if n % 3 == 0 else "api",
            date=dt.date(2026, 3, 1 + n),
        )
    queryset = CostEntry.objects.filter(project=project)
    expected = python_csv(exports.COSTS, queryset)
    assert copy_csv(exports.COSTS, queryset) == expected
    assert b"'=HYPERLINK" in expected and b",-12.5," in expected and b"'-dash-slug" in expected
    assert expected.count(b"\r\n") == 0  # lines end with a line feed, as COPY writes them


def test_a_carriage_return_in_a_cell_is_quoted(project):
    # COPY quotes it (as RFC 4180 wants); Python 3.11's csv.writer only quotes the line terminator's characters.
    CostEntryFactory(project=project, description="\rCR first")
    assert b',"\'\rCR first",' in copy_csv(exports.COSTS, CostEntry.objects.all())


def test_usage_and_risks_by_copy_are_the_python_writers_bytes(project):
    CostEntryFactory(project=project, source="usage", model="=cmd", amount=None, external_id="")
    for text in HOSTILE[:6]:
        RiskFactory(project=project, title=text)
    usage = CostEntry.objects.filter(project=project)
    risks = Risk.objects.filter(project=project)
    assert copy_csv(exports.USAGE, usage) == python_csv(exports.USAGE, usage)
    assert copy_csv(exports.RISKS, risks) == python_csv(exports.RISKS, risks)


def test_chunks_of_ids_cover_every_row_once_in_order_however_sparse(project, monkeypatch):
    other = ProjectFactory()
    mine = []
    for n in range(12):
        mine.append(CostEntryFactory(project=project, description=f"row {n}\nsecond line").pk)
        CostEntryFactory.create_batch(n % 4, project=other)  # another organization's ids in between
    queryset = CostEntry.objects.filter(project=project)
    whole = copy_csv(exports.COSTS, queryset)

    monkeypatch.setattr(exports, "COPY_CHUNK_ROWS", 2)
    monkeypatch.setattr(exports, "COPY_MAX_RANGE", 5)
    chunked = list(exports.COSTS.copy_csv(queryset))

    assert len(chunked) > 4 and b"".join(chunked) == whole == python_csv(exports.COSTS, queryset)
    assert [int(line.split(b",")[0]) for line in whole.splitlines()[1:] if line[:1].isdigit()] == mine


def test_an_empty_export_is_its_header(project):
    assert copy_csv(exports.COSTS, CostEntry.objects.none()) == python_csv(exports.COSTS, CostEntry.objects.none())


def test_the_api_csv_is_the_copy_output(project):
    CostEntryFactory(project=project, description="=1+1")
    response = as_role(project.organization, Role.VIEWER).get("/api/v1/costs/export/", {"format": "csv"})
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == copy_csv(exports.COSTS, CostEntry.objects.all())
