"""CodeCarbon `emissions.csv` import: both layouts CodeCarbon writes, exact figures, idempotent on the run id.

The two files in tests/data are CodeCarbon's own (see /work/shared/samples/README.md):
`codecarbon-emissions.csv` is mlco2/codecarbon `tests/test_data/emissions_valid_headers.csv` (the
current 31-column layout) and `codecarbon-emissions-legacy.csv` 12 rows of its
`examples/emissions.csv` (the legacy layout), two of them dated 2020-04-31 and 2020-06-31.
"""

import datetime as dt
import io
import zoneinfo
from decimal import Decimal
from pathlib import Path

import pytest

from ops.imports import codecarbon
from ops.imports.base import LineError
from ops.models import CostCategory, CostEntry, CostSource, EnergyRun
from ops.tests.factories import CostEntryFactory
from projects.models import AuditAction, AuditEvent, Role
from projects.tests.factories import OrganizationFactory, ProjectFactory, member
from tracker.exceptions import NotPermitted, ValidationFailed

pytestmark = pytest.mark.django_db

DATA = Path(__file__).parent / "data"
LEGACY = (DATA / "codecarbon-emissions-legacy.csv").read_bytes()
CURRENT = (DATA / "codecarbon-emissions.csv").read_bytes()
GAMMA_FIRST_RUN = "68f53844-f3af-48fb-971a-ffab844a6b6f"


@pytest.fixture
def org():
    return OrganizationFactory(timezone="Europe/Paris")


@pytest.fixture
def manager(org):
    return member(org, Role.MANAGER)


@pytest.fixture
def projects(org):
    """The legacy file's projects: by slug, by name, and one the mapping names (theta)."""
    return {
        "gamma": ProjectFactory(organization=org, slug="project_gamma"),
        "delta": ProjectFactory(organization=org, name="project_delta", slug="delta"),
        "alpha": ProjectFactory(organization=org, slug="project_alpha"),
        "beta": ProjectFactory(organization=org, slug="project_beta"),
        "theta": ProjectFactory(organization=org, slug="theta-training"),
    }


OPTIONS = {"project_map": {"project_theta": "theta-training"}}


def preview(org, data: bytes, options=OPTIONS):
    return codecarbon.IMPORTER.preview(organization=org, stream=io.BytesIO(data), options=options)


def apply(org, data: bytes, actor, options=OPTIONS):
    return codecarbon.IMPORTER.apply(organization=org, stream=io.BytesIO(data), options=options, actor=actor)


def test_legacy_preview_reports_the_good_runs_and_refuses_the_impossible_dates_by_line(org, projects):
    result = preview(org, LEGACY)

    assert [(e.line, e.column) for e in result.errors] == [(12, "timestamp"), (13, "timestamp")]
    assert "2020-04-31T03:26:11" in result.errors[0].message
    assert [row["line"] for row in result.rows] == list(range(2, 12))
    assert {row["status"] for row in result.rows} == {"new"}
    summary = result.summary
    assert (summary.rows, summary.created, summary.updated, summary.unchanged, summary.refused) == (12, 10, 0, 0, 2)
    assert summary.totals == {"duration_s": Decimal(263), "energy_kwh": Decimal(57), "emissions_kg": Decimal(56)}
    assert {slug: (p["runs"], p["energy_kwh"], p["emissions_kg"]) for slug, p in summary.by_project.items()} == {
        "project_gamma": (2, Decimal(15), Decimal(16)),
        "delta": (3, Decimal(15), Decimal(9)),
        "project_alpha": (3, Decimal(16), Decimal(16)),
        "theta-training": (2, Decimal(11), Decimal(15)),
    }
    # A preview writes nothing.
    assert not EnergyRun.objects.exists()
    assert not AuditEvent.objects.exists()


