"""The imports pages: the imports area (members read; managers upload a file of any format, which a worker
imports, and keep the bill mapping rules), one import's progress and result, and the CSV page.

The CSV page (managers) maps a spreadsheet's columns and previews every row's fate before anything is
written. The file is kept between the steps in IMPORT_UPLOADS_DIR under a name only the signed token
of the page knows (it expires after an hour); confirming hands it to an import job like any upload,
so every import writes through the same machinery (ops/imports/jobs.py).
"""

import datetime as dt
import uuid

from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.core.files import File
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods, require_POST

from ops.imports import csv_costs
from ops.imports.base import csv_lines
from ops.imports.forms import BillingRuleForm, CsvMappingForm, CsvUploadForm, ImportUploadForm
from ops.imports.jobs import import_job_create, import_job_get
from ops.imports.models import BillingMappingRule, ImportJob
from ops.imports.rules import billing_rule_create, billing_rule_delete
from projects.models import Role
from tracker.exceptions import DomainError
from tracker.web import form_apply_error, organization_required, role_required

SALT = "ops.imports.csv"
TOKEN_MAX_AGE = 3600


def _index_context(request: HttpRequest, form: ImportUploadForm, rule_form: BillingRuleForm) -> dict:
    organization = request.organization
    return {
        "form": form,
        "rule_form": rule_form,
        "jobs": ImportJob.objects.filter(organization=organization).select_related("created_by")[:20],
        "rules": BillingMappingRule.objects.filter(organization=organization).select_related("project"),
    }


def _forms(request: HttpRequest) -> tuple[ImportUploadForm, BillingRuleForm]:
    return ImportUploadForm(organization=request.organization), BillingRuleForm(organization=request.organization)


@csrf_protect
def _upload(request: HttpRequest) -> HttpResponse:
    form = ImportUploadForm(request.POST, request.FILES, organization=request.organization)
    status = 400
    if form.is_valid():
        try:
            job = import_job_create(
                organization=request.organization,
                format=form.cleaned_data["format"],
                upload=form.cleaned_data["file"],
                by=request.user,
                options=form.options(),
            )
        except DomainError as exc:  # a queue down (503: the file is stored) says so on the form too
            form_apply_error(form, exc)
            status = exc.status_code
        else:
            return redirect(job)
    context = _index_context(request, form, _forms(request)[1])
    return render(request, "ops/import_list.html", context, status=status)


@csrf_exempt  # checked by `_upload`, once the upload handlers are set (reading the token parses the body)
@organization_required
@require_http_methods(["GET", "POST"])
def import_index(request: HttpRequest) -> HttpResponse:
    """The recent imports and the mapping rules; managers upload a file (stored, then imported by a worker)."""
    if request.method == "POST":
        role_required(request, Role.MANAGER)
        # To disk, whatever its size: the web process never holds an import in memory.
        request.upload_handlers = [TemporaryFileUploadHandler(request)]
        return _upload(request)
    return render(request, "ops/import_list.html", _index_context(request, *_forms(request)))


@organization_required
@require_http_methods(["GET"])
def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One import: its progress until done, then what it wrote per project and the refused lines."""
    job = import_job_get(organization=request.organization, job_id=pk, by=request.user)
    return render(request, "ops/import_detail.html", {"job": job})


@organization_required
@require_http_methods(["GET"])
def import_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress fragment the import page polls; once finished the page reloads itself."""
    job = import_job_get(organization=request.organization, job_id=pk, by=request.user)
    response = render(request, "ops/includes/import_progress.html", {"job": job})
    if job.finished:
        response["HX-Refresh"] = "true"
    return response


@organization_required
@require_POST
def billing_rule_add(request: HttpRequest) -> HttpResponse:
    role_required(request, Role.MANAGER)
    form = BillingRuleForm(request.POST, organization=request.organization)
    if form.is_valid():
        try:
            billing_rule_create(organization=request.organization, by=request.user, **form.cleaned_data)
        except DomainError as exc:
            form_apply_error(form, exc)
        else:
            messages.success(request, "Mapping rule added: it applies to the next imports.")
            return redirect("ops:imports")
    return render(request, "ops/import_list.html", _index_context(request, _forms(request)[0], form), status=400)


@organization_required
@require_POST
def billing_rule_remove(request: HttpRequest, pk: int) -> HttpResponse:
    role_required(request, Role.MANAGER)
    rule = get_object_or_404(BillingMappingRule, organization=request.organization, pk=pk)
    billing_rule_delete(rule=rule, by=request.user)
    messages.success(request, "Mapping rule removed.")
    return redirect("ops:imports")


