"""API views of the ops app: thin, the services decide."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from ops import services
from ops.api import filters
from ops.api.serializers import (
    BudgetCreateSerializer,
    BudgetSerializer,
    CostBulkSerializer,
    CostEntryCreateSerializer,
    CostEntrySerializer,
    InfrastructureComponentCreateSerializer,
    InfrastructureComponentSerializer,
    IngestResultSerializer,
    ModelPriceCreateSerializer,
    ModelPriceSerializer,
    PriceImportRequestSerializer,
    PriceImportSerializer,
    QualityMetricCreateSerializer,
    QualityMetricSerializer,
    ReportListSerializer,
    ReportRequestSerializer,
    ReportSerializer,
    RepricePlanSerializer,
    RepriceRequestSerializer,
    RiskAcceptSerializer,
    RiskCloseSerializer,
    RiskCreateSerializer,
    RiskSerializer,
    UsageBulkSerializer,
)
from ops.imports.prices import PriceImport, model_prices_import, price_book_read
from ops.selectors import api as selectors
from ops.services import costs, infrastructure
from ops.services.ingest import IngestResult
from ops.services.reprice import RepricePlan
from projects.models import Role, TokenScope
from projects.selectors import audit_history
from projects.services import membership_require
from tracker.api import QueueUnavailableSerializer
from tracker.api_views import AuditEventSerializer, HistoryMixin, ScopedViewSet
from tracker.exceptions import ValidationFailed

READ = (mixins.ListModelMixin, mixins.RetrieveModelMixin)
WRITE = (mixins.CreateModelMixin, mixins.UpdateModelMixin, mixins.DestroyModelMixin)


class InfrastructureComponentViewSet(*READ, *WRITE, ScopedViewSet):
    """What your projects run on: models, compute, vector stores, pipelines, monitoring."""

    selector = selectors.infrastructure_component_list
    serializer_class = InfrastructureComponentSerializer
    create_serializer_class = InfrastructureComponentCreateSerializer
    filterset_class = filters.InfrastructureComponentFilter
    search_fields = ["name", "model_name", "region", "gpu_type"]
    ordering_fields = ["name", "kind", "provider", "environment", "created_at"]

    def perform_create(self, serializer):
        serializer.instance = services.infrastructure_component_create(
            by=self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = infrastructure.infrastructure_component_update(
            component=serializer.instance, by=self.request.user, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        infrastructure.infrastructure_component_delete(component=instance, by=self.request.user)


class BudgetViewSet(*READ, *WRITE, ScopedViewSet):
    """Budgets of your projects; managers set, change and delete them."""

    selector = selectors.budget_list
    serializer_class = BudgetSerializer
    create_serializer_class = BudgetCreateSerializer
    filterset_class = filters.BudgetFilter
    search_fields = ["notes"]
    ordering_fields = ["period_start", "period_end", "amount", "created_at"]

    def perform_create(self, serializer):
        serializer.instance = services.budget_create(by=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = costs.budget_update(
            budget=serializer.instance, by=self.request.user, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        costs.budget_delete(budget=instance, by=self.request.user)


def reprice_body(plan: RepricePlan) -> dict:
    return {
        "applied": plan.applied,
        "entries": plan.entry_ids,
        "changes": [change.as_fields() for change in plan.changes],
        "totals": [total.as_fields() for total in plan.totals],
        "still_unpriced": plan.still_unpriced,
        "more": plan.more,
    }


def price_import_body(result: PriceImport) -> dict:
    plan = result.reprice
    return {
        "applied": result.applied,
        "source": result.source,
        "version": result.version,
        "models_read": result.models_read,
        "digest": result.digest,
        "new": [change.as_fields() for change in result.new],
        "changed": [change.as_fields() for change in result.changed],
        "deprecations": [change.as_fields() for change in result.deprecations],
        "unchanged": result.unchanged,
        "kept": [{"provider": k.provider, "model": k.model, "valid_from": k.valid_from} for k in result.kept],
        "not_imported": result.not_imported,
        "unknown_providers": result.unknown_providers,
        "reprice": {
            "entries": len(plan.changes),
            "totals": [total.as_fields() for total in plan.totals],
            "still_unpriced": plan.still_unpriced,
        },
    }


def ingest_response(result: IngestResult) -> Response:
    body = {
        "created": len(result.created_ids),
        "created_ids": result.created_ids,
        "existing": result.existing,
    }
    return Response(body, status=status.HTTP_201_CREATED if result.created_ids else status.HTTP_200_OK)


def bulk_entries(request: Request) -> object:
    """Return the body's `entries`, refusing any other top-level field."""
    if not isinstance(request.data, dict) or "entries" not in request.data:
        raise ValidationFailed('Send {"entries": [...]}.', errors={"entries": ["This field is required."]})
    unknown = sorted(set(request.data) - {"entries"})
    if unknown:
        raise ValidationFailed("Unknown field(s).", errors={name: ["Unknown field."] for name in unknown})
    return request.data["entries"]


