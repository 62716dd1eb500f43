"""Benchmark of the streamed CSV export of costs against PostgreSQL's own `COPY … TO STDOUT`.

`run()` re-executes this module in a child process on its own database (DATABASE_URL + "_exports_bench"). One
organization's costs are generated with COPY (1,000,000 rows; EXPORT_BENCH_ROWS to change), then `GET
/api/v1/costs/export/?format=csv` is read through the full Django stack, chunk by chunk, and timed against
`COPY (the same columns, joined the same way) TO STDOUT WITH CSV HEADER` read by psycopg, which writes the
same bytes (the export's header names and ISO 8601 timestamps; checked by their sizes). Peak memory: the
process's RSS high-water mark (reset once the rows are generated) after exporting the first 100,000 rows and
after all of them (flat: the second is no higher than the first plus a small margin). COPY and export
alternate EXPORT_BENCH_REPEATS times (3) and their medians are compared. Targets: export time ≤ 3× COPY, RSS
growth from 100k to all rows < 50 MB. Writes bench-results/exports.json. Run: `python -m bench exports`.
"""

import contextlib
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

from bench._db import BASE_DIR, create_database, run_child

ROWS = int(os.environ.get("EXPORT_BENCH_ROWS", "1000000"))
FIRST = min(100_000, ROWS)
TARGET_RATIO = 3.0
FLAT_MARGIN_MB = 50
REPEATS = int(os.environ.get("EXPORT_BENCH_REPEATS", "3"))


def run() -> None:
    run_child("bench.exports", "_exports_bench")


