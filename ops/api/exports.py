"""`GET /api/v1/{costs,usage,risks}/export/?format=…`: the streamed exports (ops/exports.py writes them).

The rows are the list's rows (its selector, scoped to the caller's organizations) filtered by the list's
FilterSet; an export counts against the organizations' `expensive` rate, like bulk ingestion.
"""

from django.http import StreamingHttpResponse
from django.utils import timezone
from django_filters import FilterSet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request

from ops import exports
from ops.api import filters
from ops.exports import Export, ExportFormat
from ops.selectors import api as selectors
from tracker.api import FilterBackend
from tracker.api_views import ScopedViewSet
from tracker.exceptions import ValidationFailed

FORMAT_PARAM = "format"


class ExportNegotiation(BaseContentNegotiation):
    """`?format=` names the file format, not a DRF renderer; errors are answered in JSON."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ExportViewSet(ScopedViewSet):
    """A streamed file of the list's rows: CSV or NDJSON (costs also FOCUS 1.0)."""

    export: Export
    filterset_class: type[FilterSet]
    content_negotiation_class = ExportNegotiation
    pagination_class = None
    # Applied by `list` itself (after refusing unknown parameters); named here for the schema's parameters.
    filter_backends = (FilterBackend,)
    expensive_actions = frozenset({"list"})

    def list(self, request: Request) -> StreamingHttpResponse:
        params = request.query_params
        unknown = sorted(set(params) - {FORMAT_PARAM, *self.filterset_class.base_filters})
        if unknown:
            raise ValidationFailed(
                "Unknown query parameter(s).", errors={name: ["Unknown query parameter."] for name in unknown}
            )
        export_format = params.get(FORMAT_PARAM, ExportFormat.CSV)
        if export_format not in self.export.formats:
            choices = ", ".join(self.export.formats)
            raise ValidationFailed(
                f"format: choose one of {choices}.", errors={FORMAT_PARAM: [f"Choose one of {choices}."]}
            )
        filterset = self.filterset_class(params, queryset=self.get_queryset(), request=request)
        if not filterset.is_valid():
            raise ValidationFailed(
                "Invalid filter.", errors={name: list(messages) for name, messages in filterset.errors.items()}
            )
        export_format = ExportFormat(export_format)
        response = StreamingHttpResponse(
            exports.export_stream(export=self.export, queryset=filterset.qs, export_format=export_format),
            content_type=exports.CONTENT_TYPES[export_format],
        )
        name = f"{self.export.name}-{timezone.now():%Y%m%d-%H%M%S}.{exports.EXTENSIONS[export_format]}"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


def export_schema(export: Export):
    """The OpenAPI description of an export: its formats, the list's filters, the file types answered."""
    formats = [str(choice) for choice in export.formats]
    return extend_schema_view(
        list=extend_schema(
            summary=f"Download {export.name} as a streamed file ({', '.join(formats)})",
            description=(
                "Every row the list would show with the same filters, streamed as it is read. CSV and NDJSON "
                "carry codes and raw decimals, with the organization's currency on every money row; FOCUS is a "
                "FOCUS 1.0 CSV (docs/api.md, Exports). Counts against the organizations' `expensive` rate."
            ),
            parameters=[
                OpenApiParameter(FORMAT_PARAM, str, enum=formats, default=ExportFormat.CSV, description="File format.")
            ],
            responses={
                (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV with a header row."),
                (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.STR, description="One JSON object a line."),
            },
        )
    )


@export_schema(exports.COSTS)
class CostExportViewSet(ExportViewSet):
    """Costs as CSV, NDJSON or FOCUS 1.0."""

    export = exports.COSTS
    selector = selectors.cost_entry_list
    filterset_class = filters.CostEntryFilter


@export_schema(exports.USAGE)
class UsageExportViewSet(ExportViewSet):
    """Token usage (costs recorded from usage) as CSV or NDJSON."""

    export = exports.USAGE
    selector = selectors.cost_entry_list
    filterset_class = filters.CostEntryFilter


@export_schema(exports.RISKS)
class RiskExportViewSet(ExportViewSet):
    """The risk register as CSV or NDJSON."""

    export = exports.RISKS
    selector = selectors.risk_list
    filterset_class = filters.RiskFilter