def test_legacy_apply_records_each_run_with_one_history_event_per_project(org, projects, manager):
    summary = apply(org, LEGACY, manager)

    assert (summary.created, summary.refused) == (10, 2)
    assert [(e.line, e.column) for e in summary.errors] == [(12, "timestamp"), (13, "timestamp")]
    runs = EnergyRun.objects.filter(organization=org)
    assert runs.count() == 10
    assert not runs.filter(project=projects["beta"]).exists()  # its only run has an impossible date
    first = runs.get(run_id=GAMMA_FIRST_RUN)
    assert first.project == projects["gamma"]
    # Local time without an offset, read in the organization's zone (CET in March).
    assert first.recorded_at == dt.datetime(2020, 3, 23, 9, 26, 11, tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))
    assert (first.duration_s, first.emissions_kg, first.energy_kwh) == (Decimal(34), Decimal(8), Decimal(8))
    assert (first.cloud_provider, first.cloud_region, first.region) == ("aws", "us-east-2", "Ohio")
    assert first.cpu_energy_kwh is None and first.gpu_count is None  # not in the legacy layout
    events = AuditEvent.objects.filter(object_type="ops.energyrun")
    assert events.count() == 4
    assert {e.project_id for e in events} == {projects[k].pk for k in ("gamma", "delta", "alpha", "theta")}
    gamma = events.get(project=projects["gamma"])
    assert gamma.action == AuditAction.BATCH
    assert gamma.actor == manager
    gamma_runs = runs.filter(project=projects["gamma"]).values_list("pk", flat=True)
    assert sorted(gamma.changes["created"]) == sorted(gamma_runs)


def test_a_second_import_of_the_same_file_changes_nothing(org, projects, manager):
    apply(org, LEGACY, manager)
    before = list(EnergyRun.objects.order_by("pk").values())
    events = AuditEvent.objects.count()

    assert preview(org, LEGACY).summary.unchanged == 10
    summary = apply(org, LEGACY, manager)

    assert (summary.created, summary.updated, summary.unchanged, summary.refused) == (0, 0, 10, 2)
    assert list(EnergyRun.objects.order_by("pk").values()) == before
    assert AuditEvent.objects.count() == events


def test_a_run_whose_figures_changed_is_updated_under_its_id(org, projects, manager):
    apply(org, LEGACY, manager)
    revised = LEGACY.replace(b"project_gamma,34,8,8,", b"project_gamma,40,9,10,")

    summary = apply(org, revised, manager)

    assert (summary.created, summary.updated, summary.unchanged) == (0, 1, 9)
    run = EnergyRun.objects.get(run_id=GAMMA_FIRST_RUN)
    assert (run.duration_s, run.emissions_kg, run.energy_kwh) == (Decimal(40), Decimal(9), Decimal(10))
    event = AuditEvent.objects.filter(object_type="ops.energyrun").latest("pk")
    assert (event.changes["created"], event.changes["changed"]) == ([], [run.pk])


def test_current_layout_reads_every_figure_exactly(org, manager):
    project = ProjectFactory(organization=org, slug="codecarbon")

    summary = apply(org, CURRENT, manager, options={})

    assert (summary.created, summary.refused) == (1, 0)
    run = EnergyRun.objects.get()
    assert run.project == project
    assert run.run_id == "0a578547-1d6b-4e2f-be0c-7ad10f2f7c97"
    assert run.recorded_at == dt.datetime(2021, 9, 23, 15, 4, 51, tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))
    assert run.duration_s == Decimal("161.204")
    assert run.energy_kwh == Decimal("0.000574428982")
    assert run.emissions_kg == Decimal("0.000449098925")
    assert (run.cpu_energy_kwh, run.gpu_energy_kwh, run.ram_energy_kwh) == (0, 0, Decimal("0.000574428982"))
    assert (run.country_iso_code, run.region, run.cloud_provider) == ("MAR", "casablanca-settat", "")
    assert run.gpu_count is None


def test_a_linked_cost_entry_gets_its_runs_energy(org, projects, manager):
    # The training job's cost, recorded with the CodeCarbon run id as its external id.
    entry = CostEntryFactory(
        project=projects["gamma"], category=CostCategory.TRAINING, amount=Decimal(12), external_id=GAMMA_FIRST_RUN
    )
    elsewhere = CostEntryFactory(project=projects["alpha"], amount=Decimal(1), external_id=GAMMA_FIRST_RUN)

    assert preview(org, LEGACY).rows[0]["cost_entry"] == entry.pk
    apply(org, LEGACY, manager)

    entry.refresh_from_db()
    elsewhere.refresh_from_db()
    assert entry.energy_kwh == Decimal("8.00")
    assert elsewhere.energy_kwh == 0  # another project's entry is not this run's
    assert EnergyRun.objects.get(run_id=GAMMA_FIRST_RUN).cost_entry == entry
    change = AuditEvent.objects.get(object_type="ops.costentry", action=AuditAction.UPDATE)
    assert change.changes == {"energy_kwh": ["0.00", "8.00"]}
    assert preview(org, LEGACY).summary.by_project["project_gamma"]["linked_entries"] == 1


