"""Generic CSV import of cost entries: a column mapping, a preview of the first rows and every error, all or nothing."""

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest
from django.urls import reverse

import ops.tasks  # noqa: F401  (registers ops.import_job_run, which eager mode then runs)
from ops.imports import csv_costs
from ops.imports.base import LineError
from ops.imports.models import ImportJob
from ops.models import CostCategory, CostEntry, CostSource
from projects.models import AuditAction, AuditEvent, Role
from projects.tests.factories import OrganizationFactory, ProjectFactory, member
from tracker.celery import app
from tracker.exceptions import NotPermitted, ValidationFailed

pytestmark = pytest.mark.django_db

SAMPLE = (Path(__file__).parent / "data" / "costs-import.csv").read_bytes()
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
OPTIONS = {"mapping": MAPPING, "filename": "costs-import.csv"}
BAD = (
    b"Date,Project,Category,Amount (EUR),Note,Input tokens,Output tokens,Invoice\n"
    b"2026-03-01,gateway,Inference,120.50,,,,INV-1\n"
    b"2026-02-30,gateway,storage,-3,,,,INV-2\n"
    b"2026-03-03,nowhere,Fine-tuning,400,,,,INV-3\n"
    b"2026-03-04,search,catering,1,,12.5,,INV-4\n"
    b"2026-03-05,gateway,other,1,,,,INV-1\n"
    b"2026-03-06,search,other,,,,,\n"
)


@pytest.fixture
def manager(org):
    return member(org, Role.MANAGER)


@pytest.fixture
def projects(org):
    return {slug: ProjectFactory(organization=org, slug=slug) for slug in ("gateway", "search")}


def preview(org, data=SAMPLE, options=OPTIONS):
    return csv_costs.IMPORTER.preview(organization=org, stream=io.BytesIO(data), options=options)


def apply(org, actor, data=SAMPLE, options=OPTIONS):
    return csv_costs.IMPORTER.apply(organization=org, stream=io.BytesIO(data), options=options, actor=actor)


def test_preview_shows_the_rows_as_they_would_be_recorded_and_writes_nothing(org, projects):
    result = preview(org)

    assert result.errors == []
    assert result.rows[0] == {
        "line": 2,
        "project": "gateway",
        "date": dt.date(2026, 3, 1),
        "category": CostCategory.INFERENCE,
        "amount": Decimal("120.50"),
        "description": "March API",
        "input_tokens": 1_000_000,
        "output_tokens": 20_000,
        "external_id": "INV-1",
        "status": "new",
    }
    assert [row["category"] for row in result.rows] == ["inference", "storage", "fine_tuning"]
    summary = result.summary
    assert (summary.rows, summary.created, summary.unchanged, summary.refused) == (3, 3, 0, 0)
    assert summary.totals == {"amount": Decimal("523.75")}
    assert summary.by_project == {
        "gateway": {"entries": 2, "amount": Decimal("123.75")},
        "search": {"entries": 1, "amount": Decimal(400)},
    }
    assert not CostEntry.objects.exists()
    assert not AuditEvent.objects.exists()


def test_preview_lists_every_error_with_its_line_and_column(org, projects):
    result = preview(org, BAD)

    assert result.errors == [
        LineError(3, "Amount (EUR)", "Must not be negative."),
        LineError(3, "Date", "A date as YYYY-MM-DD is required."),
        LineError(4, "Project", "No project “nowhere” here."),
        LineError(5, "Category", "Choose one of " + ", ".join(CostCategory.values) + "."),
        LineError(5, "Input tokens", "A whole number is required."),
        LineError(6, "Invoice", "Repeats entry 0 of this request."),
        LineError(7, "Amount (EUR)", "This field is required."),
    ]
    assert result.summary.refused == 5
    assert result.summary.created == 0


def test_one_bad_line_refuses_the_whole_file(org, projects, manager):
    with pytest.raises(ValidationFailed) as refused:
        apply(org, manager, BAD)

    assert refused.value.message == "5 lines refused; nothing was recorded."
    assert refused.value.errors["line 4.Project"] == ["No project “nowhere” here."]
    assert not CostEntry.objects.exists()
    assert not AuditEvent.objects.exists()