def _peak_rss_mb() -> float:
    """The process's RSS high-water mark (VmHWM, which `_reset_peak_rss` resets), or its lifetime peak."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")) / 1024


def _reset_peak_rss() -> None:
    """Reset the high-water mark to the current RSS (Linux), so generating the rows does not mask the export's peak."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _costs():
    """Create (once) one organization with 100 projects and ROWS costs, written with COPY; return its viewer."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from ops.models import CostEntry
    from projects.models import Membership, Organization, Project, Role

    user, _ = get_user_model().objects.get_or_create(username="exports-bench")
    organization = Organization.objects.filter(slug="exports-bench").first()
    # Rows as ingestion writes them in the organization's currency (amount as sent, rate 1).
    if (
        organization
        and CostEntry.objects.filter(project__organization=organization, original_currency="EUR").count() == ROWS
    ):
        return user
    if organization:
        organization.delete()
    organization = Organization.objects.create(name="Exports bench", slug="exports-bench", currency="EUR")
    Membership.objects.create(user=user, organization=organization, role=Role.VIEWER)
    projects = Project.objects.bulk_create(
        Project(organization=organization, name=f"P {i}", slug=f"p-{i}", stage_entered_at=timezone.now())
        for i in range(100)
    )
    first = projects[0].pk
    table = CostEntry._meta.db_table
    with connection.cursor() as cursor:
        # COPY FROM STDIN: a million ORM inserts would take longer than the benchmark.
        with cursor.cursor.copy(
            f"COPY {table} (project_id, date, category, amount, original_amount, original_currency, description,"
            " model, input_tokens, cached_input_tokens, output_tokens, requests, gpu_hours, energy_kwh, source,"
            " external_id,"
            " created_at, updated_at) FROM STDIN"
        ) as copy:
            now = timezone.now()
            for i in range(ROWS):
                copy.write_row(
                    (
                        first + i % 100,
                        f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}",
                        "inference",
                        f"{i % 1000}.{i % 10000:04d}",
                        f"{i % 1000}.{i % 10000:04d}",
                        "EUR",
                        "Nightly invoice line",
                        "gpt-4o",
                        i % 5000,
                        0,
                        i % 700,
                        1,
                        "0.00",
                        "0.00",
                        "api",
                        f"exports-bench-{i}",
                        now,
                        now,
                    )
                )
        cursor.execute("VACUUM ANALYZE")
    return user


# The export's bytes, written by COPY alone: its header names and its timestamp text (ISO 8601 UTC, "…Z",
# as IsoUtc writes it; COPY's own timestamptz text, "2026-03-01 09:30:00.000000+00", is 2 bytes longer).
COPY_SQL = """
COPY (
    SELECT c.id, c.date, c.project_id AS project, p.slug AS project_slug, c.category, c.amount, o.currency,
           c.original_amount, c.original_currency, c.exchange_rate, c.exchange_rate_date, c.description, c.model,
           c.input_tokens, c.cached_input_tokens, c.output_tokens, c.requests, c.gpu_hours,
           c.energy_kwh, c.source, c.price_id AS price, c.external_id,
           to_char(c.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS updated_at
    FROM ops_costentry c JOIN projects_project p ON p.id = c.project_id
    JOIN projects_organization o ON o.id = p.organization_id
    WHERE o.slug = 'exports-bench' ORDER BY c.id
) TO STDOUT WITH CSV HEADER
"""


def _copy_seconds() -> tuple[float, int]:
    from django.db import connection

    started = time.perf_counter()
    size = 0
    with connection.cursor() as cursor, cursor.cursor.copy(COPY_SQL) as copy:
        for block in copy:
            size += len(block)
    return time.perf_counter() - started, size


def _export(client) -> tuple[float, int, int, float]:
    """Return the export's seconds, bytes, rows and the peak RSS once FIRST rows were read."""
    started = time.perf_counter()
    response = client.get("/api/v1/costs/export/", {"format": "csv"})
    assert response.status_code == 200, response.content[:300]
    size = lines = 0
    at_first = None
    for chunk in response.streaming_content:
        size += len(chunk)
        lines += chunk.count(b"\n")
        if at_first is None and lines > FIRST:
            at_first = _peak_rss_mb()
    response.close()
    return time.perf_counter() - started, size, lines - 1, at_first or _peak_rss_mb()


def _child() -> None:
    import django

    create_database(os.environ["DATABASE_URL"], fresh=False)
    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    from projects.services import api_token_create

    settings.ALLOWED_HOSTS = ["testserver"]
    settings.DEBUG = False
    call_command("migrate", verbosity=0)
    user = _costs()
    client = Client(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=user, name='bench')[1]}")
    _reset_peak_rss()
    before = _peak_rss_mb()
    # COPY and export alternate, REPEATS times each, and the medians are compared: the machine's drift and
    # another process's burst then weigh on both alike. Peak RSS is read during the first export.
    copy_times, export_times, at_first = [], [], None
    for _ in range(REPEATS):
        copy_seconds, copy_bytes = _copy_seconds()
        export_seconds, export_bytes, rows, first = _export(client)
        copy_times.append(copy_seconds)
        export_times.append(export_seconds)
        at_first = at_first or first
        assert rows == ROWS, (rows, ROWS)
        # The same bytes (the bench's rows hold no text a formula escape would change): the same work asked of both.
        assert export_bytes == copy_bytes, (export_bytes, copy_bytes)
    at_end = _peak_rss_mb()
    copy_seconds, export_seconds = statistics.median(copy_times), statistics.median(export_times)
    ratio = export_seconds / copy_seconds
    growth = at_end - at_first
    seconds = ", ".join(f"{c:.2f}/{e:.2f}" for c, e in zip(copy_times, export_times, strict=True))
    print(f"medians of {REPEATS} alternating runs (COPY/export seconds: {seconds})")
    print(
        f"COPY TO STDOUT: {ROWS:,} rows in {copy_seconds:.2f} s ({ROWS / copy_seconds:,.0f} rows/s, {copy_bytes:,} B)"
    )
    print(
        f"CSV export:     {ROWS:,} rows in {export_seconds:.2f} s "
        f"({ROWS / export_seconds:,.0f} rows/s, {export_bytes:,} B)"
    )
    print(
        f"  ratio {ratio:.2f}x COPY; peak RSS {before:.0f} MB before, "
        f"{at_first:.0f} MB at {FIRST:,} rows, {at_end:.0f} MB at {ROWS:,}"
    )
    verdicts = {
        f"export <= {TARGET_RATIO}x COPY": ratio <= TARGET_RATIO,
        f"peak RSS flat (< {FLAT_MARGIN_MB} MB growth from {FIRST:,} to {ROWS:,} rows)": growth < FLAT_MARGIN_MB,
    }
    for label, ok in verdicts.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {label}")
    out = BASE_DIR / "bench-results"
    out.mkdir(exist_ok=True)
    results = {
        "rows": ROWS,
        "repeats": REPEATS,
        "copy_seconds": round(copy_seconds, 3),
        "copy_rows_per_second": round(ROWS / copy_seconds),
        "export_seconds": round(export_seconds, 3),
        "export_rows_per_second": round(ROWS / export_seconds),
        "ratio_to_copy": round(ratio, 2),
        "peak_rss_mb_before": round(before, 1),
        f"peak_rss_mb_at_{FIRST}_rows": round(at_first, 1),
        f"peak_rss_mb_at_{ROWS}_rows": round(at_end, 1),
    }
    (out / "exports.json").write_text(json.dumps({"results": results, "verdicts": verdicts}, indent=2))


if __name__ == "__main__":
    if "--child" in sys.argv:
        _child()
    else:
        run()
