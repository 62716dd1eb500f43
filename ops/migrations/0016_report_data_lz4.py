# Written by hand: a storage setting of PostgreSQL, no change to the model.

from django.db import migrations

# A report's data (~70 kB of JSON for 50 projects) is compressed when written: lz4 takes about half of
# pglz's time for it (~1 ms less per write). Only new values are compressed so: the ALTER rewrites nothing,
# and the stored values (pglz) stay readable by this release and the one before.
LZ4_BUILT = "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"


def compression(method: str):
    def apply(apps, schema_editor):
        connection = schema_editor.connection
        if connection.vendor != "postgresql":
            return
        with connection.cursor() as cursor:
            cursor.execute(LZ4_BUILT)
            if not cursor.fetchone()[0]:  # a server built without lz4 keeps pglz
                return
        schema_editor.execute(f"ALTER TABLE ops_report ALTER COLUMN data SET COMPRESSION {method}")

    return apply


class Migration(migrations.Migration):
    dependencies = [("ops", "0015_billed_cost_prefix_indexes")]

    operations = [migrations.RunPython(compression("lz4"), compression("default"), elidable=False)]