def test_apply_records_every_row_as_one_history_event(org, projects, manager):
    summary = apply(org, manager)

    assert (summary.created, summary.unchanged) == (3, 0)
    entries = CostEntry.objects.order_by("date")
    assert [(e.project.slug, e.date.day, e.category, e.amount, e.external_id) for e in entries] == [
        ("gateway", 1, "inference", Decimal("120.5"), "INV-1"),
        ("gateway", 2, "storage", Decimal("3.25"), "INV-2"),
        ("search", 3, "fine_tuning", Decimal(400), "INV-3"),
    ]
    assert {(e.source, e.created_by_id) for e in entries} == {(CostSource.IMPORT, manager.pk)}
    (event,) = AuditEvent.objects.all()
    assert (event.action, event.object_type, event.organization_id, event.project_id) == (
        AuditAction.BATCH,
        "ops.costentry",
        org.pk,
        None,
    )
    assert event.actor == manager
    assert event.object_repr == "CSV import of costs-import.csv: 3 cost entries"
    assert sorted(event.changes["created"]) == sorted(e.pk for e in entries)


def test_the_same_file_again_records_nothing(org, projects, manager):
    apply(org, manager)

    assert preview(org).summary.unchanged == 3
    summary = apply(org, manager)

    assert (summary.created, summary.unchanged) == (0, 3)
    assert CostEntry.objects.count() == 3
    assert AuditEvent.objects.count() == 1


def test_columns_named_like_fields_map_themselves_and_one_project_takes_the_file(org, projects, manager):
    data = b"date,Category,amount,Input Tokens,Unused\n2026-03-01,other,2,5,x\n"

    summary = apply(org, manager, data, options={"project": "search"})

    assert summary.created == 1
    entry = CostEntry.objects.get()
    assert (entry.project, entry.input_tokens, entry.amount) == (projects["search"], 5, Decimal(2))


@pytest.mark.parametrize(
    ("options", "errors"),
    [
        ({"mapping": {"Nope": "date"}}, {"mapping.Nope"}),
        ({"mapping": {"Date": "when"}}, {"mapping.when"}),
        ({"mapping": {"Date": "date", "Note": "date"}}, {"mapping.date"}),
        ({"mapping": {"Date": "date", "Amount (EUR)": "amount", "Project": "project"}}, {"mapping.category"}),
        ({"mapping": {"Date": "date", "Amount (EUR)": "amount", "Category": "category"}}, {"project"}),
    ],
)
def test_a_mapping_that_does_not_fit_the_file_is_refused(org, projects, options, errors):
    with pytest.raises(ValidationFailed) as refused:
        preview(org, options=options)
    assert set(refused.value.errors) == errors


def test_more_rows_than_the_limit_are_refused(org, projects):
    data = b"date,category,amount\n" + b"2026-03-01,other,1\n" * 10_001
    with pytest.raises(ValidationFailed, match="At most 10000 rows"):
        preview(org, data, options={"project": "gateway"})


def test_only_managers_of_the_organization_import_into_its_projects(org, projects):
    for role in (Role.VIEWER, Role.CONTRIBUTOR):
        with pytest.raises(NotPermitted):
            apply(org, member(org, role))
    other = OrganizationFactory()
    ProjectFactory(organization=other, slug="gateway")
    with pytest.raises(NotPermitted):
        apply(other, member(org, Role.MANAGER))
    # Another organization's manager finds only its own projects: "search" is not one of them.
    with pytest.raises(ValidationFailed) as refused:
        apply(other, member(other, Role.MANAGER))
    assert set(refused.value.errors) == {"line 4.Project"}
    assert not CostEntry.objects.exists()


# --- The page: upload, map, preview, import (managers only) --------------------------------------------


@pytest.fixture
def uploads(settings, tmp_path):
    settings.IMPORT_UPLOADS_DIR = str(tmp_path)
    return tmp_path


def upload(client, data=SAMPLE, **extra):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(
        reverse("ops:import-csv"), {"file": SimpleUploadedFile("costs-import.csv", data, "text/csv"), **extra}
    )


def mapping_data(response, **changes) -> dict:
    form = response.context["form"]
    data = {name: form[name].value() or "" for name in form.fields}
    return data | changes


def test_the_page_is_for_managers(client, org):
    url = reverse("ops:import-csv")
    for role in (Role.VIEWER, Role.CONTRIBUTOR):
        client.force_login(member(org, role))
        assert client.get(url).status_code == 403
    client.force_login(member(org, Role.MANAGER))
    assert client.get(url).status_code == 200


