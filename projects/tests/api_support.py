"""Helpers of the API tests: members with a role, clients holding their token."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from projects.models import Organization, Role
from projects.services import api_token_create
from projects.tests.factories import member


def client_for(user) -> APIClient:
    """Return a client authenticated with a fresh personal token of `user`."""
    _, key = api_token_create(user=user, name="tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def as_role(organization: Organization, role: Role = Role.CONTRIBUTOR) -> APIClient:
    client = client_for(member(organization, role))
    return client


@pytest.fixture(autouse=True)
def _fresh_throttle():
    """Start every test with empty throttle counters (they live in the cache)."""
    cache.clear()
    yield
    cache.clear()


def error_fields(response) -> set[str]:
    body = response.json()
    assert set(body) >= {"detail", "code", "errors"}, body
    return set(body["errors"])
