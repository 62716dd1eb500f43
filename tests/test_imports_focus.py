"""FOCUS bills imported as billed costs: mapping, refusals, re-imports, estimated vs billed, drift, the job."""

import csv
import datetime as dt
import io
import tracemalloc
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
import yaml
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

import ops.tasks  # noqa: F401  (registers ops.import_job_run, which eager mode then runs)
from bench.imports import focus_bill
from ops.imports import focus as focus_importer
from ops.imports.jobs import import_file_run
from ops.imports.models import BilledCost, BillingMappingRule, ChargeCategory, ImportJob, ImportStatus, MappingField
from ops.models import Risk, RiskStatus
from ops.selectors.billing import BillingMonth, billed_vs_estimated, project_billing
from ops.services.signals import risk_signals_evaluate
from ops.tests.factories import CostEntryFactory
from projects.models import AuditAction, AuditEvent, Project, Role
from projects.tests.factories import OrganizationFactory, ProjectFactory, member
from tracker.celery import app

pytestmark = pytest.mark.django_db

SAMPLE = Path(__file__).parent / "data" / "focus-bill-sample.csv"
HEADER = SAMPLE.read_text().splitlines()[0].split(",")
MARCH, APRIL = "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"


@pytest.fixture
def acme():
    org = OrganizationFactory(name="Acme", slug="acme", currency="USD")
    support = ProjectFactory(organization=org, slug="support-bot", name="Support bot")
    fraud = ProjectFactory(organization=org, slug="fraud-detection", name="Fraud detection")
    BillingMappingRule.objects.create(
        organization=org, field=MappingField.SUB_ACCOUNT_ID, value="222222222222", project=fraud
    )
    return org, support, fraud


def row(**values: str) -> dict[str, str]:
    """A usage row of March 2026 from AWS; `values` override its columns."""
    base = dict.fromkeys(HEADER, "")
    base.update(
        BilledCost="10.00",
        EffectiveCost="10.00",
        BillingCurrency="USD",
        BillingPeriodStart=MARCH,
        BillingPeriodEnd=APRIL,
        ChargePeriodStart="2026-03-10T00:00:00Z",
        ChargePeriodEnd="2026-03-11T00:00:00Z",
        ChargeCategory="Usage",
        ServiceName="Amazon Bedrock",
        ProviderName="AWS",
        Tags="{}",
    )
    return base | values