def test_upload_guesses_the_mapping_and_previews_without_writing(client, org, projects, manager, uploads):
    client.force_login(manager)
    data = b"date,project,Category,Amount,Memo\n2026-03-01,gateway,storage,3.25,x\n"

    response = upload(client, data)

    assert response.status_code == 200
    assert mapping_data(response)["column_3"] == "amount"  # "Amount" names the field
    assert mapping_data(response)["column_4"] == ""  # "Memo" names none
    page = response.content.decode()
    assert 'data-testid="apply"' in page and "Import 1 cost entry" in page
    assert not CostEntry.objects.exists()
    assert len(list(uploads.rglob("*.csv"))) == 1


def test_the_mapping_is_changed_then_the_file_imported_and_forgotten(
    client, org, projects, manager, uploads, settings, django_capture_on_commit_callbacks
):
    client.force_login(manager)
    first = upload(client)
    url = reverse("ops:import-csv")
    # "Amount (EUR)" names no field: without an amount column the preview refuses the mapping.
    assert 'data-testid="apply"' not in first.content.decode()
    assert first.context["refusal"].errors == {"mapping.amount": ["Map a column to it."]}
    chosen = {f"column_{i}": field for i, field in enumerate(MAPPING.values())}

    preview = client.post(url, mapping_data(first, **chosen, action="preview"))
    assert 'data-testid="apply"' in preview.content.decode()
    assert [row["line"] for row in preview.context["preview"].rows] == [2, 3, 4]
    # Confirming hands the file to an import job, as any upload: the worker (run here) records it.
    settings.MEDIA_ROOT = uploads / "media"
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            done = client.post(url, mapping_data(first, **chosen, action="apply"), follow=True)
    finally:
        app.conf.task_always_eager = False

    job = ImportJob.objects.get()
    assert done.redirect_chain == [(job.get_absolute_url(), 302)]
    assert (job.format, job.status, job.filename, job.created_by) == ("csv", "done", "costs-import.csv", manager)
    assert job.options["mapping"] == MAPPING
    assert "Importing 3 cost entries from costs-import.csv." in done.content.decode()
    assert 'data-status="done"' in client.get(job.get_absolute_url()).content.decode()
    assert CostEntry.objects.count() == 3
    assert not list(uploads.glob("csv/**/*.csv"))
    assert AuditEvent.objects.get().object_repr == "CSV import of costs-import.csv: 3 cost entries"


def test_every_error_is_listed_and_nothing_can_be_imported(client, org, projects, manager, uploads):
    client.force_login(manager)
    first = upload(client, BAD)
    chosen = {f"column_{i}": field for i, field in enumerate(MAPPING.values())}

    response = client.post(reverse("ops:import-csv"), mapping_data(first, **chosen, action="preview"))

    page = response.content.decode()
    errors = page[page.index('data-testid="errors"') :]
    errors = errors[: errors.index("</table>")]
    assert errors.count("<tr>") == 8  # the header and the seven errors
    assert "No project “nowhere” here." in errors
    assert 'data-testid="apply"' not in page
    forced = client.post(reverse("ops:import-csv"), mapping_data(first, **chosen, action="apply"))
    assert forced.status_code == 400
    assert "5 lines refused; nothing was recorded." in forced.content.decode()
    assert not CostEntry.objects.exists()


def test_a_preview_belongs_to_its_manager(client, org, projects, manager, uploads):
    client.force_login(manager)
    first = upload(client)
    client.force_login(member(org, Role.MANAGER))
    assert client.post(reverse("ops:import-csv"), mapping_data(first, action="preview")).status_code == 404
    assert client.post(reverse("ops:import-csv"), {"token": "forged", "action": "apply"}).status_code == 404


def test_the_pages_cost_a_fixed_number_of_queries(client, org, projects, manager, uploads, django_assert_num_queries):
    client.force_login(manager)
    with django_assert_num_queries(PAGE_QUERIES):
        client.get(reverse("ops:import-csv"))
    first = upload(client)
    chosen = {f"column_{i}": field for i, field in enumerate(MAPPING.values())}
    with django_assert_num_queries(PREVIEW_QUERIES):
        client.post(reverse("ops:import-csv"), mapping_data(first, **chosen, action="preview"))
    many = SAMPLE + b"".join(b"2026-03-09,search,other,1,,,,X-%d\n" % n for n in range(50))
    first = upload(client, many)
    with django_assert_num_queries(PREVIEW_QUERIES):
        client.post(reverse("ops:import-csv"), mapping_data(first, **chosen, action="preview"))


# The session, the user, the current organization and the role; a preview adds the organization's
# projects and one look-up of the external ids already recorded, whatever the number of rows.
PAGE_QUERIES = 4
PREVIEW_QUERIES = 6
