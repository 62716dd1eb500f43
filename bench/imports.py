"""Benchmark of the FOCUS bill import against PostgreSQL's own `COPY … FROM STDIN` of the same rows.

`run()` re-executes this module in a child process on its own database (DATABASE_URL + "_imports_bench").
A FOCUS 1.2 file of 1,000,000 rows (IMPORT_BENCH_ROWS to change) is generated on disk (100 projects
named by their Tags, one month), then imported with `import_file_run` (what `costs_import` and the
worker run: CSV streaming, validation, mapping, COPY in chunks, the period's replacement).

The floor is `COPY` of the same rows: the import's rows exactly as it stored them, COPYed into a table
shaped like BilledCost (its check constraints, five indexes and three deferred foreign keys, timed to the
commit), which is what writing those rows costs PostgreSQL whoever parses them. Two more COPYs are
reported beside it: of the same rows into the bare shape (no index, no key), and of the file itself into a
table of its columns typed as the import stores them (the floor of the first measurements, which leaves out
what the destination's indexes and keys cost: docs/imports.md, Benchmark).

Peak memory: the process's RSS high-water mark after importing a file of 100,000 rows and after the whole
file (flat: the second no higher than the first plus a small margin). Targets: import ≤ 3× the COPY of
its rows, RSS growth from 100k to all rows < 50 MB. Writes bench-results/imports.json.
Run: `python -m bench imports`.
"""

import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench._db import BASE_DIR, create_database, run_child

ROWS = int(os.environ.get("IMPORT_BENCH_ROWS", "1000000"))
FIRST = min(100_000, ROWS)
TARGET_RATIO = 3.0
FLAT_MARGIN_MB = 50
HEADER = (
    "BilledCost,EffectiveCost,ListCost,BillingCurrency,BillingPeriodStart,BillingPeriodEnd,ChargePeriodStart,"
    "ChargePeriodEnd,ChargeCategory,ChargeClass,ServiceName,SkuId,ResourceId,ConsumedQuantity,ConsumedUnit,"
    "SubAccountId,ProviderName,Tags,x_GatewayTeam\n"
)
CATEGORIES = ("Usage",) * 17 + ("Credit", "Tax", "Purchase")


def focus_bill(*, rows: int, projects: list[str], month: int = 3, currency: str = "USD") -> Iterator[bytes]:
    """Yield a FOCUS 1.2 bill of `rows` rows of 2026-`month` (header first), in blocks of 1,000 lines."""
    start, end = f"2026-{month:02d}-01T00:00:00Z", f"2026-{month + 1:02d}-01T00:00:00Z"
    yield HEADER.encode()
    block = []
    for i in range(rows):
        day = 1 + i % 28
        category = CATEGORIES[i % len(CATEGORIES)]
        amount = f"{'-' if category == 'Credit' else ''}{i % 997}.{i % 100:02d}"
        block.append(
            f"{amount},{amount},{amount},{currency},{start},{end},2026-{month:02d}-{day:02d}T00:00:00Z,"
            f"2026-{month:02d}-{day:02d}T01:00:00Z,{category},,Amazon Bedrock,sku-{i % 50},"
            f"arn:aws:bedrock:eu-west-1::model/m-{i % 20},{i % 100000},Tokens,{100000000000 + i % 30},AWS,"
            f'"{{""tracker_project"": ""{projects[i % len(projects)]}"", ""line"": ""{i}""}}",team-{i % 7}\n'
        )
        if len(block) == 1000:
            yield "".join(block).encode()
            block = []
    if block:
        yield "".join(block).encode()


def run() -> None:
    run_child("bench.imports", "_imports_bench")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _write(path: Path, rows: int, projects: list[str], month: int) -> None:
    with path.open("wb") as out:
        for block in focus_bill(rows=rows, projects=projects, month=month):
            out.write(block)


