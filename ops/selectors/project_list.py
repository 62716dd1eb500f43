"""The project list's rows: filtered and sorted as its URL says, with each project's figures.

Two ways to the same rows. With a search, and for the CSV, the ORM builds the list's queryset
(`project_rows`). Otherwise the page and count statements are compiled once per process and shape
(`CompiledProjectRows`): building and compiling the 30-annotation queryset cost more than PostgreSQL's
running of it (issue 16). Both are built by the same code (`project_list_with_figures`, `list_filtered`),
so no rule of the list is written twice.
"""

import datetime as dt

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, QuerySet
from django_filters.constants import EMPTY_VALUES

from ops.filters import ProjectListFilter
from ops.selectors.portfolio import project_list_with_figures
from projects.models import Organization, Project, Team
from projects.selectors import project_list
from projects.services import organization_today
from tracker.db import CompiledValues, instance_from_row


def list_filtered(
    projects: QuerySet[Project], filters: ProjectListFilter, values: dict[str, object]
) -> QuerySet[Project]:
    """Return `projects` filtered by the filters' `values` (as django-filter's `qs`) and sorted as the list is."""
    for name, value in values.items():
        projects = filters.filters[name].filter(projects, value)
    return projects.order_by(*projects.query.order_by, "name", "pk")


def project_rows(
    *, user: AbstractBaseUser, organization: Organization, filters: ProjectListFilter
) -> QuerySet[Project]:
    """Return the project list's rows through the ORM, filtered and sorted by the validated `filters`."""
    # One organization: its today is a constant, not SQL repeated in every figure that reads the date.
    projects = project_list_with_figures(user=user, as_of=organization_today(organization))
    projects = projects.filter(organization=organization, archived=False)
    return list_filtered(projects, filters, filters.form.cleaned_data)


# What the project list's statements are compiled with (CompiledValues): no real id or code is like these.
LIST_PROBES = {"user_id": -7_316_011, "organization_id": -7_316_013}
# Each filter the compiled list binds, with its probe (what its form field gives). The search is not one of
# them: its lookup sends `%term%`, escaped, not the term, so a search runs through the ORM as built.
LIST_FILTER_PROBES: dict[str, object] = {
    "stage": "probe:stage",
    "health": "probe:health",
    "industry": "probe:industry",
    "use_case": "probe:use-case",
    "provider": "probe:provider",
    "team": -7_316_017,
}
LIST_SHAPES_MAX = 64  # compiled (as-of date, filters, sort) shapes kept per process; then compiled afresh
_list_shapes: dict[tuple, tuple[CompiledValues, CompiledValues]] = {}
PROJECT_COLUMNS = (*(f.attname for f in Project._meta.concrete_fields), "team__id", "team__name")


def _list_statements(
    filters: ProjectListFilter, *, names: tuple[str, ...], sort: tuple[str, ...], as_of: dt.date
) -> tuple[CompiledValues, CompiledValues]:
    """Return the list's page and count statements for one shape, compiled once per process.

    Built by the page's own code with probes for the user, the organization and each filter of `names`;
    the as-of date and the sort are written into the statement (a recurring budget's period, the ORDER BY),
    so they are part of the key. The statements are shared by the process's threads and never changed.
    """
    key = (as_of, names, sort)
    if (statements := _list_shapes.get(key)) is None:
        user = get_user_model()(pk=LIST_PROBES["user_id"])
        organization = Organization(pk=LIST_PROBES["organization_id"])
        values: dict[str, object] = {
            name: Team(pk=probe) if name == "team" else probe
            for name, probe in LIST_FILTER_PROBES.items()
            if name in names
        }
        projects = project_list_with_figures(user=user, as_of=as_of).filter(organization=organization, archived=False)
        rows = list_filtered(projects, filters, {**values, "sort": list(sort)})
        columns = [*PROJECT_COLUMNS, *rows.query.annotations]
        live = project_list(user=user).filter(organization=organization, archived=False)
        base = list_filtered(live, filters, values)
        probes = {**LIST_PROBES, **{name: LIST_FILTER_PROBES[name] for name in names}}
        # One organization's projects: grouped by it, one row (or none) that counts them.
        count = base.order_by().values("organization").annotate(n=Count("pk")).values("n")
        statements = (CompiledValues(rows.values(*columns), probes), CompiledValues(count, probes))
        for statement in statements:
            # A value the ORM wrote differently from its probe would stay the probe's: never serve that.
            if statement.bound_names() != set(probes):
                bound = sorted(statement.bound_names())
                raise ValueError(f"the project list binds {sorted(probes)}, its statement {bound}")
        if len(_list_shapes) >= LIST_SHAPES_MAX:
            _list_shapes.clear()
        _list_shapes[key] = statements
    return statements


class CompiledProjectRows:
    """The list's rows for a Paginator: its count and page statements with one request's values bound."""

    def __init__(
        self, *, user: AbstractBaseUser, organization: Organization, filters: ProjectListFilter, data: dict[str, object]
    ) -> None:
        self.organization = organization
        names = tuple(name for name in LIST_FILTER_PROBES if data.get(name) not in EMPTY_VALUES)
        sort = tuple(data.get("sort") or ())
        self.page, self.count_statement = _list_statements(
            filters, names=names, sort=sort, as_of=organization_today(organization)
        )
        self.values = {
            "user_id": user.pk,
            "organization_id": organization.pk,
            **{name: data[name].pk if name == "team" else data[name] for name in names},
        }

    def count(self) -> int:
        rows = self.count_statement(**self.values)
        return rows[0]["n"] if rows else 0

    def __getitem__(self, page: slice) -> list[Project]:
        if page.stop <= page.start:
            return []  # an empty list's first page: no statement, as the ORM's empty slice
        rows = self.page.page(offset=page.start, limit=page.stop - page.start, **self.values)
        return [self._project(values) for values in rows]

    def _project(self, values: dict[str, object]) -> Project:
        """A row as the template reads it: the project with its figures (`budget_status_of` reads them), its
        team, the organization."""
        project = instance_from_row(Project, values, ("team",))
        project.organization = self.organization
        return project
