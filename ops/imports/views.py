"""The CSV import page (managers): upload a file, map its columns, preview every row's fate, then import it.

The file is kept between the steps in IMPORT_UPLOADS_DIR under a name only the signed token of the
page knows (it expires after an hour), and removed once imported; the service reads it again at
each step, so what is imported is what the last preview showed.
"""

import datetime as dt
import uuid

from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.core.files.storage import FileSystemStorage
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from ops.imports import csv_costs
from ops.imports.base import csv_lines
from ops.imports.forms import CsvMappingForm, CsvUploadForm
from projects.models import Role
from tracker.exceptions import DomainError
from tracker.web import organization_required, role_required

SALT = "ops.imports.csv"
TOKEN_MAX_AGE = 3600


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
        options = {
            "mapping": form.mapping(),
            "project": form.cleaned_data.get("project", ""),
            "filename": stored["filename"],
        }
        if request.POST.get("action") == "apply":
            with _storage().open(stored["name"], "rb") as stream:
                summary = csv_costs.IMPORTER.apply(
                    organization=organization, stream=stream, options=options, actor=request.user
                )
            _storage().delete(stored["name"])
            already = f"; {summary.unchanged} already recorded" if summary.unchanged else ""
            messages.success(request, f"Imported {summary.created} cost entries from {stored['filename']}{already}.")
            return redirect("ops:import-csv")
        with _storage().open(stored["name"], "rb") as stream:
            context["preview"] = csv_costs.IMPORTER.preview(organization=organization, stream=stream, options=options)
    except DomainError as exc:
        context["refusal"] = exc
        status = exc.status_code
    return render(request, "ops/import_csv.html", context, status=status)