COPY_TABLE = """
CREATE TABLE IF NOT EXISTS bench_focus_copy (
    billed_cost numeric(20, 8), effective_cost numeric(20, 8), list_cost numeric(20, 8), currency varchar(3),
    billing_period_start timestamptz, billing_period_end timestamptz, charge_period_start timestamptz,
    charge_period_end timestamptz, charge_category varchar(12), charge_class varchar(20), service_name text,
    sku_id text, resource_id text, consumed_quantity numeric(24, 8), consumed_unit text, sub_account_id text,
    source text, tags jsonb, x_gateway_team text
)
"""


def _copy_seconds(path: Path) -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(COPY_TABLE)
        cursor.execute("TRUNCATE bench_focus_copy")
        started = time.perf_counter()
        with (
            path.open("rb") as source,
            cursor.cursor.copy("COPY bench_focus_copy FROM STDIN (FORMAT csv, HEADER)") as copy,
        ):
            for block in iter(lambda: source.read(1 << 20), b""):
                copy.write(block)
        seconds = time.perf_counter() - started
        cursor.execute("TRUNCATE bench_focus_copy")
    return seconds


# What writing the import's own rows costs PostgreSQL, whoever parses them: the large file's BilledCost rows,
# exactly as stored, COPYed back into a table shaped like BilledCost, first bare, then with BilledCost's
# indexes (primary key, unique row key, the two query indexes, the import job's), then with its three
# deferred foreign keys as well (timed to the commit, where they are checked): the last is the floor.
DESTINATION_STEPS = (
    ("bare table (no index, no foreign key)", "INCLUDING DEFAULTS INCLUDING CONSTRAINTS", False),
    ("with BilledCost's five indexes", "INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES", False),
    ("with its indexes and three foreign keys", "INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES", True),
)
FOREIGN_KEYS = (
    ("organization_id", "projects_organization"),
    ("project_id", "projects_project"),
    ("import_job_id", "ops_importjob"),
)


def _destination_seconds(organization_id: int, period_start: str, tmp: Path) -> dict[str, float]:
    from django.db import connection, transaction

    rows = tmp / "stored.csv"
    with connection.cursor() as cursor:
        select = "SELECT * FROM ops_billedcost WHERE organization_id = %s AND billing_period_start = %s ORDER BY id"
        with (
            rows.open("wb") as out,
            cursor.cursor.copy(f"COPY ({select}) TO STDOUT (FORMAT csv)", [organization_id, period_start]) as copy,
        ):
            for block in copy:
                out.write(block)
    seconds = {}
    for label, like, keys in DESTINATION_STEPS:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS bench_billed_floor")
            cursor.execute(f"CREATE TABLE bench_billed_floor (LIKE ops_billedcost {like})")
            for column, table in FOREIGN_KEYS if keys else ():
                cursor.execute(
                    f"ALTER TABLE bench_billed_floor ADD FOREIGN KEY ({column}) REFERENCES {table} (id) "
                    "DEFERRABLE INITIALLY DEFERRED"
                )
            started = time.perf_counter()
            with (
                transaction.atomic(),
                rows.open("rb") as source,
                cursor.cursor.copy("COPY bench_billed_floor FROM STDIN (FORMAT csv)") as copy,
            ):
                for block in iter(lambda: source.read(1 << 20), b""):
                    copy.write(block)
            seconds[label] = time.perf_counter() - started
            cursor.execute("DROP TABLE bench_billed_floor")
    rows.unlink()
    return seconds


def _import(organization, manager, path: Path):
    from ops.imports.jobs import import_file_run

    started = time.perf_counter()
    with path.open("rb") as binary:
        job = import_file_run(organization=organization, format="focus", binary=binary, filename=path.name, by=manager)
    return time.perf_counter() - started, job


