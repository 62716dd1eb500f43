"""One import machinery for every format: CodeCarbon runs and cost entry CSVs through ImportJob.

The command, the API and the upload page all store (or read) the file as an import job and run its
format's importer (ops/imports/jobs.py FORMATS); FOCUS bills are tested in test_imports_focus.py.
"""

import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

import ops.tasks  # noqa: F401  (registers ops.import_job_run, which eager mode then runs)
from ops.imports.jobs import FORMATS
from ops.imports.models import ImportJob, ImportStatus
from ops.models import CostEntry, EnergyRun
from projects.models import AuditAction, AuditEvent, Role
from projects.tests.factories import OrganizationFactory, ProjectFactory, member
from tracker.celery import app

pytestmark = pytest.mark.django_db

DATA = Path(__file__).parent / "data"
EMISSIONS = DATA / "codecarbon-emissions.csv"  # one run, project_name "codecarbon"
RUN_ID = "0a578547-1d6b-4e2f-be0c-7ad10f2f7c97"
COSTS = DATA / "costs-import.csv"  # its "Amount (EUR)" column names no field: it needs a mapping
MAPPING = {
    "Date": "date",
    "Project": "project",
    "Category": "category",
    "Amount (EUR)": "amount",
    "Note": "description",
    "Input tokens": "input_tokens",
    "Output tokens": "output_tokens",
    "Invoice": "external_id",
}
# Columns named like the fields map themselves; no project column: the upload names the project.
NAMED = b"date,category,amount,external_id\n2026-03-01,inference,120.50,INV-1\n2026-03-02,storage,3.25,INV-2\n"


def named():
    return SimpleUploadedFile("named.csv", NAMED, "text/csv")


@pytest.fixture
def org():
    org = OrganizationFactory(slug="acme")
    for slug in ("gateway", "search", "carbon"):
        ProjectFactory(organization=org, slug=slug)
    return org


@pytest.fixture
def manager(org):
    return member(org, Role.MANAGER)


@pytest.fixture
def worker(settings, tmp_path, django_capture_on_commit_callbacks):
    """Stored files under a temporary MEDIA_ROOT; the enqueued task runs in-process once the upload commits."""
    settings.MEDIA_ROOT = tmp_path
    app.conf.task_always_eager = True
    yield lambda: django_capture_on_commit_callbacks(execute=True)
    app.conf.task_always_eager = False


def test_the_registry_lists_every_format():
    assert list(FORMATS) == ["focus", "codecarbon", "csv"]


def test_command_imports_codecarbon_runs_as_a_job_mapped_to_a_project(org, manager):
    out = io.StringIO()
    args = ["costs_import", str(EMISSIONS), "--format", "codecarbon", "--org", "acme", "--by", manager.username]
    call_command(*args, "--project-map", "codecarbon=carbon", "--dry-run", stdout=out)
    assert not EnergyRun.objects.exists() and not ImportJob.objects.exists()
    assert "1 row(s) read: 1 would be new" in out.getvalue()

    out = io.StringIO()
    call_command(*args, "--project-map", "codecarbon=carbon", stdout=out)

    run = EnergyRun.objects.get()
    assert (run.run_id, run.project.slug, run.energy_kwh) == (RUN_ID, "carbon", Decimal("0.000574428982"))
    job = ImportJob.objects.get()
    assert (job.format, job.status, job.created_by, job.rows_total) == ("codecarbon", ImportStatus.DONE, manager, 1)
    assert job.summary["by_project"]["carbon"]["runs"] == 1
    assert "  carbon: runs 1, energy_kwh 0.000574428982, emissions_kg 0.000449098925, linked_entries 0" in (
        out.getvalue()
    )
    assert AuditEvent.objects.get(object_type="ops.energyrun", action=AuditAction.BATCH).actor == manager
    call_command(*args, "--project-map", "codecarbon=carbon", stdout=io.StringIO())
    assert EnergyRun.objects.count() == 1 and ImportJob.objects.latest("id").summary["unchanged"] == 1


def test_command_refuses_a_contributor_and_an_unknown_user(org):
    args = ["costs_import", str(EMISSIONS), "--format", "codecarbon", "--org", "acme"]
    with pytest.raises(CommandError, match="manager role"):
        call_command(*args, "--by", member(org, Role.CONTRIBUTOR).username, stdout=io.StringIO())
    with pytest.raises(CommandError, match="No user"):
        call_command(*args, "--by", "nobody", stdout=io.StringIO())
    assert not ImportJob.objects.exists() and not EnergyRun.objects.exists()


def test_api_imports_a_cost_csv_with_its_mapping_all_or_nothing(org, manager, client, worker):
    client.force_login(manager)
    with worker(), COSTS.open("rb") as upload:
        response = client.post("/api/v1/imports/", {"format": "csv", "file": upload, "mapping": json.dumps(MAPPING)})
    assert response.status_code == 202, response.content
    body = client.get(f"/api/v1/imports/{response.json()['id']}/").json()
    assert (body["format"], body["status"], body["options"]["mapping"]) == ("csv", "done", MAPPING)
    assert (body["summary"]["created"], body["summary"]["totals"]) == (3, {"amount": "523.75"})
    assert CostEntry.objects.count() == 3

    bad = COSTS.read_bytes().replace(b"400", b"-400")
    with worker():
        response = client.post(
            "/api/v1/imports/",
            {"format": "csv", "file": io.BytesIO(bad), "mapping": json.dumps(MAPPING)},
        )
    job = ImportJob.objects.get(pk=response.json()["id"])
    assert (job.status, job.failure) == (ImportStatus.FAILED, "1 lines refused; nothing was recorded.")
    assert job.errors == [{"line": 0, "column": "line 4.Amount (EUR)", "message": "Must not be negative."}]
    assert CostEntry.objects.count() == 3


