"""CsvCell (the formula escape PostgreSQL applies in a COPY export) agrees with csv_cell on every first character."""

import pytest
from django.db.models import Value
from django.db.models.functions import Concat

from projects.models import Organization
from tracker.exports import FORMULA_STARTS, CsvCell, csv_cell

pytestmark = pytest.mark.django_db

CELLS = [
    *(start + "x" for start in FORMULA_STARTS),
    *FORMULA_STARTS,
    "-12.5",
    "x=1",
    "",
    "é=",
    "✓+",
    "\x7f",
    "'=",
]


def test_csv_cell_in_sql_matches_python_for_every_first_character():
    organization = Organization.objects.create(name="Cells", slug="cells")
    escaped = [
        Organization.objects.filter(pk=organization.pk)
        .annotate(cell=CsvCell(Concat(Value(text), Value(""))))
        .values_list("cell", flat=True)
        .get()
        for text in CELLS
    ]
    # An empty text is NULL, which COPY writes as nothing, as csv.writer writes "".
    assert escaped == [csv_cell(text) or None for text in CELLS]