def _child() -> None:
    import django

    create_database(os.environ["DATABASE_URL"], fresh=False)
    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone

    from ops.imports.models import BilledCost
    from projects.models import Membership, Organization, Project, Role

    call_command("migrate", verbosity=0)
    Organization.objects.filter(slug="imports-bench").delete()
    organization = Organization.objects.create(name="Imports bench", slug="imports-bench", currency="USD")
    projects = Project.objects.bulk_create(
        Project(organization=organization, name=f"P {i}", slug=f"p-{i}", stage_entered_at=timezone.now())
        for i in range(100)
    )
    manager, _ = get_user_model().objects.get_or_create(username="imports-bench-manager")
    Membership.objects.create(organization=organization, user=manager, role=Role.MANAGER)
    slugs = [p.slug for p in projects]
    with tempfile.TemporaryDirectory() as tmp:
        small, large = Path(tmp) / "first.csv", Path(tmp) / "bill.csv"
        _write(small, FIRST, slugs, month=2)
        _write(large, ROWS, slugs, month=3)
        copy_seconds = _copy_seconds(large)
        before = _peak_rss_mb()
        _, first_job = _import(organization, manager, small)
        at_first = _peak_rss_mb()
        import_seconds, job = _import(organization, manager, large)
        at_end = _peak_rss_mb()
        destination = _destination_seconds(organization.pk, "2026-03-01T00:00:00Z", Path(tmp))
        again_seconds, again = _import(organization, manager, large)
        size = large.stat().st_size
    assert first_job.summary["created"] == FIRST and job.summary["created"] == ROWS, (first_job.summary, job.summary)
    assert again.summary["created"] == again.summary["removed"] == 0
    assert BilledCost.objects.filter(organization=organization).count() == FIRST + ROWS
    floor_seconds = destination[DESTINATION_STEPS[-1][0]]
    ratio = import_seconds / floor_seconds
    growth = at_end - at_first
    print(f"COPY of the file into its typed columns: {ROWS:,} rows in {copy_seconds:.2f} s ({size:,} B)")
    print("COPY of the import's stored rows into a table shaped like BilledCost:")
    for label, seconds in destination.items():
        print(f"  {label}: {seconds:.2f} s ({ROWS / seconds:,.0f} rows/s)")
    print(f"FOCUS import: {ROWS:,} rows in {import_seconds:.2f} s ({ROWS / import_seconds:,.0f} rows/s)")
    print(f"  same file again (no change): {again_seconds:.2f} s")
    print(
        f"  ratio {ratio:.2f}x the COPY of its rows ({import_seconds / copy_seconds:.2f}x the file's COPY); peak RSS "
        f"{before:.0f} MB before, {at_first:.0f} MB after {FIRST:,} rows, {at_end:.0f} MB after {ROWS:,}"
    )
    verdicts = {
        f"import <= {TARGET_RATIO}x COPY of its rows": ratio <= TARGET_RATIO,
        f"peak RSS flat (< {FLAT_MARGIN_MB} MB growth from {FIRST:,} to {ROWS:,} rows)": growth < FLAT_MARGIN_MB,
    }
    for label, ok in verdicts.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {label}")
    out = BASE_DIR / "bench-results"
    out.mkdir(exist_ok=True)
    results = {
        "rows": ROWS,
        "file_bytes": size,
        "file_copy_seconds": round(copy_seconds, 3),
        "rows_copy_seconds": round(floor_seconds, 3),
        "rows_copy_rows_per_second": round(ROWS / floor_seconds),
        "import_seconds": round(import_seconds, 3),
        "import_rows_per_second": round(ROWS / import_seconds),
        "reimport_unchanged_seconds": round(again_seconds, 3),
        "stored_rows_copy_seconds": {label: round(seconds, 3) for label, seconds in destination.items()},
        "ratio_to_rows_copy": round(ratio, 2),
        "ratio_to_file_copy": round(import_seconds / copy_seconds, 2),
        "peak_rss_mb_before": round(before, 1),
        f"peak_rss_mb_after_{FIRST}_rows": round(at_first, 1),
        f"peak_rss_mb_after_{ROWS}_rows": round(at_end, 1),
        "load_average": os.getloadavg(),
    }
    (out / "imports.json").write_text(json.dumps({"results": results, "verdicts": verdicts}, indent=2))


if __name__ == "__main__":
    if "--child" in sys.argv:
        _child()
    else:
        run()
