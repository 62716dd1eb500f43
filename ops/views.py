"""Web pages of the ops app: the dashboard and the project list (their figures are ops's), the
project-page forms for costs, risks, infrastructure and metrics, the risk page, the report archive."""

import datetime as dt
import io
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ops import charts, exports, panels, services
from ops.filters import ProjectListFilter, RiskListFilter
from ops.forms import (
    ChargebackForm,
    CostAnalyticsForm,
    PriceImportForm,
    ReportRequestForm,
    RepriceForm,
    RiskAcceptForm,
    RiskCloseForm,
    RiskEditForm,
)
from ops.imports.prices import model_prices_import, price_book_read
from ops.models import (
    AttentionReason,
    CostEntry,
    CostSource,
    ModelPrice,
    Report,
    ReportKind,
    ReportSpan,
    ReportState,
    Risk,
    RiskStatus,
    Severity,
)
from ops.selectors import analytics
from ops.selectors.api import risk_list
from ops.selectors.chargeback import chargeback
from ops.selectors.dashboard import HeatCell, portfolio_overview, risk_overview
from ops.selectors.portfolio import budget_status_of, my_projects, project_list_with_figures, week_before
from ops.selectors.project_list import CompiledProjectRows, project_rows
from ops.selectors.reports import status_sections
from projects import services as project_services
from projects.middleware import has_role, organization_activate
from projects.models import Project, Role
from projects.panels import FORMS
from projects.selectors import organization_list
from projects.services import organization_today
from projects.views import project_form_view, project_get
from tracker.exceptions import Conflict, DomainError, ServiceUnavailable
from tracker.exports import CsvWriter
from tracker.formatting import label
from tracker.web import form_apply_error, is_htmx, organization_required, role_required

PAGE_SIZE = 25
MINE_LIMIT = 100  # my projects shown at most (a person owns a handful)


@organization_required
def dashboard(request: HttpRequest) -> HttpResponse:
    organization = request.organization
    overview = portfolio_overview(user=request.user, organization=organization)
    context = {
        "overview": overview,
        "spend_chart": panels.chart_data(overview.months),
        "risk_trend_chart": charts.risk_trend_chart(overview.weeks),
        "spend_trend_chart": charts.spend_trend_chart(overview.weeks, currency=organization.currency),
    }
    return render(request, "ops/dashboard.html", context)


def _list_filters(request: HttpRequest) -> ProjectListFilter:
    """Return the project list's filters, validated: a bad value is a form error and filters nothing."""
    filters = ProjectListFilter(request.GET, queryset=Project.objects.none(), organization=request.organization)
    filters.is_valid()
    return filters


@organization_required
def project_index(request: HttpRequest) -> HttpResponse:
    """The project list with each project's figures: health, spend, the current budget, open risks.

    Without a search, its statements are compiled once per shape (`ops.selectors.project_list`).
    """
    filters = _list_filters(request)
    data = filters.form.cleaned_data
    scope = {"user": request.user, "organization": request.organization, "filters": filters}
    rows = project_rows(**scope) if data.get("q") else CompiledProjectRows(**scope, data=data)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    for project in page:
        _list_row(project)
    query = request.GET.copy()
    query.pop("page", None)
    filtered = any(value for key, value in request.GET.items() if key not in ("page", "sort"))
    sort_query = query.copy()
    sort_query.pop("sort", None)
    context = {
        "filters": filters,
        "page": page,
        "query": query.urlencode(),
        "sort_query": sort_query.urlencode(),
        "filtered": filtered,
    }
    if request.headers.get("HX-Target") == "project-table":
        return render(request, "ops/includes/project_table.html", context)
    return render(request, "ops/project_list.html", context)


