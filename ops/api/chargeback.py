"""`GET /api/v1/chargeback/` (JSON) and `GET /api/v1/chargeback/export/` (CSV): a month's spend grouped by cost
centre, team, tag or provider (`ops.selectors.chargeback`); viewers and up of the organization."""

import datetime as dt
import re

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from ops import exports
from ops.api.exports import ExportNegotiation
from ops.selectors.chargeback import Chargeback, chargeback
from projects.selectors import organization_list
from tracker.api_views import ScopedViewSet
from tracker.exceptions import ValidationFailed

PARAMS = {"month", "group_by", "organization"}
PARAMETERS = [
    OpenApiParameter("month", str, required=True, description="The month, YYYY-MM.", pattern=r"^\d{4}-\d{2}$"),
    OpenApiParameter(
        "group_by",
        str,
        required=True,
        description="cost_centre, team, provider or tag:KEY (a tag key, e.g. tag:env).",
        pattern=r"^(cost_centre|team|provider|tag:[a-z0-9][a-z0-9_.:/-]{0,62})$",
    ),
    OpenApiParameter("organization", int, description="Required when you belong to several organizations."),
]


class ChargebackRowSerializer(serializers.Serializer):
    key = serializers.CharField(
        help_text="The group's code (cost centre code, team slug, tag value, provider); blank for the unallocated rest."
    )
    label = serializers.CharField()
    amount = serializers.DecimalField(max_digits=18, decimal_places=4)
    share_pct = serializers.DecimalField(max_digits=5, decimal_places=1, allow_null=True)
    entries = serializers.IntegerField()
    unpriced_entries = serializers.IntegerField(help_text="Usage no price covered: counted, never costed.")
    unallocated = serializers.BooleanField()


class ChargebackSerializer(serializers.Serializer):
    organization = serializers.IntegerField()
    month = serializers.CharField(help_text="YYYY-MM.")
    month_start = serializers.DateField()
    month_end = serializers.DateField()
    group_by = serializers.CharField()
    currency = serializers.CharField(help_text="ISO 4217: the currency of every amount.")
    total = serializers.DecimalField(max_digits=18, decimal_places=4, help_text="The rows' sum: every cost once.")
    entries = serializers.IntegerField()
    unpriced_entries = serializers.IntegerField()
    incomplete = serializers.BooleanField(help_text="True: unpriced usage is left out of the amounts.")
    rows = ChargebackRowSerializer(many=True)


def chargeback_data(report: Chargeback) -> dict:
    return {
        "organization": report.organization.pk,
        "month": report.month_start.strftime("%Y-%m"),
        "month_start": report.month_start,
        "month_end": report.month_end,
        "group_by": report.group_by,
        "currency": report.currency,
        "total": report.total,
        "entries": report.entries,
        "unpriced_entries": report.unpriced_entries,
        "incomplete": report.incomplete,
        "rows": [
            {
                "key": row.key,
                "label": row.label,
                "amount": row.amount,
                "share_pct": report.share(row),
                "entries": row.entries,
                "unpriced_entries": row.unpriced_entries,
                "unallocated": row.unallocated,
            }
            for row in report.rows
        ],
    }


def parse_month(value: str | None) -> dt.date:
    """Return the first day of a `YYYY-MM` month; refuse anything else."""
    try:
        if not re.fullmatch(r"\d{4}-\d{2}", value or ""):
            raise ValueError(value)
        return dt.datetime.strptime(value, "%Y-%m").date()
    except ValueError:
        raise ValidationFailed("month: YYYY-MM.", errors={"month": ["A month, YYYY-MM."]}) from None


class ChargebackMixin:
    selector = organization_list
    pagination_class = None
    filter_backends = ()

    def query_params(self) -> set[str]:
        return super().query_params() | PARAMS

    def chargeback_report(self, request: Request) -> Chargeback:
        params = request.query_params
        organizations = self.get_queryset()
        if params.get("organization"):
            try:
                organization = organizations.get(pk=int(params["organization"]))
            except (ValueError, organizations.model.DoesNotExist):
                raise ValidationFailed(
                    "Unknown organization.", errors={"organization": ["Unknown organization."]}
                ) from None
        else:
            organization = self.only_organization()
        return chargeback(
            organization=organization, month=parse_month(params.get("month")), group_by=params.get("group_by", "")
        )


class ChargebackViewSet(ChargebackMixin, ScopedViewSet):
    """A month's spend grouped for chargeback (showback): the groups sum to the total, the unallocated rest last."""

    serializer_class = ChargebackSerializer

    # Not `list`: the answer is one object (a `list` action's schema would be an array of them).
    @extend_schema(parameters=PARAMETERS, responses=ChargebackSerializer, summary="Chargeback report of a month")
    def show(self, request: Request) -> Response:
        return Response(ChargebackSerializer(chargeback_data(self.chargeback_report(request))).data)


class ChargebackExportViewSet(ChargebackMixin, ScopedViewSet):
    """The chargeback report as CSV (raw decimals, the currency on every row)."""

    content_negotiation_class = ExportNegotiation

    @extend_schema(
        parameters=PARAMETERS,
        summary="Chargeback report of a month as CSV",
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV with a header row.")},
    )
    def list(self, request: Request) -> StreamingHttpResponse:
        report = self.chargeback_report(request)
        response = StreamingHttpResponse(
            exports.csv_stream(header=exports.CHARGEBACK_HEADER, rows=exports.chargeback_rows(report)),
            content_type=exports.CONTENT_TYPES[exports.ExportFormat.CSV],
        )
        name = f"chargeback-{report.month_start:%Y-%m}-{re.sub(r'[^a-z0-9_.-]', '-', report.group_by)}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
