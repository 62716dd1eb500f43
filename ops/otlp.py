"""OTLP/HTTP traces: read an export (protobuf or the OTLP JSON mapping, maybe gzip), pick its usage spans, answer.

The mapping from OpenTelemetry's GenAI names to ours lives here, the conventions' names as constants
(docs/otlp.md documents it). Nothing here touches the database: ops/services/otlp.py records the usage.

Which spans are usage: a span that itself carries `gen_ai.usage.input_tokens` or
`gen_ai.usage.output_tokens` (or the older `prompt_tokens`/`completion_tokens`). A parent never counts
its children's tokens again: token counts are never summed up the tree, and the spans of the
conventions' aggregate operations (`invoke_agent`, `create_agent`, `execute_tool`, `invoke_workflow`),
which report the sum of the model calls beneath them, are ignored even when they carry usage.
"""

import base64
import binascii
import datetime as dt
import json
import zlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

# OpenTelemetry semantic conventions (GenAI and resource).
SERVICE_NAME = "service.name"
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_SYSTEM = "gen_ai.system"  # the older name of gen_ai.provider.name
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"  # includes the cached input tokens
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_PROMPT_TOKENS = "gen_ai.usage.prompt_tokens"  # the older name of input_tokens
GEN_AI_USAGE_COMPLETION_TOKENS = "gen_ai.usage.completion_tokens"  # the older name of output_tokens
# Ours: names the project (its id or slug) on a span or its resource, ahead of service.name.
TRACKER_PROJECT = "tracker.project"

AGGREGATE_OPERATIONS = frozenset({"invoke_agent", "create_agent", "execute_tool", "invoke_workflow"})
_SPAN_KEYS = frozenset(
    {
        TRACKER_PROJECT,
        GEN_AI_OPERATION_NAME,
        GEN_AI_PROVIDER_NAME,
        GEN_AI_SYSTEM,
        GEN_AI_RESPONSE_MODEL,
        GEN_AI_REQUEST_MODEL,
        GEN_AI_USAGE_INPUT_TOKENS,
        GEN_AI_USAGE_OUTPUT_TOKENS,
        GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
        GEN_AI_USAGE_PROMPT_TOKENS,
        GEN_AI_USAGE_COMPLETION_TOKENS,
    }
)
_INPUT = (GEN_AI_USAGE_INPUT_TOKENS, GEN_AI_USAGE_PROMPT_TOKENS)
_OUTPUT = (GEN_AI_USAGE_OUTPUT_TOKENS, GEN_AI_USAGE_COMPLETION_TOKENS)

MAX_MODEL_LENGTH = 200  # CostEntry.model
# No single model call uses a billion tokens: larger counts are garbage, and would overflow the amounts.
MAX_SPAN_TOKENS = 10**9


class RequestRefused(Exception):
    """The export as a whole is refused: `status` is the HTTP status the OTLP spec prescribes."""

    def __init__(self, message: str, *, status: int):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class UsageSpan:
    """One model call's usage, in our terms: `input_tokens` excludes the cached input tokens."""

    trace_id: bytes
    span_id: bytes
    end: dt.datetime  # UTC
    service_name: str
    project: str  # tracker.project (an id or a slug), "" when absent
    provider: str  # as sent: gen_ai.provider.name, else gen_ai.system
    model: str
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    # Its resource's attributes (one dict shared by the resource's spans): the organization's tag keys pick from it.
    resource: Mapping[str, object] = field(default_factory=dict)


@dataclass
class UsageSpans:
    """An export's usage spans, and the usage spans refused, counted by reason."""

    spans: list[UsageSpan] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)


def body_decode(body: bytes, *, content_encoding: str, limit: int) -> bytes:
    """Return the body as sent before compression (gzip or none), refusing one over `limit` bytes once decompressed."""
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        if len(body) > limit:
            raise RequestRefused(f"The export is over the {limit}-byte limit.", status=413)
        return body
    if encoding != "gzip":
        raise RequestRefused(f"Unsupported Content-Encoding “{encoding}”: send gzip or none.", status=415)
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise RequestRefused(f"The gzip body is corrupt: {exc}.", status=400) from exc
    if len(data) > limit:
        raise RequestRefused(f"The export is over the {limit}-byte limit once decompressed.", status=413)
    if not inflater.eof:
        raise RequestRefused("The gzip body is truncated.", status=400)
    return data


def export_parse(data: bytes, *, content_type: str) -> ExportTraceServiceRequest:
    """Parse an ExportTraceServiceRequest from protobuf or the OTLP JSON mapping; a malformed body is a 400."""
    export = ExportTraceServiceRequest()
    if content_type == PROTOBUF:
        try:
            export.ParseFromString(data)
        except DecodeError as exc:
            raise RequestRefused(f"Malformed protobuf body: {exc}.", status=400) from exc
        return export
    try:
        document = json.loads(data)
        _hex_ids_to_base64(document)
        json_format.ParseDict(document, export, ignore_unknown_fields=True)
    except (ValueError, TypeError, AttributeError, json_format.ParseError) as exc:
        # json.JSONDecodeError, UnicodeDecodeError and bad hex are ValueErrors; a wrong shape is a Type/AttributeError.
        raise RequestRefused(f"Malformed JSON body: {exc}.", status=400) from exc
    return export


