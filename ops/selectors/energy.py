"""Energy and emissions of the CodeCarbon runs (ops/imports/codecarbon.py): the project page and the status report.

One set of figures, summed in the database: a project's runs, their energy (kWh) and their
emissions (kg CO₂-equivalent).
"""

import datetime as dt
from decimal import Decimal

from django.db.models import Aggregate, Count, DecimalField, IntegerField, OuterRef, Subquery, Sum, Value, Window
from django.db.models.functions import Coalesce

from ops.models import EnergyRun
from projects.models import Project

MEASURE = DecimalField(max_digits=30, decimal_places=12)


def _figures() -> dict[str, Aggregate]:
    return {"energy_run_count": Count("pk"), "energy_kwh": Sum("energy_kwh"), "emissions_kg": Sum("emissions_kg")}


def _zero(name: str) -> Value:
    if name == "energy_run_count":
        return Value(0, output_field=IntegerField())
    return Value(Decimal(0), output_field=MEASURE)


def energy_annotations(*, start: dt.datetime | None = None, end: dt.datetime | None = None) -> dict[str, Coalesce]:
    """Return annotations of a Project queryset: its runs recorded in [start, end), their energy and emissions."""
    runs = EnergyRun.objects.filter(project=OuterRef("pk"))
    if start is not None:
        runs = runs.filter(recorded_at__gte=start)
    if end is not None:
        runs = runs.filter(recorded_at__lt=end)
    grouped = runs.order_by().values("project")
    return {
        name: Coalesce(Subquery(grouped.annotate(figure=figure).values("figure")), _zero(name))
        for name, figure in _figures().items()
    }


def project_energy(*, project: Project, latest: int = 5) -> dict:
    """Return a project's energy figures over all its runs and its latest runs (one query)."""
    runs = list(
        EnergyRun.objects.filter(project=project)
        .annotate(**{f"all_{name}": Window(figure) for name, figure in _figures().items()})
        .order_by("-recorded_at", "-id")[:latest]
    )
    totals = {name: getattr(runs[0], f"all_{name}") if runs else _zero(name).value for name in _figures()}
    return {"energy": totals, "energy_latest": runs}
