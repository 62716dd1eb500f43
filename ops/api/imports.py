"""Imports over the API: upload a file (`POST imports/`, multipart), follow its job; bill mapping rules."""

from typing import Any

from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.http import HttpRequest
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from ops.imports.jobs import FORMATS, IMPORT_OPTIONS, import_job_create
from ops.imports.models import BillingMappingRule, ImportJob, MappingField
from ops.imports.rules import billing_rule_create, billing_rule_delete
from ops.selectors.imports import billing_rule_list, import_job_list
from projects.api.serializers import organization_field, project_field
from tracker.api import StrictModelSerializer, StrictSerializer
from tracker.api_views import ScopedViewSet

OPTION_NAMES_MAX = 500


class ImportJobSerializer(StrictModelSerializer):
    progress_pct = serializers.IntegerField(read_only=True)

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "organization",
            "format",
            "filename",
            "options",
            "status",
            "rows_done",
            "rows_total",
            "progress_pct",
            "summary",
            "errors",
            "error_count",
            "failure",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


def _names_map(value: object) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise serializers.ValidationError("A JSON object of names to names.")
    if len(value) > OPTION_NAMES_MAX:
        raise serializers.ValidationError(f"At most {OPTION_NAMES_MAX} names.")
    return value


class ImportUploadSerializer(StrictSerializer):
    format = serializers.ChoiceField(choices=sorted(FORMATS))
    file = serializers.FileField(allow_empty_file=False, help_text="The file, unchanged (CSV for every format).")
    organization = organization_field(required=False, help_text="Required when you belong to more than one.")
    source = serializers.CharField(
        max_length=200, required=False, help_text="focus: who issued the bill (default: its ProviderName column)."
    )
    project = serializers.SlugField(
        max_length=80, required=False, help_text="csv: the project (slug) of rows without a project column."
    )
    mapping = serializers.JSONField(
        binary=True,
        required=False,
        validators=[_names_map],
        help_text='csv: the file\'s columns to cost entry fields, as JSON ({"Cost": "amount"}); default by name.',
    )
    project_map = serializers.JSONField(
        binary=True,
        required=False,
        validators=[_names_map],
        help_text='codecarbon: project_name values to project slugs, as JSON ({"bert-run": "search"}).',
    )


class ImportJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, ScopedViewSet):
    """File imports (members read, managers upload): a FOCUS bill, CodeCarbon runs or a cost CSV; poll the job."""

    selector = import_job_list
    serializer_class = ImportJobSerializer
    ordering_fields = ["created_at"]
    expensive_actions = frozenset({"create"})
    service_tokens_refused = True
    parser_classes = [MultiPartParser]  # the only body is the upload

    def initialize_request(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Request:
        # To disk, whatever its size: the web process never holds an import in memory. Set before anything
        # reads the body (the Idempotency-Key check fingerprints it before the view runs).
        request.upload_handlers = [TemporaryFileUploadHandler(request)]
        return super().initialize_request(request, *args, **kwargs)

    @extend_schema(request={"multipart/form-data": ImportUploadSerializer}, responses={202: ImportJobSerializer})
    def create(self, request: Request) -> Response:
        body = ImportUploadSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        data = body.validated_data
        job = import_job_create(
            organization=data.get("organization") or self.only_organization(),
            format=data["format"],
            upload=data["file"],
            by=request.user,
            options={name: data[name] for name in IMPORT_OPTIONS if data.get(name)},
        )
        return Response(ImportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class BillingRuleSerializer(StrictModelSerializer):
    field = serializers.ChoiceField(choices=MappingField.choices, help_text="The FOCUS column to match.")
    project = project_field()

    class Meta:
        model = BillingMappingRule
        fields = ["id", "organization", "field", "value", "project", "created_at"]
        read_only_fields = ["organization", "created_at"]


class BillingRuleViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, ScopedViewSet):
    """Bill mapping rules: a FOCUS row whose column equals the value belongs to the project (managers write)."""

    selector = billing_rule_list
    serializer_class = BillingRuleSerializer
    ordering_fields = ["field", "value", "created_at"]

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = billing_rule_create(
            organization=data["project"].organization,
            field=data["field"],
            value=data["value"],
            project=data["project"],
            by=self.request.user,
        )

    def perform_destroy(self, instance):
        billing_rule_delete(rule=instance, by=self.request.user)
