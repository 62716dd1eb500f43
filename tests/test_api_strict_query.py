"""Strict query strings: every list endpoint, walked from the routers, answers 400 with the error shape for
an unknown parameter, an unknown ordering, a page size above the maximum and a filter of the wrong type."""

import django_filters
import pytest

from ops.api.urls import router as ops_router
from projects.api.urls import router as projects_router
from projects.models import Role
from projects.tests.api_support import _fresh_throttle, as_role, error_fields  # noqa: F401
from projects.tests.factories import OrganizationFactory
from tracker.api import FilterBackend, Pagination

pytestmark = pytest.mark.django_db

LISTS = [
    (f"/api/v1/{prefix}/", viewset)
    for router in (projects_router, ops_router)
    for prefix, viewset, _ in router.registry
    if hasattr(viewset, "list")
]
WRONG = {
    django_filters.NumberFilter: "abc",
    django_filters.DateFilter: "not-a-date",
    django_filters.IsoDateTimeFilter: "not-a-time",
    django_filters.BooleanFilter: "maybe",
    django_filters.ChoiceFilter: "no-such-code",
}


@pytest.fixture
def admin():
    return as_role(OrganizationFactory(name="Acme"), Role.ADMIN)


def _wrong_values(viewset) -> list[tuple[str, str]]:
    filterset = getattr(viewset, "filterset_class", None)
    if filterset is None:  # the sync filters alone, made for the model
        model = viewset.serializer_class.Meta.model
        filterset = FilterBackend().get_filterset_class(viewset(action="list"), model._default_manager.none())
    return [
        (name, next(value for kind, value in WRONG.items() if isinstance(field, kind)))
        for name, field in filterset.base_filters.items()
        if any(isinstance(field, kind) for kind in WRONG)
    ]


def test_every_list_is_walked():
    assert len(LISTS) >= 16 and "/api/v1/events/" in dict(LISTS)


@pytest.mark.parametrize(("url", "viewset"), LISTS, ids=[url for url, _ in LISTS])
def test_each_list_refuses_what_it_does_not_understand(admin, url, viewset):
    assert admin.get(url).status_code == 200
    for query, field in (
        ({"bogus": "1"}, "bogus"),
        ({"ordering": "bogus"}, "ordering"),
        ({"ordering": "name,-bogus"}, "ordering"),
        ({"page_size": Pagination.max_page_size + 1}, "page_size"),
        ({"page_size": "ten"}, "page_size"),
        ({"cursor": "!!"} if url == "/api/v1/events/" else {"cursor": "x"}, "cursor"),
    ):
        answer = admin.get(url, query)
        assert answer.status_code == 400, (url, query, answer.content)
        assert error_fields(answer) == {field}, (url, query)
    wrong = _wrong_values(viewset)
    assert wrong, url  # every list has at least the sync (or feed) date filters
    for name, value in wrong:
        answer = admin.get(url, {name: value})
        assert answer.status_code == 400, (url, name, value, answer.content)
        assert error_fields(answer) == {name}, (url, name)


@pytest.mark.parametrize(("url", "viewset"), LISTS, ids=[url for url, _ in LISTS])
def test_each_list_pages_by_cursor_when_ordered_for_sync(admin, url, viewset):
    field = getattr(viewset, "sync_field", "updated_at")
    answer = admin.get(url, {"ordering": f"-{field}", "page_size": 1})
    assert answer.status_code == 200, answer.content
    assert set(answer.json()) == {"next", "previous", "resume", "results"}


def test_a_detail_refuses_unknown_parameters_too(admin):
    assert error_fields(admin.get("/api/v1/organizations/", {"page": "one"})) == {"page"}
    organization = admin.get("/api/v1/organizations/").json()["results"][0]["id"]
    assert admin.get(f"/api/v1/organizations/{organization}/", {"format": "json"}).status_code == 200
    assert error_fields(admin.get(f"/api/v1/organizations/{organization}/", {"expand": "all"})) == {"expand"}