# --- The CSV page: upload, map, preview, then an import job -------------------------------------------


def _storage() -> FileSystemStorage:
    return FileSystemStorage(location=settings.IMPORT_UPLOADS_DIR)


def _store(request: HttpRequest, upload) -> str:
    """Keep the upload for the next steps; return the signed token naming it (for this user and organization)."""
    storage = _storage()
    folder = f"csv/{request.organization.pk}"
    # Previews never confirmed leave their file behind: drop this organization's older than a day.
    if storage.exists(folder):
        for name in storage.listdir(folder)[1]:
            if storage.get_created_time(f"{folder}/{name}") < dt.datetime.now(dt.UTC) - dt.timedelta(days=1):
                storage.delete(f"{folder}/{name}")
    name = storage.save(f"{folder}/{uuid.uuid4().hex}.csv", upload)
    return signing.dumps(
        {"name": name, "filename": upload.name[:200], "org": request.organization.pk, "user": request.user.pk},
        salt=SALT,
    )


def _stored(request: HttpRequest, token: str) -> dict:
    try:
        stored = signing.loads(token, salt=SALT, max_age=TOKEN_MAX_AGE) | {"token": token}
    except signing.BadSignature as exc:
        raise Http404("This preview has expired: upload the file again.") from exc
    if (stored["org"], stored["user"]) != (request.organization.pk, request.user.pk) or not _storage().exists(
        stored["name"]
    ):
        raise Http404("This preview has expired: upload the file again.")
    return stored


def _header(name: str) -> list[str]:
    with _storage().open(name, "rb") as stream:
        header, _ = csv_lines(stream)
    return header


def _start(request: HttpRequest, upload: CsvUploadForm) -> tuple[CsvMappingForm, dict]:
    """Keep the uploaded file and guess its mapping: each column named like a cost field maps to it."""
    stored = _stored(request, _store(request, upload.cleaned_data["file"]))
    header = _header(stored["name"])
    guessed = csv_costs.column_mapping(header=header, mapping=None)
    project = upload.cleaned_data["project"]
    data = {"token": stored["token"], "project": project.slug if project else ""}
    data |= {f"column_{i}": guessed.get(column, "") for i, column in enumerate(header)}
    return CsvMappingForm(data, header=header, mapping=guessed), stored


def _resume(request: HttpRequest) -> tuple[CsvMappingForm, dict]:
    """Take the kept file back with the mapping as the manager changed it."""
    stored = _stored(request, request.POST.get("token", ""))
    return CsvMappingForm(request.POST, header=_header(stored["name"]), mapping={}), stored


def _csv_job(request: HttpRequest, stored: dict, options: dict) -> ImportJob:
    """Hand the previewed file to an import job, then forget it here."""
    with _storage().open(stored["name"], "rb") as stream:
        job = import_job_create(
            organization=request.organization,
            format=csv_costs.FORMAT,
            upload=File(stream, name=stored["filename"]),
            by=request.user,
            options=options,
        )
    _storage().delete(stored["name"])
    return job


@organization_required
@require_http_methods(["GET", "POST"])
def csv_import(request: HttpRequest) -> HttpResponse:
    role_required(request, Role.MANAGER)
    organization = request.organization
    upload = CsvUploadForm(request.POST or None, request.FILES or None, organization=organization)
    context: dict = {"upload_form": upload if "token" not in request.POST else CsvUploadForm(organization=organization)}
    if request.method == "GET" or ("token" not in request.POST and not upload.is_valid()):
        return render(request, "ops/import_csv.html", context, status=200 if request.method == "GET" else 400)
    status = 200
    try:
        form, stored = _resume(request) if "token" in request.POST else _start(request, upload)
        form.is_valid()  # every choice is optional: only a forged one is dropped
        context |= {"form": form, "filename": stored["filename"]}
        options = {"mapping": form.mapping(), "project": form.cleaned_data.get("project", "")}
        with _storage().open(stored["name"], "rb") as stream:
            preview = csv_costs.IMPORTER.preview(organization=organization, stream=stream, options=options)
        context["preview"] = preview
        if request.POST.get("action") == "apply":
            if preview.errors:  # all or nothing: the job would refuse the whole file
                lines = len({e.line for e in preview.errors})
                messages.error(request, f"{lines} lines refused; nothing was recorded.")
                return render(request, "ops/import_csv.html", context, status=400)
            job = _csv_job(request, stored, options)
            messages.success(request, f"Importing {preview.summary.created} cost entries from {stored['filename']}.")
            return redirect(job)
    except DomainError as exc:
        context["refusal"] = exc
        status = exc.status_code
    return render(request, "ops/import_csv.html", context, status=status)