def _hex_ids_to_base64(document: dict) -> None:
    """OTLP JSON carries trace and span ids as hex where proto3 JSON has base64: convert them in place."""

    def convert(holder: dict, *names: str) -> None:
        for name in names:
            if isinstance(holder.get(name), str):
                holder[name] = base64.b64encode(binascii.unhexlify(holder[name])).decode()

    for resource_spans in document.get("resourceSpans") or document.get("resource_spans") or ():
        for scope_spans in resource_spans.get("scopeSpans") or resource_spans.get("scope_spans") or ():
            for span in scope_spans.get("spans") or ():
                convert(span, "traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")
                for link in span.get("links") or ():
                    convert(link, "traceId", "trace_id", "spanId", "span_id")


def _value(value) -> object:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def _tokens(value: object) -> int:
    if (isinstance(value, float) and value.is_integer()) or (isinstance(value, str) and value.strip().isdigit()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SPAN_TOKENS:
        raise ValueError(f"token counts must be whole numbers from 0 to {MAX_SPAN_TOKENS}")
    return value


def _first(attributes: dict[str, object], names: tuple[str, ...]) -> object:
    return next((attributes[name] for name in names if name in attributes), None)


def usage_spans(export: ExportTraceServiceRequest) -> UsageSpans:
    """Return the export's usage spans mapped to our terms; a bad usage span is counted by reason, never fatal."""
    result = UsageSpans()
    for resource_spans in export.resource_spans:
        resource = {kv.key: _value(kv.value) for kv in resource_spans.resource.attributes}
        service_name = resource.get(SERVICE_NAME)
        service_name = service_name if isinstance(service_name, str) else ""
        resource_project = resource.get(TRACKER_PROJECT)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attributes = {kv.key: _value(kv.value) for kv in span.attributes if kv.key in _SPAN_KEYS}
                if not any(name in attributes for name in (*_INPUT, *_OUTPUT)):
                    continue  # not usage: accepted and ignored
                if attributes.get(GEN_AI_OPERATION_NAME) in AGGREGATE_OPERATIONS:
                    continue  # the sum of the model calls beneath it: counting it would count them twice
                try:
                    usage = _usage(span, attributes, service_name, resource_project, resource)
                except ValueError as exc:
                    result.rejected[str(exc)] += 1
                else:
                    result.spans.append(usage)
    return result


def _usage(
    span, attributes: dict[str, object], service_name: str, resource_project: object, resource: dict[str, object]
) -> UsageSpan:
    if len(span.trace_id) != 16 or len(span.span_id) != 8 or not any(span.trace_id) or not any(span.span_id):
        raise ValueError("invalid trace or span id")
    if not span.end_time_unix_nano:
        raise ValueError("no end time")
    model = attributes.get(GEN_AI_RESPONSE_MODEL) or attributes.get(GEN_AI_REQUEST_MODEL)
    if not isinstance(model, str) or not model.strip():
        raise ValueError("no model (gen_ai.response.model or gen_ai.request.model)")
    model = model.strip()
    if len(model) > MAX_MODEL_LENGTH or "\x00" in model:
        raise ValueError(f"model names are at most {MAX_MODEL_LENGTH} characters, without NUL")
    input_tokens = _tokens(_first(attributes, _INPUT) or 0)
    cached = _tokens(attributes.get(GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS) or 0)
    if cached > input_tokens:
        raise ValueError("cached input tokens exceed the input tokens that include them")
    provider = attributes.get(GEN_AI_PROVIDER_NAME) or attributes.get(GEN_AI_SYSTEM)
    project = attributes.get(TRACKER_PROJECT, resource_project)
    return UsageSpan(
        trace_id=span.trace_id,
        span_id=span.span_id,
        end=dt.datetime.fromtimestamp(span.end_time_unix_nano // 1_000_000_000, tz=dt.UTC),
        service_name=service_name,
        project=str(project).strip() if isinstance(project, str | int) and not isinstance(project, bool) else "",
        provider=provider if isinstance(provider, str) else "",
        model=model,
        input_tokens=input_tokens - cached,
        cached_input_tokens=cached,
        output_tokens=_tokens(_first(attributes, _OUTPUT) or 0),
        resource=resource,
    )


def response_body(*, rejected_spans: int, message: str, content_type: str) -> bytes:
    """The ExportTraceServiceResponse: empty when all was accepted, else `partial_success`."""
    response = ExportTraceServiceResponse()
    if rejected_spans or message:
        response.partial_success.rejected_spans = rejected_spans
        response.partial_success.error_message = message
    return _encode(response, content_type)


# The gRPC code the OTLP spec pairs with each HTTP status of ours.
_CODES = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    403: code_pb2.PERMISSION_DENIED,
    413: code_pb2.RESOURCE_EXHAUSTED,
    415: code_pb2.INVALID_ARGUMENT,
    429: code_pb2.RESOURCE_EXHAUSTED,
    503: code_pb2.UNAVAILABLE,
}


def status_body(*, status: int, message: str, content_type: str) -> bytes:
    """The google.rpc.Status the spec wants as the body of every 4xx and 5xx answer."""
    return _encode(status_pb2.Status(code=_CODES.get(status, code_pb2.UNKNOWN), message=message), content_type)


def _encode(message, content_type: str) -> bytes:
    if content_type == JSON:
        return json_format.MessageToJson(message, indent=None).encode()
    return message.SerializeToString()
