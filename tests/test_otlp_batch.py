"""The receiver's write path: an export's span keys and entries in one statement, the same answer without it."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from ops.models import CostEntry, OtlpSpanKey
from ops.services import otlp as service
from projects.tests.factories import OrganizationFactory
from tests import test_otlp
from tests.test_otlp import YESTERDAY, _export, _post, _protobuf, _span, _usage

setup = test_otlp.setup  # the receiver tests' fixture: an organization, two projects, a price, a token

KEYS, ENTRIES = OtlpSpanKey._meta.db_table, CostEntry._meta.db_table


def _body(first: int, count: int) -> bytes:
    return _protobuf(
        _export(
            ({"service.name": "chat-app"}, [_span(n) for n in range(first, first + count)]),
            (
                {"service.name": "search-api"},
                [_span(n, trace=2, **{"gen_ai.request.model": "unpriced-model"}) for n in range(first, first + count)],
            ),
        )
    )


def test_an_exports_span_keys_and_entries_are_written_by_one_statement(setup):
    _post(setup["token"], _body(1, 3))  # the entries exist: the next export adds into them
    with CaptureQueriesContext(connection) as queries:
        assert _post(setup["token"], _body(2, 300)).status_code == 200  # spans 2 and 3 are resent
    writes = [q["sql"] for q in queries.captured_queries if KEYS in q["sql"] or f'INSERT INTO "{ENTRIES}"' in q["sql"]]
    assert len(writes) == 1 and KEYS in writes[0] and f'INSERT INTO "{ENTRIES}"' in writes[0]
    assert OtlpSpanKey.objects.count() == 2 * 301
    chat, search = _usage(setup["chat"]), _usage(setup["search"])
    assert [row[6] for row in chat] == [301] and [row[6] for row in search] == [301]
    # 301 calls of 800,000 input, 200,000 cached and 100,000 output tokens at 2.50 / 1.25 / 10.00 per million.
    assert chat[0][3:6] == (301 * 800_000, 301 * 200_000, 301 * 100_000) and str(chat[0][7]) == "978.2500"
    assert search[0][7] is None  # no price: kept unpriced, not priced at zero


def test_the_portable_statements_record_what_the_single_statement_does(setup, monkeypatch):
    """SQLite (`make run`) takes `_count_portable`: run here on PostgreSQL, it must give the same entries."""
    _post(setup["token"], _body(1, 3))
    _post(setup["token"], _body(2, 5))
    expected = _usage(setup["chat"]), _usage(setup["search"]), OtlpSpanKey.objects.count()
    CostEntry.objects.all().delete()
    OtlpSpanKey.objects.all().delete()
    monkeypatch.setattr(service, "_count", service._count_portable)
    _post(setup["token"], _body(1, 3))
    _post(setup["token"], _body(2, 5))
    assert (_usage(setup["chat"]), _usage(setup["search"]), OtlpSpanKey.objects.count()) == expected


def test_deleting_an_organization_deletes_its_span_keys(db):
    doomed, kept = OrganizationFactory(), OrganizationFactory()
    for organization in (doomed, kept):
        OtlpSpanKey.objects.create(
            organization=organization, trace_id=b"\1" * 16, span_id=b"\1" * 8, day=YESTERDAY.date()
        )
    doomed.delete()  # no database foreign key: Django's CASCADE removes the keys
    assert list(OtlpSpanKey.objects.values_list("organization", flat=True)) == [kept.pk]