def test_token_usage_is_never_linked(org, projects, manager):
    usage = CostEntryFactory(
        project=projects["gamma"], source=CostSource.USAGE, amount=Decimal(1), external_id=GAMMA_FIRST_RUN
    )

    apply(org, LEGACY, manager)

    usage.refresh_from_db()
    assert usage.energy_kwh == 0
    assert EnergyRun.objects.get(run_id=GAMMA_FIRST_RUN).cost_entry is None


def test_unknown_projects_repeated_runs_and_bad_figures_are_refused_by_line(org, manager):
    ProjectFactory(organization=org, slug="known")
    data = (
        b"timestamp,experiment_id,project_name,duration,emissions,energy_consumed\n"
        b"2020-03-23T09:26:11,a,known,1,1,1\n"
        b"2020-03-23T09:26:11,b,nowhere,1,1,1\n"
        b"2020-03-23T09:26:11,a,known,1,1,1\n"
        b"2020-03-23T09:26:11,c,known,1,-1,1\n"
        b"2020-03-23T09:26:11,d,known,1,1,\n"
        b"2020-03-23T09:26:11,e,mapped,1,1,1\n"
    )

    summary = apply(org, data, manager, options={"project_map": {"mapped": "gone"}})

    assert summary.errors == [
        LineError(3, "project_name", "No project has the slug or name “nowhere”; map it to one."),
        LineError(4, "experiment_id", "Repeats the run of line 2."),
        LineError(5, "emissions", "A finite, non-negative number is required."),
        LineError(6, "energy_consumed", "This figure is required."),
        LineError(7, "project_name", "The mapping sends “mapped” to “gone”, which is no project here."),
    ]
    assert list(EnergyRun.objects.values_list("run_id", flat=True)) == ["a"]


def test_a_file_that_is_not_codecarbons_is_refused_whole(org, manager):
    with pytest.raises(ValidationFailed) as refused:
        preview(org, b"date,amount\n2026-01-01,3\n")
    assert "no experiment_id, timestamp, project_name, duration, emissions, energy_consumed column" in str(
        refused.value.message
    )
    with pytest.raises(ValidationFailed):
        preview(org, b"\xff\xfe not utf-8")


def test_only_managers_import(org, projects):
    for role in (Role.VIEWER, Role.CONTRIBUTOR):
        with pytest.raises(NotPermitted):
            apply(org, LEGACY, member(org, role))
    with pytest.raises(NotPermitted):
        apply(org, LEGACY, member(OrganizationFactory(), Role.MANAGER))
    assert not EnergyRun.objects.exists()
    assert not CostEntry.objects.exists()


def test_the_project_page_shows_the_projects_energy_and_latest_runs(client, org, projects, manager):
    apply(org, LEGACY, manager)
    client.force_login(manager)

    page = client.get(projects["delta"].get_absolute_url()).content.decode()

    section = page[page.index('id="section-energy"') :]
    section = section[: section.index("</section>")]
    totals = section[section.index('data-testid="energy-totals"') :]
    assert [cell.split("</strong>")[0] for cell in totals.split("<strong>")[1:4]] == ["3", "15", "9"]
    assert section.count("<tr>") == 4  # the header and the project's three runs
    empty = client.get(projects["beta"].get_absolute_url()).content.decode()
    assert "No energy measured." in empty


def test_the_status_report_counts_the_runs_recorded_in_its_period(org, projects, manager):
    from ops.selectors.reports import report_markdown, status_report_data
    from ops.tests.factories import ReportFactory

    apply(org, LEGACY, manager)
    type(projects["gamma"]).objects.update(created_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))

    data = status_report_data(organization=org, period_start=dt.date(2020, 3, 1), period_end=dt.date(2020, 3, 31))

    energy = {s["name"]: s["energy"] for s in data["projects"]}
    assert energy[projects["gamma"].name] == {
        "runs": 2,
        "energy_kwh": "15.000000000000",
        "emissions_kg": "16.000000000000",
    }
    assert energy[projects["alpha"].name]["runs"] == 1  # its April runs are outside the period
    assert energy[projects["beta"].name] == {
        "runs": 0,
        "energy_kwh": "0.000000000000",
        "emissions_kg": "0.000000000000",
    }
    totals = data["totals"]
    assert (totals["energy_runs"], Decimal(totals["energy_kwh"]), Decimal(totals["emissions_kg"])) == (
        7,
        Decimal(38),
        Decimal(39),
    )
    report = ReportFactory(
        organization=org, data=data, period_start=dt.date(2020, 3, 1), period_end=dt.date(2020, 3, 31)
    )
    assert "- Energy: 38 kWh, 39 kg CO₂eq (7 CodeCarbon runs)" in report_markdown(report)