@organization_required
def cost_analytics(request: HttpRequest) -> HttpResponse:
    """Spend and tokens over time by model, provider and category, unit costs, budgets; each chart as CSV too."""
    organization = request.organization
    form = CostAnalyticsForm(request.GET or None, organization=organization)
    scope = form.scope()
    projects = analytics.cost_analytics_projects(
        user=request.user, organization=organization, team=scope["team"], project=scope["project"]
    )
    data = analytics.cost_analytics(
        projects=projects, organization=organization, months=scope["months"], today=organization_today(organization)
    )
    if download := request.GET.get("download"):
        return _cost_analytics_csv(data, download)
    query = request.GET.copy()
    query.pop("download", None)
    unit = organization.currency
    context = {
        "form": form,
        "data": data,
        "query": query.urlencode(),
        "charts": [
            (
                "model",
                "Spend by model",
                data.by_model,
                charts.breakdown_chart(data.by_model, unit=unit),
                False,
            ),
            (
                "tokens",
                "Tokens by model",
                data.by_model,
                charts.breakdown_chart(data.by_model, tokens=True, unit="tokens"),
                True,
            ),
            (
                "provider",
                "Spend by model provider",
                data.by_provider,
                charts.breakdown_chart(data.by_provider, unit=unit),
                False,
            ),
            (
                "category",
                "Spend by category",
                data.by_category,
                charts.breakdown_chart(data.by_category, unit=unit),
                False,
            ),
        ],
        "billing_chart": charts.billing_chart(data.billing, currency=unit),
        "billing_threshold": settings.RISK_SIGNAL_BILLING_DRIFT_PCT,
    }
    return render(request, "ops/cost_analytics.html", context)


# A chart's CSV: the rows its table view lists (machine format: codes, raw decimals, ISO dates, the currency).
ANALYTICS_CSV = {"model": "by_model", "tokens": "by_model", "provider": "by_provider", "category": "by_category"}
USAGE_COLUMNS = (
    "spend",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "requests",
    "unpriced_entries",
    "unpriced_tokens",
)


def _cost_analytics_csv(data: analytics.CostAnalytics, download: str) -> HttpResponse:
    currency = data.organization.currency
    out = io.StringIO()
    writer = CsvWriter(out)
    if download == "budgets":
        writer.writerow(
            [
                "project",
                "period_start",
                "period_end",
                "amount",
                "spend",
                "burn_rate_per_day",
                "forecast",
                "run_out_date",
                "over_tolerance",
                "unpriced_entries",
                "currency",
            ]
        )
        for row in data.budgets:
            b = row.budget
            run_out = b.run_out_date.isoformat() if b.run_out_date else ""
            writer.writerow(
                [
                    row.project.name,
                    b.period_start.isoformat(),
                    b.period_end.isoformat(),
                    b.amount,
                    b.spend,
                    b.burn_rate,
                    b.forecast,
                    run_out,
                    b.over_tolerance,
                    b.unpriced_entries,
                    currency,
                ]
            )
    elif download == "billing":
        writer.writerow(["month", "estimated", "billed", "effective", "difference", "drift_pct", "currency"])
        for m in data.billing:
            figures = (m.estimated, m.billed, m.effective, m.difference, m.drift_pct)
            writer.writerow([m.month.isoformat(), *("" if f is None else f for f in figures), currency])
    elif download in ANALYTICS_CSV:
        breakdown = getattr(data, ANALYTICS_CSV[download])
        writer.writerow(["month", breakdown.dimension, *USAGE_COLUMNS, "currency"])
        for month, key, _, usage in breakdown.rows():
            code = "other" if key == analytics.OTHER else key
            writer.writerow([month.isoformat(), code, *(getattr(usage, name) for name in USAGE_COLUMNS), currency])
    else:
        raise Http404("No such download.")
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="costs-{download}-{data.start:%Y-%m}-{data.end:%Y-%m-%d}.csv"'
    )
    return response


