"""Import jobs: an uploaded file kept in the default storage and imported by a worker, with progress.

The web process streams the upload to storage (Django spools it to a temporary file, never to
memory, and the storage copies it chunk by chunk); the task `ops.import_job_run` opens it from
there, so web and worker must share the storage (MEDIA_ROOT, a shared volume in compose). The
command line runs the same `import_job_execute` in-process on a local file.
"""

import csv
import io
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict
from typing import IO, Any

from celery import current_app
from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File
from django.db import InterfaceError, OperationalError, transaction
from django.http import Http404
from django.utils import timezone
from django.utils.module_loading import import_string
from kombu.exceptions import OperationalError as KombuOperationalError

from ops.imports.base import FileImporter, LineError, Preview
from ops.imports.models import ImportFormat, ImportJob, ImportStatus
from projects import audit
from projects.models import Organization, Role
from projects.services import membership_require
from tracker.exceptions import ServiceUnavailable, ValidationFailed

logger = logging.getLogger(__name__)

# Format name → dotted path of its importer (an `ops.imports.base.FileImporter`), loaded on first use.
FORMATS: dict[str, str] = {
    ImportFormat.FOCUS: "ops.imports.focus.IMPORTER",
    ImportFormat.CODECARBON: "ops.imports.codecarbon.IMPORTER",
    ImportFormat.CSV: "ops.imports.csv_costs.IMPORTER",
}
# The options an upload may set: focus `source`; csv `project` and `mapping`; codecarbon `project_map`.
IMPORT_OPTIONS = ("source", "project", "mapping", "project_map")
# How many refused lines a job keeps in detail (all are counted).
ERRORS_KEPT = 200
# Rows between two progress writes.
PROGRESS_EVERY = 20_000


def importer_get(format: str) -> FileImporter:
    """Return the importer of `format`, or refuse an unknown format with the known ones."""
    if format not in FORMATS:
        raise ValidationFailed(
            f"Unknown format {format!r}: choose one of {', '.join(sorted(FORMATS))}.",
            errors={"format": [f"Choose one of {', '.join(sorted(FORMATS))}."]},
        )
    return import_string(FORMATS[format])


def _lines_count(binary: IO[bytes]) -> int:
    """Count the data rows of a file (its lines after the header) in 64 KiB reads, then rewind."""
    count, last = 0, b"\n"
    for chunk in iter(lambda: binary.read(1 << 16), b""):
        count += chunk.count(b"\n")
        last = chunk[-1:]
    binary.seek(0)
    return max(0, count + (last != b"\n") - 1)


class _ProgressLines(io.TextIOBase):
    """A text stream's lines, counted as they are read; every PROGRESS_EVERY rows the job's progress is saved."""

    def __init__(self, text: IO[str], job: ImportJob):
        super().__init__()
        self._text, self._job, self.lines = text, job, 0
        # An importer that holds the connection in a COPY while it reads (ops.imports.focus) sets this to
        # end the COPY first: the progress write needs the connection.
        self.before_save: Callable[[], None] = lambda: None

    def readable(self) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        job, every = self._job, PROGRESS_EVERY
        for line in self._text:
            self.lines += 1
            if self.lines % every == 0:
                done = min(self.lines - 1, job.rows_total)
                self.before_save()
                ImportJob.objects.filter(pk=job.pk).update(rows_done=done)
            yield line

    def read(self, size: int = -1) -> str:
        return self._text.read(size)


def _errors_json(errors: list[LineError]) -> list[dict[str, Any]]:
    return [asdict(e) for e in errors[:ERRORS_KEPT]]


@transaction.atomic
def import_job_create(
    *,
    organization: Organization,
    format: str,
    upload: File,
    by: AbstractBaseUser,
    options: Mapping[str, Any] | None = None,
    enqueue: bool = True,
) -> ImportJob:
    """Store an uploaded file and enqueue its import (managers only); the task runs `import_job_run`."""
    membership_require(user=by, organization=organization, role=Role.MANAGER)
    importer_get(format)
    job = ImportJob(
        organization=organization,
        format=format,
        filename=os.path.basename(upload.name or "")[:255],
        options=dict(options or {}),
        created_by=by,
    )
    # The storage writes the file in chunks (or moves Django's temporary upload file).
    job.file.save(job.filename or "upload", upload, save=False)
    job.save()
    if enqueue:
        job_id = job.pk

        def publish() -> None:
            try:
                # By name: services never import tasks.
                current_app.signature("ops.import_job_run", args=[job_id]).delay()
            except KombuOperationalError as exc:
                logger.warning("Could not enqueue import %s, left pending: %s", job_id, exc)
                raise ServiceUnavailable(
                    "The import is saved but the worker queue is unavailable; try again shortly.",
                    code="queue_unavailable",
                ) from exc

        transaction.on_commit(publish)
    return job


