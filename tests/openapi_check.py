"""Every answer the suite's API tests receive is checked against the OpenAPI schema, with openapi-core.

`api_responses_match_schema` (autouse: the root conftest.py loads this module as a plugin) wraps Django's
test client, which DRF's APIClient goes through too: each answer to an `/api/v1/` path that the schema
documents is validated (status, headers, body) against the schema the app serves. The schema is built once
per session, on the first API answer. An answer the schema does not cover fails the test that received it.
"""

import json
from collections.abc import Iterator
from functools import cache

import pytest
from django.test.client import Client
from openapi_core import Config, OpenAPI
from openapi_core.contrib.django import DjangoOpenAPIRequest, DjangoOpenAPIResponse
from openapi_core.exceptions import OpenAPIError
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_core.validation.response.exceptions import MissingData

API_PREFIX = "/api/v1/"


@cache
def api_schema() -> dict:
    """Return the app's own schema, as /api/schema/ serves it (do not change it: it is built once)."""
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


@cache
def api_spec() -> OpenAPI:
    """Return the app's schema ready for openapi-core (tests/test_api_schema.py validates the schema itself)."""
    # The exports are text (the schema says string): openapi-core reads only JSON and forms itself.
    text = {media_type: _text for media_type in ("text/csv", "application/x-ndjson")}
    schema = api_schema()
    # References resolved once here: openapi-core resolving each one per answer took half of its time.
    inlined = {**schema, "paths": _inline(schema["paths"], schema)}
    return OpenAPI.from_dict(inlined, config=Config(spec_validator_cls=None, extra_media_type_deserializers=text))


def _inline(node: object, root: dict) -> object:
    """Return `node` with every local `$ref` replaced by what it points to (the schema has no cycles)."""
    if isinstance(node, dict):
        if set(node) == {"$ref"}:
            target = root
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return _inline(target, root)
        return {key: _inline(value, root) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(value, root) for value in node]
    return node


def _text(data: bytes | str, charset: str = "utf-8", **parameters: str) -> str:
    return data.decode(charset) if isinstance(data, bytes) else data


class ConcreteRequest(DjangoOpenAPIRequest):
    """The request as the test sent it: openapi-core matches its path against the schema's templates.

    (Django's own route is a router regex with `pk`, where the schema says `{id}`.)
    """

    @property
    def path_pattern(self) -> None:
        return None

    @property
    def body(self) -> bytes:
        return b""  # not needed to check the answer, and past the size limit unreadable (413)


def response_check(response) -> None:
    """Raise when an API answer is not what the schema says its operation answers."""
    request = getattr(response, "wsgi_request", None)
    if request is None or not request.path.startswith(API_PREFIX):
        return
    if response.status_code == 405:
        # A method the path does not take belongs to no operation (and `{id}` matches `export` to a matcher
        # that ignores types): check the common error shape.
        body = json.loads(response.content)
        assert set(body) == {"detail", "code", "errors"} and body["code"] == "method_not_allowed", body
        return
    try:
        api_spec().validate_response(ConcreteRequest(request), DjangoOpenAPIResponse(response))
    except (PathNotFound, OperationNotFound):
        return  # not an operation of the schema (an unknown path's JSON 404, a method a path does not take)
    except OpenAPIError as exc:
        if isinstance(exc, MissingData) and response.streaming:
            return  # an export of no rows: an empty file
        body = b"" if response.streaming else response.content[:500]
        raise AssertionError(
            f"{request.method} {request.get_full_path()} answered {response.status_code} off the schema: "
            f"{type(exc).__name__}: {exc.__cause__ or exc} — {body!r}"
        ) from exc


@pytest.fixture(autouse=True)
def api_responses_match_schema(monkeypatch) -> Iterator[None]:
    """Validate every answer to an /api/v1/ path received through the test clients against the schema."""
    request = Client.request

    def checked(self, **kwargs):
        response = request(self, **kwargs)
        response_check(response)
        return response

    monkeypatch.setattr(Client, "request", checked)
    yield