def bill(*rows: dict[str, str]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=HEADER, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def run(org, content: bytes, **options) -> ImportJob:
    by = org.memberships.filter(role=Role.MANAGER).first()
    return import_file_run(
        organization=org,
        format="focus",
        binary=io.BytesIO(content),
        filename="bill.csv",
        by=by.user if by else member(org, Role.MANAGER),
        options=options,
    )


def stored(org) -> list[tuple]:
    return sorted(
        BilledCost.objects.filter(organization=org).values_list(
            "pk", "project__slug", "source", "charge_category", "billed_cost"
        )
    )


def batches(org) -> int:
    return AuditEvent.objects.filter(organization=org, action=AuditAction.BATCH, object_type="ops.billedcost").count()


def test_sample_bill_maps_by_tag_and_rule_keeps_unmapped_and_refuses_an_uncovered_currency(acme):
    org, support, fraud = acme
    job = run(org, SAMPLE.read_bytes())

    assert job.status == ImportStatus.DONE and job.rows_total == job.rows_done == 8
    summary = job.summary
    assert [(slug, p["rows"], p["billed_cost"], p["effective_cost"]) for slug, p in summary["by_project"].items()] == [
        ("fraud-detection", 2, "345.25000000", "70.25000000"),
        ("support-bot", 4, "189.60000000", "179.10000000"),
    ]
    assert summary["by_project"]["support-bot"]["by_category"] == {
        "Credit": "-20.00000000",
        "Tax": "9.10000000",
        "Usage": "200.50000000",
    }
    assert summary["details"]["unmapped"] == {
        "rows": 1,
        "billed_cost": "12.00000000",
        "effective_cost": "12.00000000",
        "by_category": {"Usage": "12.00000000"},
    }
    assert (summary["created"], summary["removed"], summary["unchanged"]) == (7, 0, 0)
    assert job.error_count == 1 and job.errors == [
        {
            "line": 9,
            "column": "BillingCurrency",
            "message": "No exchange rate from ARS to USD on or before 2026-03-05: the reference rates do not cover "
            "ARS; enter the organization's own rate.",
        }
    ]
    rows = BilledCost.objects.filter(organization=org)
    assert rows.count() == 7 and not rows.filter(currency="ARS").exists()
    credit = rows.get(charge_category=ChargeCategory.CREDIT)
    assert credit.billed_cost == Decimal("-20") and credit.project == support
    assert set(rows.filter(project=fraud).values_list("charge_category", flat=True)) == {"Usage", "Purchase"}
    assert rows.get(charge_category=ChargeCategory.TAX).get_charge_category_display() == "Tax"
    unmapped = rows.get(project__isnull=True)
    assert (unmapped.service_name, unmapped.sub_account_id, unmapped.billed_cost) == ("Amazon S3", "333333333333", 12)
    first = rows.get(line=2)
    assert first.tags == {}  # the tracker_project tag maps the row; the provider's own tags are kept
    assert (first.source, first.resource_id, first.consumed_quantity, first.consumed_unit) == (
        "AWS",
        "arn:aws:bedrock:eu-west-1::model/claude",
        Decimal("1500000"),
        "Tokens",
    )
    assert first.billing_period_start == dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    assert first.import_job == job
    assert batches(org) == 1


def test_tags_name_a_project_by_id_and_the_1_0_spellings_are_read(acme):
    org, _, fraud = acme
    header = ",".join(h.replace("ResourceId", "ResourceID").replace("ProviderName", "Provider") for h in HEADER)
    body = bill(row(Tags=f'{{"tracker_project": {fraud.pk}}}', ResourceId="r-1", ProviderName="OpenRouter"))
    job = run(org, header.encode() + b"\n" + body.split(b"\n", 1)[1])
    stored_row = BilledCost.objects.get(organization=org)
    assert (stored_row.project, stored_row.resource_id, stored_row.source) == (fraud, "r-1", "OpenRouter")
    assert list(job.summary["by_project"]) == ["fraud-detection"]


def test_malformed_rows_are_refused_with_their_lines_and_the_good_ones_imported(acme):
    org, *_ = acme
    job = run(
        org,
        bill(
            row(),
            row(BilledCost="ten"),
            row(ChargePeriodStart="March"),
            row(ChargeCategory="Refund"),
            row(Tags="not json"),
            row(BillingPeriodEnd=MARCH),
        ),
    )
    assert [(e["line"], e["column"]) for e in job.errors] == [
        (3, "BilledCost"),
        (4, "ChargePeriodStart"),
        (5, "ChargeCategory"),
        (6, "Tags"),
        (7, "BillingPeriodEnd"),
    ]
    assert BilledCost.objects.filter(organization=org).count() == 1


def test_a_file_that_is_not_focus_writes_nothing(acme):
    org, *_ = acme
    job = run(org, b"date,amount\n2026-03-01,5\n")
    assert job.status == ImportStatus.FAILED
    assert "the header lacks BilledCost" in job.failure
    assert not BilledCost.objects.exists() and batches(org) == 0


def test_the_same_file_again_changes_nothing(acme):
    org, *_ = acme
    run(org, SAMPLE.read_bytes())
    before, events = stored(org), AuditEvent.objects.count()

    again = run(org, SAMPLE.read_bytes())

    assert stored(org) == before
    assert (again.summary["created"], again.summary["removed"], again.summary["unchanged"]) == (0, 0, 7)
    assert again.summary["details"]["periods"] == []
    assert AuditEvent.objects.count() == events and batches(org) == 1


def test_identical_rows_are_kept_as_many_times_as_the_bill_has_them(acme):
    org, *_ = acme
    twice = bill(row(), row())
    run(org, twice)
    assert BilledCost.objects.filter(organization=org).count() == 2
    assert run(org, twice).summary["created"] == 0
    assert run(org, bill(row())).summary["removed"] == 1
    assert BilledCost.objects.filter(organization=org).count() == 1


@pytest.mark.parametrize("filter_hits", [False, True])
def test_identical_rows_are_numbered_by_line_whatever_the_repeat_filter_says(acme, monkeypatch, filter_hits):
    # A filter hit (a repeat, or a false positive) leaves the row to be numbered in SQL: same numbers either way.
    org, *_ = acme
    if filter_hits:
        monkeypatch.setattr(focus_importer._Repeats, "first", lambda self, row_hash: False)
    rows = [row(), row(SkuId="b"), row(), row(SkuId="c"), row(), row(SkuId="b")]
    assert run(org, bill(*rows)).summary["created"] == 6
    numbered = sorted(BilledCost.objects.filter(organization=org).values_list("sku_id", "occurrence", "line"))
    assert numbered == [("", 1, 2), ("", 2, 4), ("", 3, 6), ("b", 1, 3), ("b", 2, 7), ("c", 1, 5)]
    assert run(org, bill(*rows)).summary["created"] == 0


def test_a_revised_month_to_date_file_replaces_only_that_period_and_source(acme):
    org, *_ = acme
    tag = '{"tracker_project": "support-bot"}'
    february = bill(
        row(
            BillingPeriodStart="2026-02-01T00:00:00Z",
            BillingPeriodEnd=MARCH,
            ChargePeriodStart="2026-02-10T00:00:00Z",
            ChargePeriodEnd="2026-02-11T00:00:00Z",
            Tags=tag,
            BilledCost="50.00",
        )
    )
    azure = bill(row(ProviderName="Azure", Tags=tag, BilledCost="7.00"))
    run(org, february)
    run(org, azure)
    run(org, bill(row(Tags=tag, BilledCost="10.00"), row(Tags=tag, SkuId="b", BilledCost="20.00"), row(SkuId="c")))
    kept = set(
        BilledCost.objects.filter(organization=org)
        .exclude(source="AWS", billing_period_start=MARCH)
        .values_list("pk", flat=True)
    )
    unchanged = BilledCost.objects.get(organization=org, source="AWS", sku_id="", billing_period_start=MARCH)

    # The month so far, issued again: sku b's cost grew, c was reissued as d.
    job = run(
        org, bill(row(Tags=tag, BilledCost="10.00"), row(Tags=tag, SkuId="b", BilledCost="25.00"), row(SkuId="d"))
    )

    assert job.summary["details"]["periods"] == [
        {
            "source": "AWS",
            "billing_period_start": "2026-03-01T00:00:00+00:00",
            "added": 2,
            "removed": 2,
            "billed_added": "35.00000000",
            "billed_removed": "30.00000000",
        }
    ]
    assert (job.summary["created"], job.summary["removed"], job.summary["unchanged"]) == (2, 2, 1)
    march = BilledCost.objects.filter(organization=org, source="AWS", billing_period_start=MARCH)
    assert sorted(march.values_list("sku_id", "billed_cost")) == [("", 10), ("b", 25), ("d", 10)]
    assert march.filter(pk=unchanged.pk).exists()
    assert kept <= set(BilledCost.objects.values_list("pk", flat=True))
    assert BilledCost.objects.get(source="Azure").billed_cost == 7
    event = AuditEvent.objects.filter(organization=org, object_type="ops.billedcost").latest("id")
    assert event.changes["periods"] == job.summary["details"]["periods"] and event.changes["import_job"] == job.pk


def test_estimated_vs_billed_per_project_and_month_is_exact(acme):
    org, support, fraud = acme
    run(org, SAMPLE.read_bytes())
    CostEntryFactory(project=support, date=dt.date(2026, 3, 20), amount=Decimal("150.00"))
    CostEntryFactory(project=support, date=dt.date(2026, 2, 20), amount=Decimal("30.00"))
    CostEntryFactory(project=fraud, date=dt.date(2026, 3, 2), amount=Decimal("345.25"))

    figures = billed_vs_estimated(
        projects=Project.objects.filter(organization=org),
        first_month=dt.date(2026, 2, 1),
        last_month=dt.date(2026, 3, 1),
    )

    assert figures == {
        support.pk: [
            BillingMonth(dt.date(2026, 2, 1), Decimal("30.00"), None, None),
            BillingMonth(dt.date(2026, 3, 1), Decimal("150.00"), Decimal("189.6"), Decimal("179.1")),
        ],
        fraud.pk: [BillingMonth(dt.date(2026, 3, 1), Decimal("345.25"), Decimal("345.25"), Decimal("70.25"))],
    }
    march = figures[support.pk][1]
    assert march.difference == Decimal("39.60") and march.drift_pct.quantize(Decimal("0.01")) == Decimal("20.89")
    assert figures[fraud.pk][0].drift_pct == 0
    assert project_billing(project=support, as_of=dt.date(2026, 3, 31)) == figures[support.pk][::-1]


def test_drift_raises_a_risk_past_the_threshold_and_closes_it_when_the_figures_meet(acme, settings):
    org, support, fraud = acme
    settings.RISK_SIGNAL_BILLING_DRIFT_PCT = 20
    run(org, SAMPLE.read_bytes())
    CostEntryFactory(project=support, date=dt.date(2026, 3, 20), amount=Decimal("150.00"))  # 20.89 % off
    CostEntryFactory(project=fraud, date=dt.date(2026, 3, 2), amount=Decimal("290.00"))  # 16.00 % off: under
    today = dt.date(2026, 4, 15)

    risk_signals_evaluate(organization=org, today=today)

    risk = Risk.objects.get(organization=org, signal_rule="billing_drift")
    assert (risk.signal_key, risk.project, risk.title) == (
        f"billing_drift:project:{support.pk}",
        support,
        "Support bot: billed cost differs from the estimate",
    )
    assert risk.description.startswith("2026-03: billed 189.60, estimated 150.00 USD (21%). The threshold is 20%")
    assert (risk.likelihood, risk.impact) == (3, 3)

    CostEntryFactory(project=support, date=dt.date(2026, 3, 21), amount=Decimal("39.60"))
    risk_signals_evaluate(organization=org, today=today)
    risk.refresh_from_db()
    assert risk.status == RiskStatus.CLOSED
    assert not Risk.objects.filter(signal_rule="billing_drift", status=RiskStatus.OPEN).exists()


def test_command_prints_per_project_totals_unmapped_and_refused_lines(acme):
    out = io.StringIO()
    manager = member(acme[0], Role.MANAGER)
    command = ["costs_import", str(SAMPLE), "--format", "focus", "--org", "acme", "--by", manager.username]
    call_command(*command, "--dry-run", stdout=out)
    assert not BilledCost.objects.exists() and not ImportJob.objects.exists()
    assert "Would import per project (USD):" in out.getvalue()

    out = io.StringIO()
    call_command(*command, stdout=out)
    assert out.getvalue().splitlines() == [
        "Imported per project (USD):",
        "  fraud-detection: rows 2, billed_cost 345.25000000, effective_cost 70.25000000",
        "  support-bot: rows 4, billed_cost 189.60000000, effective_cost 179.10000000",
        "  unmapped: 1 row(s), billed 12.00000000 (kept with no project: add a mapping rule or a tracker_project tag)",
        "Period 2026-03-01T00:00:00+00:00 from AWS: 7 added, 0 removed",
        "8 row(s) read: 7 new, 0 updated, 0 removed, 0 unchanged, 1 refused.",
        "1 line(s) refused:",
        "  line 9 BillingCurrency: No exchange rate from ARS to USD on or before 2026-03-05: "
        "the reference rates do not cover ARS; enter the organization's own rate.",
    ]
    assert BilledCost.objects.count() == 7


@pytest.fixture
def eager_worker(settings, tmp_path, django_capture_on_commit_callbacks):
    """Stored files under a temporary MEDIA_ROOT; enqueued tasks run in-process once the upload commits."""
    settings.MEDIA_ROOT = tmp_path
    app.conf.task_always_eager = True
    yield lambda: django_capture_on_commit_callbacks(execute=True)
    app.conf.task_always_eager = False


def test_api_upload_is_stored_imported_by_the_task_and_followed_by_its_job(acme, client, eager_worker, tmp_path):
    org, *_ = acme
    client.force_login(member(org, Role.MANAGER))
    with eager_worker(), SAMPLE.open("rb") as upload:
        response = client.post("/api/v1/imports/", {"format": "focus", "file": upload})
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "pending" and response.json()["filename"] == "focus-bill-sample.csv"
    job = ImportJob.objects.get()
    assert Path(job.file.path).parent.parent == tmp_path / "imports" and Path(job.file.path).read_bytes() == (
        SAMPLE.read_bytes()
    )

    body = client.get(f"/api/v1/imports/{job.pk}/").json()
    assert (body["status"], body["progress_pct"], body["rows_done"], body["error_count"]) == ("done", 100, 8, 1)
    assert body["summary"]["details"]["unmapped"]["rows"] == 1 and BilledCost.objects.count() == 7


def test_managers_upload_and_members_read_imports(acme, client, eager_worker):
    org, *_ = acme
    other = OrganizationFactory()
    job = ImportJob.objects.create(organization=other, format="focus", filename="theirs.csv")
    client.force_login(member(org, Role.CONTRIBUTOR))
    with SAMPLE.open("rb") as upload:
        assert client.post("/api/v1/imports/", {"format": "focus", "file": upload}).status_code == 403
    with SAMPLE.open("rb") as upload:
        assert client.post(reverse("ops:imports"), {"format": "focus", "file": upload}).status_code == 403
    page = client.get(reverse("ops:imports"))
    assert page.status_code == 200 and 'data-testid="import-upload"' not in page.content.decode()
    assert ImportJob.objects.filter(organization=org).count() == 0

    client.force_login(member(org, Role.MANAGER))
    assert client.get(f"/api/v1/imports/{job.pk}/").status_code == 404
    assert client.get(reverse("ops:import-detail", args=[job.pk])).status_code == 404
    with SAMPLE.open("rb") as upload:
        response = client.post("/api/v1/imports/", {"format": "codecarbon-x", "file": upload})
    assert response.status_code == 400 and ImportJob.objects.filter(organization=org).count() == 0


def test_upload_page_stores_the_file_and_shows_the_result(acme, client, eager_worker):
    org, *_ = acme
    client.force_login(member(org, Role.MANAGER))
    assert client.get(reverse("ops:imports")).status_code == 200
    with eager_worker(), SAMPLE.open("rb") as upload:
        response = client.post(reverse("ops:imports"), {"format": "focus", "file": upload})
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == job.get_absolute_url()
    page = client.get(job.get_absolute_url()).content.decode()
    assert 'data-status="done"' in page and "support-bot" in page and "Unmapped" in page
    assert "No exchange rate from ARS" in page
    assert client.get(reverse("ops:import-progress", args=[job.pk]))["HX-Refresh"] == "true"


def test_mapping_rules_through_the_api_are_the_managers(acme, client):
    org, support, _ = acme
    client.force_login(member(org, Role.CONTRIBUTOR))
    body = {"field": "ServiceName", "value": "Amazon S3", "project": support.pk}
    assert client.post("/api/v1/billing-rules/", body, content_type="application/json").status_code == 403
    client.force_login(member(org, Role.MANAGER))
    response = client.post("/api/v1/billing-rules/", body, content_type="application/json")
    assert response.status_code == 201, response.content
    assert client.post("/api/v1/billing-rules/", body, content_type="application/json").status_code == 409
    job = run(org, SAMPLE.read_bytes())
    assert job.summary["details"]["unmapped"]["rows"] == 0
    assert AuditEvent.objects.filter(object_type="ops.billingmappingrule", action=AuditAction.CREATE).count() == 1


def test_a_large_file_imports_in_bounded_memory(acme, monkeypatch):
    org, *_ = acme
    monkeypatch.setattr(focus_importer._Stager, "BLOCK_ROWS", 100)

    def peak(rows: int) -> int:
        BilledCost.objects.all().delete()
        content = b"".join(focus_bill(rows=rows, projects=["support-bot", "fraud-detection"]))
        tracemalloc.start()
        try:
            job = run(org, content)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            assert job.summary["created"] == rows

    peak(100)  # the first import's one-time allocations (lazy imports, caches) are no row's
    small, large = peak(1_500), peak(6_000)
    # Four times the rows, about the same peak: the block bounds it, not the file.
    assert large < small * 1.5, (small, large)


def test_compose_web_and_worker_share_the_import_storage():
    compose = yaml.safe_load((Path(__file__).parent.parent / "docker-compose.yml").read_text())
    services = compose["services"]
    root = services["web"]["environment"]["DJANGO_MEDIA_ROOT"]
    for name in ("web", "worker"):
        assert services[name]["environment"]["DJANGO_MEDIA_ROOT"] == root
        assert f"media:{root}" in services[name]["volumes"]
    assert "media" in compose["volumes"]


def test_rows_stream_into_a_copy_that_pauses_for_progress_writes_and_rates_queries(acme, monkeypatch):
    """The COPY open while rows are parsed ends before each progress write and rates query, and the rows
    after them go into a new one: the import stores what it stores with one COPY for the whole file."""
    org, *_ = acme
    rows = [row(BilledCost=f"{i}.25", Tags=f'{{"tracker_project": "support-bot", "n": "{i}"}}') for i in range(40)]
    later = {"ChargePeriodStart": "2026-03-12T00:00:00Z", "ChargePeriodEnd": "2026-03-13T00:00:00Z"}
    rows[25] |= {"BillingCurrency": "EUR"} | later
    rows[30] |= {"BillingCurrency": "ARS"}  # refused: no rate covers it, after its query
    rows[33] |= {"BillingCurrency": "GBP"} | later
    content = bill(*rows)

    def stored_rows() -> list[tuple]:
        fields = ("line", "project__slug", "billed_cost", "original_currency", "exchange_rate", "row_hash")
        return sorted(BilledCost.objects.filter(organization=org).values_list(*fields))

    whole = run(org, content)
    expected = stored_rows()
    BilledCost.objects.all().delete()
    monkeypatch.setattr(focus_importer._Stager, "BLOCK_ROWS", 2)
    monkeypatch.setattr("ops.imports.jobs.PROGRESS_EVERY", 3)
    pause, open_when_paused = focus_importer._Stager.pause, []

    def counted_pause(stager) -> None:
        open_when_paused.append(stager._open is not None)
        pause(stager)

    monkeypatch.setattr(focus_importer._Stager, "pause", counted_pause)
    paused = run(org, content)
    assert stored_rows() == expected and len(expected) == 39
    assert {r[3] for r in expected} == {"", "EUR", "GBP"}
    assert paused.summary == whole.summary and paused.summary["created"] == 39
    assert [e["line"] for e in paused.errors] == [e["line"] for e in whole.errors] == [32]
    # 13 progress writes (every 3 of 41 lines), 3 rates queries and the end; most found a COPY open to end.
    assert len(open_when_paused) == 17 and sum(open_when_paused) >= 10, open_when_paused


def _staging_tables() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE 'focus\\_import\\_%'")
        return {name for (name,) in cursor.fetchall()}


def test_an_import_drops_the_staging_tables_of_a_dead_import_and_keeps_a_running_ones(acme):
    org, *_ = acme
    dead, running = "focus_import_" + "0" * 16, "focus_import_" + "a" * 16
    with connection.cursor() as cursor:
        for name in (f"{dead}_raw", dead, f"{running}_raw"):
            cursor.execute(f"CREATE UNLOGGED TABLE {name} (x int)")
    # A running import's session holds its tables' lock; the dead one's session went with its worker.
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"],
        user=settings["USER"],
        password=settings["PASSWORD"],
        dbname=settings["NAME"],
        autocommit=True,
    ) as other:
        other.execute(f"SELECT pg_advisory_lock({focus_importer.STAGING_KEY})", [running])
        job = run(org, SAMPLE.read_bytes())
    assert job.status == ImportStatus.DONE
    assert _staging_tables() == {f"{running}_raw"}  # the import's own went at its end too