INGEST_RESPONSES = {
    201: OpenApiResponse(IngestResultSerializer, description="New entries were recorded."),
    200: OpenApiResponse(IngestResultSerializer, description="Every entry was already recorded: nothing new."),
}


@extend_schema_view(
    bulk=extend_schema(
        summary="Record up to 10,000 costs at once (all or nothing, idempotent by external_id)",
        request=CostBulkSerializer,
        responses=INGEST_RESPONSES,
    ),
)
class CostEntryViewSet(*READ, *WRITE, ScopedViewSet):
    """Costs of your projects, in the organization's currency."""

    selector = selectors.cost_entry_list
    serializer_class = CostEntrySerializer
    create_serializer_class = CostEntryCreateSerializer
    filterset_class = filters.CostEntryFilter
    search_fields = ["description", "model", "external_id"]
    ordering_fields = ["date", "amount", "category", "created_at"]
    expensive_actions = frozenset({"bulk"})

    def perform_create(self, serializer):
        serializer.instance = services.cost_entry_create(
            by=self.request.user, source="api", **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = costs.cost_entry_update(
            entry=serializer.instance, by=self.request.user, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        costs.cost_entry_delete(entry=instance, by=self.request.user)

    @action(detail=False, methods=["post"], service_token_write_scopes=(TokenScope.INGEST,))
    def bulk(self, request: Request) -> Response:
        return ingest_response(services.cost_entries_ingest(by=request.user, entries=bulk_entries(request)))


class UsageViewSet(ScopedViewSet):
    """Token usage, priced into inference costs."""

    selector = selectors.cost_entry_list
    serializer_class = UsageBulkSerializer
    service_token_write_scopes = (TokenScope.INGEST,)
    expensive_actions = frozenset({"create"})

    @extend_schema(
        summary="Record token usage: priced with the model price valid on each date (all or nothing)",
        request=UsageBulkSerializer,
        responses=INGEST_RESPONSES,
    )
    def create(self, request: Request) -> Response:
        return ingest_response(services.usage_ingest(by=request.user, entries=bulk_entries(request)))


class ModelPriceViewSet(*READ, *WRITE, ScopedViewSet):
    """What models cost per million tokens from a date on; managers maintain them."""

    selector = selectors.model_price_list
    serializer_class = ModelPriceSerializer
    create_serializer_class = ModelPriceCreateSerializer
    filterset_class = filters.ModelPriceFilter
    search_fields = ["model", "provider"]
    ordering_fields = ["model", "provider", "valid_from"]
    expensive_actions = frozenset({"reprice", "price_import"})

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        organization = data.pop("organization", None) or self.only_organization()
        serializer.instance = services.model_price_create(organization=organization, by=self.request.user, **data)

    def perform_update(self, serializer):
        serializer.instance = costs.model_price_update(
            price=serializer.instance, by=self.request.user, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        costs.model_price_delete(price=instance, by=self.request.user)

    @extend_schema(
        summary="Reprice usage (managers): a dry run lists what changes; apply it with the listed entry ids",
        request=RepriceRequestSerializer,
        responses=RepricePlanSerializer,
    )
    @action(detail=False, methods=["post"])
    def reprice(self, request: Request) -> Response:
        body = RepriceRequestSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        data = body.validated_data
        organization = data.get("organization") or self.only_organization()
        if data["dry_run"]:
            plan = services.usage_reprice_plan(
                organization=organization,
                by=request.user,
                include_priced=data["include_priced"],
                model=data.get("model", ""),
            )
        else:
            plan = services.usage_reprice_apply(
                organization=organization,
                by=request.user,
                entry_ids=data.get("entries", []),
                include_priced=data["include_priced"],
            )
        return Response(reprice_body(plan))

    @extend_schema(
        summary="Import a price book (managers): genai-prices' bundled data or a LiteLLM price file; a dry run first",
        request=PriceImportRequestSerializer,
        responses=PriceImportSerializer,
    )
    @action(detail=False, methods=["post"], url_path="import", url_name="import")
    def price_import(self, request: Request) -> Response:
        body = PriceImportRequestSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        data = body.validated_data
        organization = data.get("organization") or self.only_organization()
        membership_require(user=request.user, organization=organization, role=Role.MANAGER)  # before reading the book
        book = price_book_read(source=data["source"], data=data.get("book"))
        result = model_prices_import(
            organization=organization,
            by=request.user,
            book=book,
            dry_run=data["dry_run"],
            digest=data.get("digest", ""),
        )
        return Response(price_import_body(result))


class QualityMetricViewSet(*READ, *WRITE, ScopedViewSet):
    """Quality measurements of your projects: accuracy, hallucination rate, latency…"""

    selector = selectors.quality_metric_list
    serializer_class = QualityMetricSerializer
    create_serializer_class = QualityMetricCreateSerializer
    filterset_class = filters.QualityMetricFilter
    search_fields = ["name", "notes"]
    ordering_fields = ["date", "metric", "value"]

    def perform_create(self, serializer):
        serializer.instance = services.quality_metric_create(by=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = infrastructure.quality_metric_update(
            record=serializer.instance, by=self.request.user, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        infrastructure.quality_metric_delete(record=instance, by=self.request.user)


@extend_schema_view(
    accept=extend_schema(summary="Accept a risk (managers)", request=RiskAcceptSerializer),
    close=extend_schema(summary="Close a risk", request=RiskCloseSerializer),
)
class RiskViewSet(*READ, mixins.CreateModelMixin, mixins.UpdateModelMixin, HistoryMixin, ScopedViewSet):
    """The risk register. Risks are closed (with a note), not deleted."""

    selector = selectors.risk_list
    serializer_class = RiskSerializer
    create_serializer_class = RiskCreateSerializer
    filterset_class = filters.RiskFilter
    search_fields = ["title", "description", "mitigation_plan"]
    ordering_fields = ["score", "likelihood", "impact", "next_review_date", "created_at", "title"]

    def perform_create(self, serializer):
        serializer.instance = services.risk_create(by=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.risk_update(
            risk=serializer.instance, by=self.request.user, **serializer.validated_data
        )

    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk: str) -> Response:
        risk = self.get_object()
        body = RiskAcceptSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        risk = services.risk_accept(risk=risk, by=request.user, **body.validated_data)
        return Response(RiskSerializer(risk, context=self.get_serializer_context()).data)

    @action(detail=True, methods=["post"])
    def close(self, request: Request, pk: str) -> Response:
        risk = self.get_object()
        body = RiskCloseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        risk = services.risk_close(risk=risk, by=request.user, **body.validated_data)
        return Response(RiskSerializer(risk, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="The risk's history: every recorded change, newest first", responses=AuditEventSerializer(many=True)
    )
    @action(detail=True, methods=["get"])
    def history(self, request: Request, pk: str) -> Response:
        return self.history_response(audit_history(obj=self.get_object()))


@extend_schema_view(
    create=extend_schema(
        summary="Request a report (managers): stored pending, built in the background",
        request=ReportRequestSerializer,
        responses={
            202: ReportSerializer,
            503: OpenApiResponse(
                QueueUnavailableSerializer,
                description="`queue_unavailable`: saved pending, but the task queue is down; poll the report by "
                "`report`, it is built once the queue is back. `statement_timeout`: as on every operation.",
            ),
        },
    ),
)
class ReportViewSet(*READ, mixins.CreateModelMixin, ScopedViewSet):
    """Weekly status and risk reports. `data` is filled once the state is ready."""

    selector = selectors.report_list
    serializer_class = ReportSerializer
    filterset_class = filters.ReportFilter
    ordering_fields = ["period_start", "created_at", "generated_at"]
    expensive_actions = frozenset({"create"})

    def get_queryset(self):
        queryset = super().get_queryset()
        return queryset.defer("data") if self.action == "list" else queryset

    def get_serializer_class(self):
        return ReportListSerializer if self.action == "list" else ReportSerializer

    def create(self, request: Request) -> Response:
        body = ReportRequestSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        project = data.get("project")
        organization = data.pop("organization", None)
        if organization is None:
            organization = project.organization if project else self.only_organization()
        report = services.report_request(organization=organization, by=request.user, **data)
        return Response(ReportSerializer(report).data, status=status.HTTP_202_ACCEPTED)