def _text(binary: IO[bytes]) -> io.TextIOWrapper:
    # utf-8-sig: spreadsheet exports often start with a byte-order mark.
    return io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")


def import_job_execute(*, job: ImportJob, binary: IO[bytes]) -> ImportJob:
    """Import `binary` (the job's file, opened for reading) with the job's importer, saving progress and outcome.

    History is attributed to the job's creator (a worker has no request of its own).
    """
    job.rows_total = _lines_count(binary)
    job.status, job.started_at, job.rows_done = ImportStatus.RUNNING, timezone.now(), 0
    job.save(update_fields=["rows_total", "status", "started_at", "rows_done", "updated_at"])
    text = _text(binary)
    options = {**job.options, "import_job_id": job.pk, "filename": job.filename}
    try:
        with audit.audit_actor(job.created_by):
            outcome = importer_get(job.format).apply(
                organization=job.organization, stream=_ProgressLines(text, job), options=options, actor=job.created_by
            )
    except ValidationFailed as exc:  # the file as a whole was refused: nothing was written
        job.status, job.failure = ImportStatus.FAILED, exc.message
        job.errors = [{"line": 0, "message": m, "column": f} for f, ms in (exc.errors or {}).items() for m in ms]
    except (UnicodeDecodeError, csv.Error) as exc:  # read past the header: the importer's transaction rolled back
        job.status, job.failure = ImportStatus.FAILED, f"The file is not UTF-8 CSV: {exc}"[:2000]
    else:
        job.status, job.summary = ImportStatus.DONE, outcome.as_json()
        job.errors, job.error_count = _errors_json(outcome.errors), len(outcome.errors)
        job.rows_total = job.rows_done = outcome.rows
    finally:
        text.detach()
    job.finished_at = timezone.now()
    job.save()
    return job


def import_file_preview(
    *, organization: Organization, format: str, binary: IO[bytes], options: Mapping[str, Any] | None = None
) -> Preview:
    """What importing a local file would write, writing nothing (the command's --dry-run)."""
    text = _text(binary)
    try:
        return importer_get(format).preview(organization=organization, stream=text, options=dict(options or {}))
    finally:
        text.detach()


def import_file_run(
    *,
    organization: Organization,
    format: str,
    binary: IO[bytes],
    filename: str,
    by: AbstractBaseUser,
    options: Mapping[str, Any] | None = None,
) -> ImportJob:
    """Import a local file in this process (the command line, managers only): a job with no stored file, run at once."""
    membership_require(user=by, organization=organization, role=Role.MANAGER)
    importer_get(format)
    job = ImportJob.objects.create(
        organization=organization, format=format, filename=filename[:255], options=dict(options or {}), created_by=by
    )
    return import_job_execute(job=job, binary=binary)


def import_job_run(*, job_id: int) -> ImportJob | None:
    """Run a stored import; a finished one (done or failed) is left alone.

    A running one is run again: only a lost worker's redelivered message finds it so, and an import
    is idempotent (its periods are replaced, so the same file twice writes the rows once).
    """
    job = (
        ImportJob.objects.filter(pk=job_id, status__in=[ImportStatus.PENDING, ImportStatus.RUNNING])
        .select_related("organization", "created_by")
        .first()
    )
    if job is None:
        return None
    try:
        with job.file.open("rb") as binary:
            return import_job_execute(job=job, binary=binary)
    except (OperationalError, InterfaceError):
        raise  # transient: the task retries, the job stays running
    except Exception as exc:
        ImportJob.objects.filter(pk=job_id).update(
            status=ImportStatus.FAILED, failure=f"{type(exc).__name__}: {exc}"[:2000], finished_at=timezone.now()
        )
        raise


def import_job_get(*, organization: Organization, job_id: int, by: AbstractBaseUser) -> ImportJob:
    """Return one of the organization's import jobs to a member; anything else is not found."""
    membership_require(user=by, organization=organization, role=Role.VIEWER)
    job = ImportJob.objects.filter(organization=organization, pk=job_id).select_related("created_by").first()
    if job is None:
        raise Http404("No such import.")
    return job
