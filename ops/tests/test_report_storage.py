"""How a report's data is stored: compressed with lz4 (migration 0016), and back to the server's default when the
migration is reversed."""

import pytest
from django.core.management import call_command
from django.db import connection

COMPRESSION = "SELECT attcompression FROM pg_attribute WHERE attrelid = 'ops_report'::regclass AND attname = 'data'"


def _compression() -> str:
    with connection.cursor() as cursor:
        cursor.execute(COMPRESSION)
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_report_data_is_compressed_with_lz4_and_the_migration_reverses():
    assert _compression() == "l"
    call_command("migrate", "ops", "0015", verbosity=0)
    try:
        assert _compression() == ""  # the server's default_toast_compression
    finally:
        call_command("migrate", "ops", verbosity=0)
    assert _compression() == "l"