def _csv_response(stream, name: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(stream, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}-{timezone.now():%Y%m%d-%H%M%S}.csv"'
    return response


@organization_required
@require_GET
def project_index_csv(request: HttpRequest) -> StreamingHttpResponse:
    """The project list's rows as CSV, streamed: the same filters and sort as the page, every page of it."""
    rows = project_rows(user=request.user, organization=request.organization, filters=_list_filters(request))
    return _csv_response(exports.project_list_csv(rows), "projects")


def _list_row(project: Project) -> Project:
    """Give a row of `project_list_with_figures` its budget status, as the list shows it."""
    project.budget = budget_status_of(project)
    return project


@organization_required
def project_mine(request: HttpRequest) -> HttpResponse:
    """My projects (business owner, technical lead or human-oversight owner), what is due this week first.

    `?due=week` keeps only the due ones; the dashboard loads that list as its "due this week" card.
    """
    organization = request.organization
    rows = my_projects(user=request.user, organization=organization, as_of=organization_today(organization))
    due_only = request.GET.get("due") == "week"
    if due_only:
        rows = rows.filter(due=True)
    context = {"rows": [_list_row(p) for p in rows[:MINE_LIMIT]], "due_only": due_only, "limit": MINE_LIMIT}
    if request.headers.get("HX-Target") == "due-this-week":
        return render(request, "ops/includes/due_card.html", context)
    return render(request, "ops/project_mine.html", context)


CHECKIN_ROWS = {"list": "ops/includes/project_row.html", "mine": "ops/includes/mine_row.html"}


def _checkin_row(request: HttpRequest, project: Project, row: str) -> Project | None:
    """Return the row the dialog was opened from, with its figures as the list computes them (None: gone)."""
    organization = request.organization
    if row == "mine":
        rows = my_projects(user=request.user, organization=organization, as_of=organization_today(organization))
    else:
        rows = project_list_with_figures(user=request.user, as_of=organization_today(organization))
    found = rows.filter(pk=project.pk).first()
    return _list_row(found) if found else None


@organization_required
@require_http_methods(["GET", "POST"])
def status_checkin(request: HttpRequest, pk: int) -> HttpResponse:
    """The check-in dialog of the lists and the dashboard: the project page's status form and service.

    htmx gets the form (started from the last update with `?copy=last`); a successful submit answers
    a notice and, out of band, the row it was opened from (`?row=list|mine`) with its new figures.
    Without script the form is the project page's own form page.
    """
    project = project_get(request, pk)
    panel, spec = FORMS["status"]
    role_required(request, spec.role)
    today = organization_today(project.organization)
    row = request.GET.get("row", "")
    row = row if row in CHECKIN_ROWS else ""
    if request.method == "GET":
        build = spec.copy_last if request.GET.get("copy") == "last" else spec.build
        form = build(project=project, today=today)
    else:
        form = spec.build(project=project, today=today, data=request.POST)
        if form.is_valid():
            try:
                project_services.status_update_create(project=project, by=request.user, **form.cleaned_data)
            except DomainError as exc:
                form_apply_error(form, exc)
            else:
                if not is_htmx(request):
                    messages.success(request, "Status update logged.")
                    return redirect(project)
                context = {"project": project, "row": row, "row_template": CHECKIN_ROWS.get(row)}
                context["p"] = _checkin_row(request, project, row) if row else None
                return render(request, "ops/includes/checkin_done.html", context)
    context = {"project": project, "form": form, "spec": spec, "panel": panel}
    if is_htmx(request):
        return render(request, spec.template, context | {"dialog": True, "row": row})
    return render(request, "projects/project_form_page.html", context | {"standalone": True})


@project_form_view(panels.COST, "Cost recorded.")
def cost_create(project: Project, request: HttpRequest, form: Form) -> None:
    """Record a cost."""
    services.cost_entry_create(project=project, by=request.user, **form.service_fields())


@project_form_view(panels.USAGE, "Usage recorded.")
def usage_create(project: Project, request: HttpRequest, form: Form) -> None:
    """Record token usage: priced with the provider's price valid on its date, else kept unpriced."""
    services.usage_record(project=project, by=request.user, **form.service_fields())


@project_form_view(panels.BUDGET, "Budget set.")
def budget_create(project: Project, request: HttpRequest, form: Form) -> None:
    """Set a budget (managers)."""
    services.budget_create(project=project, by=request.user, **form.cleaned_data)


@project_form_view(panels.RISK, "Risk added.")
def risk_create(project: Project, request: HttpRequest, form: Form) -> None:
    """Register a risk of the project."""
    services.risk_create(project=project, by=request.user, **form.cleaned_data)


@project_form_view(panels.CATALOGUE, "Risk added from the catalogue.")
def risk_create_from_catalogue(project: Project, request: HttpRequest, form: Form) -> None:
    """Add a catalogue risk in one click."""
    services.risk_create_from_catalogue(project=project, by=request.user, key=form.cleaned_data["key"])


@project_form_view(panels.INFRASTRUCTURE, "Infrastructure recorded.")
def infrastructure_create(project: Project, request: HttpRequest, form: Form) -> None:
    """Record an infrastructure component."""
    services.infrastructure_component_create(project=project, by=request.user, **form.cleaned_data)


@project_form_view(panels.METRIC, "Quality metric recorded.")
def metric_create(project: Project, request: HttpRequest, form: Form) -> None:
    """Record a quality metric."""
    services.quality_metric_create(project=project, by=request.user, **form.service_fields())


def _risk_get(request: HttpRequest, pk: int) -> Risk:
    """Return a risk of one of the user's organizations (404 otherwise), switching to its organization."""
    risk = get_object_or_404(
        Risk.objects.filter(organization__in=organization_list(user=request.user)).select_related(
            "project", "owner", "organization", "accepted_by"
        ),
        pk=pk,
    )
    if risk.organization_id != request.organization.pk:
        organization_activate(request, risk.organization_id)
    return risk


def _risk_rows(request: HttpRequest) -> tuple[RiskListFilter, QuerySet[Risk]]:
    """Return the risk register's filters and its rows, filtered and sorted as the URL says (page and CSV)."""
    risks = risk_list(user=request.user).filter(organization=request.organization)
    filters = RiskListFilter(request.GET, queryset=risks, organization=request.organization)
    rows = filters.qs
    return filters, rows.order_by(*rows.query.order_by, "-score", "title", "pk")


@organization_required
@require_GET
def risk_index_csv(request: HttpRequest) -> StreamingHttpResponse:
    """The risk register's rows as CSV, streamed: the same filters (the heat-map cell too) and sort as the page."""
    _, rows = _risk_rows(request)
    return _csv_response(exports.risk_register_csv(rows), "risks")


@organization_required
def risk_index(request: HttpRequest) -> HttpResponse:
    """The risk page: heat map (a cell filters), top risks, overdue reviews, signals and the filtered register."""
    organization = request.organization
    filters, rows = _risk_rows(request)
    overview = risk_overview(organization=organization, risks=filters.without_cell().qs)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    cell_query = request.GET.copy()
    for key in ("page", "likelihood", "impact"):
        cell_query.pop(key, None)
    context = {
        "form": filters.form,
        "overview": overview,
        "page": page,
        "query": query.urlencode(),
        "cell_query": cell_query.urlencode(),
        "cell": filters.cell(),
        "today": organization_today(organization),
    }
    if request.headers.get("HX-Target") == "risk-results":
        return render(request, "ops/includes/risk_results.html", context)
    return render(request, "ops/risk_list.html", context)


def _risk_page(request: HttpRequest, risk: Risk, **forms) -> HttpResponse:
    initial = {name: getattr(risk, name) for name in RiskEditForm.base_fields if hasattr(risk, name)}
    context = {
        "risk": risk,
        "edit_form": forms.get("edit")
        or RiskEditForm(initial=initial, organization=risk.organization, status=risk.status),
        "accept_form": forms.get("accept") or RiskAcceptForm(),
        "close_form": forms.get("close") or RiskCloseForm(),
        "assessments": risk.assessments.select_related("by").order_by("-assessed_at")[:20],
        "can_edit": risk.status != RiskStatus.CLOSED,
        "can_close": risk.status in RiskStatus.active() and has_role(request, services.risk_close_role(risk=risk)),
    }
    template = "ops/includes/risk_panel.html" if is_htmx(request) else "ops/risk_detail.html"
    return render(request, template, context)


@organization_required
def risk_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _risk_page(request, _risk_get(request, pk))


def _risk_action(request: HttpRequest, pk: int, key: str, form, act, notice: str, role: Role) -> HttpResponse:
    risk = _risk_get(request, pk)
    role_required(request, role)
    if key == "edit":
        form = form(request.POST, organization=risk.organization, status=risk.status)
    else:
        form = form(request.POST)
    if form.is_valid():
        try:
            risk = act(risk, form.cleaned_data)
        except Conflict as exc:  # the risk changed meanwhile: show it as it is now, and why nothing happened
            messages.error(request, exc.message)
            return _risk_page(request, _risk_get(request, pk))
        except DomainError as exc:
            form_apply_error(form, exc)
        else:
            messages.success(request, notice)
            if not is_htmx(request):
                return redirect(risk)
            return _risk_page(request, _risk_get(request, pk))
    return _risk_page(request, risk, **{key: form})


@organization_required
@require_POST
def risk_edit(request: HttpRequest, pk: int) -> HttpResponse:
    def act(risk: Risk, data: dict) -> Risk:
        note = data.pop("note")
        return services.risk_update(risk=risk, by=request.user, note=note, **data)

    return _risk_action(request, pk, "edit", RiskEditForm, act, "Risk saved.", Role.CONTRIBUTOR)


@organization_required
@require_POST
def risk_accept(request: HttpRequest, pk: int) -> HttpResponse:
    return _risk_action(
        request,
        pk,
        "accept",
        RiskAcceptForm,
        lambda risk, data: services.risk_accept(risk=risk, by=request.user, **data),
        "Risk accepted.",
        Role.MANAGER,
    )


@organization_required
@require_POST
def risk_close(request: HttpRequest, pk: int) -> HttpResponse:
    return _risk_action(
        request,
        pk,
        "close",
        RiskCloseForm,
        lambda risk, data: services.risk_close(risk=risk, by=request.user, note=data["note"]),
        "Risk closed.",
        Role.CONTRIBUTOR,
    )


@organization_required
def chargeback_index(request: HttpRequest) -> HttpResponse:
    """The chargeback (showback) report of a month: a table, a chart with its table view, CSV and FOCUS downloads."""
    organization = request.organization
    today = organization_today(organization)
    form = ChargebackForm(request.GET or None, initial={"month": today.replace(day=1), "group_by": "cost_centre"})
    month, group_by = today, "cost_centre"
    if form.is_bound and form.is_valid():
        month, group_by = form.cleaned_data["month"], form.grouping()
    report = chargeback(organization=organization, month=month, group_by=group_by)
    query = {"month": f"{report.month_start:%Y-%m}", "group_by": report.group_by, "organization": organization.pk}
    focus = {"format": "focus", "date_after": report.month_start, "date_before": report.month_end}
    context = {
        "form": form,
        "report": report,
        "rows": [(row, report.share(row)) for row in report.rows],
        "chart": {
            "labels": [row.label for row in report.rows],
            "series": [{"label": f"Spend ({report.currency})", "data": [float(r.amount) for r in report.rows]}],
        },
        "csv_url": f"{reverse('api-ops:chargeback-export')}?{urlencode(query)}",
        "focus_url": f"{reverse('api-ops:cost-export')}?{urlencode(focus)}",
    }
    return render(request, "ops/chargeback.html", context)


@organization_required
@require_http_methods(["GET", "POST"])
def price_index(request: HttpRequest) -> HttpResponse:
    """Model prices (every member reads them) and repricing (managers): a dry-run table, then applying it."""
    organization = request.organization
    form = RepriceForm(request.POST or request.GET or None)
    if form.is_bound:
        role_required(request, Role.MANAGER)
    plan = None
    status = 200
    if form.is_bound and form.is_valid():
        include_priced = form.cleaned_data["include_priced"]
        try:
            if request.method == "POST":
                plan = services.usage_reprice_apply(
                    organization=organization,
                    by=request.user,
                    entry_ids=form.entry_ids(),
                    include_priced=include_priced,
                )
                count = len(plan.changes)
                messages.success(request, f"Repriced {count} usage entr{'y' if count == 1 else 'ies'}.")
                return redirect("ops:prices")
            plan = services.usage_reprice_plan(
                organization=organization, by=request.user, include_priced=include_priced
            )
        except DomainError as exc:
            form_apply_error(form, exc)
            status = exc.status_code
    context = {
        "prices": ModelPrice.objects.filter(organization=organization).order_by("model", "provider", "-valid_from"),
        "waiting": CostEntry.objects.filter(
            project__organization=organization, source=CostSource.USAGE, amount__isnull=True
        ).count(),
        "form": form,
        "plan": plan,
        "entry_ids": ",".join(str(pk) for pk in plan.entry_ids) if plan else "",
    }
    return render(request, "ops/price_list.html", context, status=status)


@organization_required
@require_http_methods(["GET", "POST"])
def price_import(request: HttpRequest) -> HttpResponse:
    """Import a price book (managers): choose it, see the diff (a dry run), confirm it; then reprice."""
    role_required(request, Role.MANAGER)
    organization = request.organization
    form = PriceImportForm(request.POST or None, request.FILES or None, organization=organization)
    result, status = None, 200
    if form.is_bound and form.is_valid():
        digest = form.cleaned_data["digest"]
        try:
            book = price_book_read(source=form.cleaned_data["source"], data=form.book_data)
            result = model_prices_import(
                organization=organization, by=request.user, book=book, dry_run=not digest, digest=digest
            )
        except DomainError as exc:
            form_apply_error(form, exc)
            status = exc.status_code
        else:
            if digest:
                messages.success(request, f"Imported {result.writes} price changes from {result.version}.")
                return redirect(f"{reverse('ops:prices')}?preview=1#reprice-title")
    context = {"form": form, "result": result, "signed_book": form.signed_book() if result else ""}
    return render(request, "ops/price_import.html", context, status=status)


def _report_get(request: HttpRequest, pk: int) -> Report:
    report = get_object_or_404(
        Report.objects.filter(organization__in=organization_list(user=request.user)).select_related(
            "project", "organization", "requested_by"
        ),
        pk=pk,
    )
    if report.organization_id != request.organization.pk:
        organization_activate(request, report.organization_id)
    return report


@organization_required
def report_index(request: HttpRequest) -> HttpResponse:
    """The report archive, newest period first, grouped by period."""
    reports = Report.objects.filter(organization=request.organization).select_related("project")
    kind = request.GET.get("kind", "")
    if kind in ReportKind.values:
        reports = reports.filter(kind=kind)
    scope = request.GET.get("scope", "organization")
    reports = reports.filter(project__isnull=scope != "projects")
    page = Paginator(reports.order_by("-period_start", "kind", "project__name", "pk"), 40).get_page(
        request.GET.get("page")
    )
    weeks: dict[tuple[dt.date, dt.date], list[Report]] = {}
    for report in page:
        weeks.setdefault((report.period_start, report.period_end), []).append(report)
    last_week, _ = week_before(organization=request.organization)
    context = {
        "weeks": weeks,
        "page": page,
        "kind": kind,
        "scope": scope,
        "kinds": ReportKind.choices,
        "request_form": ReportRequestForm(
            initial={"kind": ReportKind.STATUS, "span": ReportSpan.WEEK, "week": last_week}
        ),
    }
    return render(request, "ops/report_list.html", context)


@organization_required
@require_POST
def report_create(request: HttpRequest) -> HttpResponse:
    """Ask for a report now; the page then shows its progress until it is ready."""
    role_required(request, Role.MANAGER)
    form = ReportRequestForm(request.POST)
    status = 400  # a refusal answers with its own status, as the API does
    if form.is_valid():
        start, end = form.period()
        try:
            report = services.report_request(
                organization=request.organization,
                kind=form.cleaned_data["kind"],
                period_start=start,
                period_end=end,
                by=request.user,
                notify=form.cleaned_data["notify"],
            )
        except ServiceUnavailable as exc:  # saved pending, but the queue is down: say so, with a 503
            form.add_error(None, exc.message)
            status = exc.status_code
        except DomainError as exc:
            form_apply_error(form, exc)
            status = exc.status_code
        else:
            return redirect(report)
    context = {"weeks": {}, "request_form": form, "kinds": ReportKind.choices}
    return render(request, "ops/report_list.html", context, status=status)


TIME_KEYS = ("month", "week", "date", "day", "period", "period_start")


def _title(key: str) -> str:
    return key.replace("_", " ").capitalize()


def _cell(value: object) -> object:
    if isinstance(value, list):
        return ", ".join(str(_cell(v)) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{_title(k)}: {_cell(v)}" for k, v in value.items())
    return "—" if value is None or value == "" else value


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def report_sections(data: dict) -> list[dict]:
    """Lay a report's JSON out for the page: scalars as a summary, lists of rows as tables, series as charts."""
    sections, summary = [], []
    for key, value in (data or {}).items():
        if isinstance(value, list) and value and all(isinstance(row, dict) for row in value):
            headers = list(dict.fromkeys(k for row in value for k in row))
            section = {
                "title": _title(key),
                "kind": "table",
                "headers": [_title(h) for h in headers],
                "rows": [[_cell(row.get(h)) for h in headers] for row in value],
            }
            numeric = [h for h in headers[1:] if all(_number(row.get(h)) is not None for row in value)]
            if headers[0] in TIME_KEYS and numeric:
                section["chart"] = {
                    "labels": [str(row.get(headers[0])) for row in value],
                    "series": [
                        {"label": _title(h), "data": [_number(row.get(h)) for row in value]} for h in numeric[:3]
                    ],
                }
            sections.append(section)
        elif isinstance(value, dict):
            rows = [(_title(k), _cell(v)) for k, v in value.items()]
            sections.append({"title": _title(key), "kind": "values", "rows": rows})
        elif isinstance(value, list):
            sections.append({"title": _title(key), "kind": "text", "text": _cell(value) if value else "None."})
        else:
            summary.append((_title(key), _cell(value)))
    return ([{"title": "Summary", "kind": "values", "rows": summary}] if summary else []) + sections


RISK_LISTS = (
    ("new", "New risks"),
    ("escalated", "Escalated"),
    ("overdue_reviews", "Overdue reviews"),
    ("accepted", "Accepted"),
    ("closed", "Closed"),
    ("signals_raised", "Signals raised"),
    ("signals_cleared", "Signals cleared"),
)


def report_context(report: Report) -> dict:
    """Shape a ready report's data for its page: headline figures, a chart, tables."""
    from ops.selectors.reports import report_headline

    data = report.data or {}
    if report.state != ReportState.READY or not data:
        return {}
    context: dict = {"headline": report_headline(report)}
    if report.kind == ReportKind.STATUS:
        projects = status_sections(data)
        ranked = sorted(projects, key=lambda p: float(p["spend_period"] or 0), reverse=True)[:15]
        context["projects"] = projects
        context["attention"] = [
            a | {"reasons": [label(AttentionReason, reason) for reason in a["reasons"]]}
            for a in data.get("needs_attention", [])
        ]
        context["chart"] = {
            "labels": [p["name"] for p in ranked],
            "series": [{"label": "Spend in the period", "data": [float(p["spend_period"] or 0) for p in ranked]}],
        }
    elif report.kind == ReportKind.RISK:
        matrix = data.get("matrix") or [[0] * 5 for _ in range(5)]
        context["heatmap"] = [
            [HeatCell(lk, im, matrix[lk - 1][im - 1]) for lk in range(1, 6)] for im in range(5, 0, -1)
        ]
        context["top_risks"] = data.get("top_risks", [])
        context["risk_lists"] = [(title, data[key]) for key, title in RISK_LISTS if key in data]
        severity = data.get("totals", {}).get("by_severity", {})
        context["chart"] = {
            "labels": [label(Severity, code) for code in severity],
            "series": [{"label": "Open risks", "data": list(severity.values())}],
        }
    return context


@organization_required
def report_detail(request: HttpRequest, pk: int) -> HttpResponse:
    report = _report_get(request, pk)
    known = report.kind in ReportKind.values and "kind" in (report.data or {})
    context = {"report": report, "sections": [] if known else report_sections(report.data)} | report_context(report)
    return render(request, "ops/report_detail.html", context)


@organization_required
def report_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress fragment the report page polls; once the report is finished the page reloads itself."""
    report = _report_get(request, pk)
    response = render(request, "ops/includes/report_progress.html", {"report": report})
    if report.state in (ReportState.READY, ReportState.FAILED):
        response["HX-Refresh"] = "true"
    return response


@organization_required
@require_http_methods(["GET"])
def report_download(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    """Download a ready report as Markdown or CSV."""
    from ops.selectors.reports import report_csv, report_markdown

    if fmt not in ("md", "csv"):
        raise Http404("Markdown (md) or CSV (csv) only.")
    report = _report_get(request, pk)
    if report.state != ReportState.READY:
        messages.error(request, "The report is not ready yet.")
        return redirect(report)
    body, content_type = (report_markdown(report), "text/markdown") if fmt == "md" else (report_csv(report), "text/csv")
    name = f"{report.kind}-report-{report.period_start:%Y-%m-%d}{'-' + report.project.slug if report.project else ''}"
    response = HttpResponse(body, content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response