def test_api_upload_with_an_idempotency_key_is_streamed_to_disk_and_replayed(org, manager, client):
    """The key's check reads the body before the view: the upload handlers are in place before that."""
    client.force_login(manager)
    fields = {"format": "csv", "mapping": json.dumps(MAPPING)}
    with COSTS.open("rb") as upload:
        first = client.post("/api/v1/imports/", {**fields, "file": upload}, HTTP_IDEMPOTENCY_KEY="upload-1")
    assert first.status_code == 202, first.content
    with COSTS.open("rb") as upload:
        again = client.post("/api/v1/imports/", {**fields, "file": upload}, HTTP_IDEMPOTENCY_KEY="upload-1")
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"] and ImportJob.objects.count() == 1
    # The same key with another file of the same name is another request: refused, not replayed.
    other = SimpleUploadedFile(COSTS.name, COSTS.read_bytes() + b"\n", "text/csv")
    changed = client.post("/api/v1/imports/", {**fields, "file": other}, HTTP_IDEMPOTENCY_KEY="upload-1")
    assert changed.status_code == 422 and ImportJob.objects.count() == 1


def test_api_refuses_a_malformed_mapping_and_a_viewer(org, manager, client):
    client.force_login(manager)
    for mapping in ("not json", json.dumps(["Date"]), json.dumps({"Date": 1})):
        response = client.post("/api/v1/imports/", {"format": "csv", "file": named(), "mapping": mapping})
        assert response.status_code == 400 and "mapping" in response.json()["errors"], mapping
    client.force_login(member(org, Role.VIEWER))
    response = client.post("/api/v1/imports/", {"format": "csv", "file": named(), "project": "gateway"})
    assert response.status_code == 403
    assert not ImportJob.objects.exists()


def test_api_imports_codecarbon_runs_with_a_project_map(org, manager, client, worker):
    client.force_login(manager)
    with worker(), EMISSIONS.open("rb") as upload:
        response = client.post(
            "/api/v1/imports/",
            {"format": "codecarbon", "file": upload, "project_map": json.dumps({"codecarbon": "carbon"})},
        )
    assert response.status_code == 202, response.content
    assert EnergyRun.objects.get().project.slug == "carbon"
    assert ImportJob.objects.get().summary["created"] == 1


def test_upload_page_imports_a_cost_csv_for_the_chosen_project(org, manager, client, worker):
    client.force_login(manager)
    with worker():
        response = client.post(reverse("ops:imports"), {"format": "csv", "file": named(), "project": "gateway"})
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == job.get_absolute_url()
    assert sorted(CostEntry.objects.values_list("project__slug", "amount")) == [
        ("gateway", Decimal("3.25")),
        ("gateway", Decimal("120.50")),
    ]
    page = client.get(job.get_absolute_url()).content.decode()
    assert 'data-status="done"' in page and "Cost entries (CSV) · named.csv" in page


def test_upload_page_imports_codecarbon_runs_and_members_read_the_result(org, manager, client, worker):
    ProjectFactory(organization=org, slug="codecarbon")
    client.force_login(manager)
    with worker(), EMISSIONS.open("rb") as upload:
        response = client.post(reverse("ops:imports"), {"format": "codecarbon", "file": upload})
    job = ImportJob.objects.get()
    assert response.status_code == 302 and EnergyRun.objects.get().project.slug == "codecarbon"

    client.force_login(member(org, Role.VIEWER))
    listing = client.get(reverse("ops:imports")).content.decode()
    assert "CodeCarbon emissions.csv" in listing and 'data-testid="import-upload"' not in listing
    page = client.get(job.get_absolute_url()).content.decode()
    assert 'data-status="done"' in page and "Energy (kWh)" in page and "codecarbon" in page


def test_the_pages_and_the_api_list_cost_a_fixed_number_of_queries(
    org, manager, client, worker, django_assert_num_queries
):
    client.force_login(manager)
    for count in (1, 3):  # the same queries for one job as for three
        while ImportJob.objects.count() < count:
            with worker():
                client.post(reverse("ops:imports"), {"format": "csv", "file": named(), "project": "search"})
        with django_assert_num_queries(LIST_PAGE_QUERIES):
            client.get(reverse("ops:imports"))
        url = ImportJob.objects.first().get_absolute_url()
        with django_assert_num_queries(DETAIL_PAGE_QUERIES):
            client.get(url)
        with django_assert_num_queries(API_LIST_QUERIES):
            assert len(client.get("/api/v1/imports/").json()["results"]) == count


# The session, the user, the organization and the role; the list adds the jobs and the rules, the
# form its projects; the detail its role check and the job; the API the jobs and their count.
LIST_PAGE_QUERIES = 7
DETAIL_PAGE_QUERIES = 5
API_LIST_QUERIES = 5
