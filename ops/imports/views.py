"""The imports page (managers): upload a file, follow its job, read the result; the bill mapping rules."""

from django.contrib import messages
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods, require_POST

from ops.imports.forms import BillingRuleForm, ImportUploadForm
from ops.imports.jobs import import_job_create, import_job_get
from ops.imports.models import BillingMappingRule, ImportJob
from ops.imports.rules import billing_rule_create, billing_rule_delete
from projects.models import Role
from tracker.exceptions import DomainError, ServiceUnavailable
from tracker.web import form_apply_error, organization_required, role_required


def _index_context(request: HttpRequest, form: ImportUploadForm, rule_form: BillingRuleForm) -> dict:
    organization = request.organization
    return {
        "form": form,
        "rule_form": rule_form,
        "jobs": ImportJob.objects.filter(organization=organization).select_related("created_by")[:20],
        "rules": BillingMappingRule.objects.filter(organization=organization).select_related("project"),
    }


@csrf_protect
def _upload(request: HttpRequest) -> HttpResponse:
    form = ImportUploadForm(request.POST, request.FILES)
    status = 400
    if form.is_valid():
        source = form.cleaned_data["source"].strip()
        try:
            job = import_job_create(
                organization=request.organization,
                format=form.cleaned_data["format"],
                upload=form.cleaned_data["file"],
                by=request.user,
                options={"source": source} if source else {},
            )
        except ServiceUnavailable as exc:  # stored, but the queue is down: say so
            form.add_error(None, exc.message)
            status = exc.status_code
        except DomainError as exc:
            form_apply_error(form, exc)
            status = exc.status_code
        else:
            return redirect(job)
    context = _index_context(request, form, BillingRuleForm(organization=request.organization))
    return render(request, "ops/import_list.html", context, status=status)


@csrf_exempt  # checked by `_upload`, once the upload handlers are set (reading the token parses the body)
@organization_required
@require_http_methods(["GET", "POST"])
def import_index(request: HttpRequest) -> HttpResponse:
    """Upload a file to import (it is stored, then a worker imports it); the recent imports and mapping rules."""
    role_required(request, Role.MANAGER)
    if request.method == "POST":
        # To disk, whatever its size: the web process never holds an import in memory.
        request.upload_handlers = [TemporaryFileUploadHandler(request)]
        return _upload(request)
    context = _index_context(request, ImportUploadForm(), BillingRuleForm(organization=request.organization))
    return render(request, "ops/import_list.html", context)


@organization_required
@require_http_methods(["GET"])
def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One import: its progress until done, then what it wrote per project, the unmapped rows and refused lines."""
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
    return render(request, "ops/import_list.html", _index_context(request, ImportUploadForm(), form), status=400)


@organization_required
@require_POST
def billing_rule_remove(request: HttpRequest, pk: int) -> HttpResponse:
    role_required(request, Role.MANAGER)
    rule = get_object_or_404(BillingMappingRule, organization=request.organization, pk=pk)
    billing_rule_delete(rule=rule, by=request.user)
    messages.success(request, "Mapping rule removed.")
    return redirect("ops:imports")
