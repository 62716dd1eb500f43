"""CompiledValues: a `.values()` statement compiled once, each call's parameters bound where the probes were; sent in
a batch or a pipeline; a cursor whose parameters the server binds."""

import datetime as dt

import psycopg
import pytest
from django.db import DataError, connection
from django.db.models import F, Value
from django.db.models.signals import post_init
from django.test.utils import CaptureQueriesContext

from ops.models import Risk, RiskStatus
from ops.tests.factories import RiskFactory
from projects.models import Project
from projects.tests.factories import OrganizationFactory, ProjectFactory
from tracker.db import (
    CompiledValues,
    InIds,
    compiled_send,
    in_ids,
    instance_from_values,
    pipeline,
    server_bound_cursor,
)

pytestmark = pytest.mark.django_db

PROBES = {"organization_id": -7_301_017, "since": dt.datetime(1901, 3, 4, 5, 6, 7, tzinfo=dt.UTC)}


def _open_risks(*, organization_id: int, since: dt.datetime):
    return (
        Risk.objects.filter(organization_id=organization_id, status=RiskStatus.OPEN, created_at__gte=since)
        .order_by("pk")
        .values("title", "project__name", "score")
    )


def test_each_call_binds_its_own_values_and_reads_what_the_queryset_reads():
    statement = CompiledValues(_open_risks(**PROBES), PROBES)
    long_ago = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    for _ in range(2):
        org = OrganizationFactory()
        RiskFactory.create_batch(2, project=ProjectFactory(organization=org))
        RiskFactory(project=ProjectFactory(organization=org), status=RiskStatus.CLOSED)
        params = {"organization_id": org.pk, "since": long_ago}
        rows = statement(**params)
        assert rows == list(_open_risks(**params)) and len(rows) == 2
    assert statement(organization_id=org.pk, since=dt.datetime(2999, 1, 1, tzinfo=dt.UTC)) == []


def test_a_probe_written_into_the_sql_is_refused():
    # A slice is written into the SQL as LIMIT n: a "parameter" there could not be rebound.
    with pytest.raises(ValueError, match="written into the SQL"):
        CompiledValues(Risk.objects.values("pk")[: -PROBES["organization_id"]], {"limit": -PROBES["organization_id"]})


def _projects(*, organization_id: int, ids):
    return Project.objects.filter(organization_id=organization_id, pk__in=ids).order_by("pk").values("pk", "name")


def test_a_list_is_bound_item_by_item_where_its_tuple_of_probes_was():
    org = OrganizationFactory()
    projects = [ProjectFactory(organization=org) for _ in range(3)]
    probes = {"organization_id": PROBES["organization_id"], "ids": (-7_301_101, -7_301_102)}
    statement = CompiledValues(_projects(**probes), probes)
    wanted = [projects[2].pk, projects[0].pk]
    assert statement(organization_id=org.pk, ids=wanted) == list(_projects(organization_id=org.pk, ids=wanted))
    assert [row["pk"] for row in statement(organization_id=org.pk, ids=wanted)] == sorted(wanted)
    assert statement(organization_id=-1, ids=wanted) == []


def test_a_page_binds_its_bounds_after_the_statement_and_a_sliced_statement_is_not_paged():
    org = OrganizationFactory()
    RiskFactory.create_batch(5, project=ProjectFactory(organization=org))
    statement = CompiledValues(_open_risks(**PROBES), PROBES)
    params = {"organization_id": org.pk, "since": dt.datetime(2000, 1, 1, tzinfo=dt.UTC)}

    assert statement.page(offset=1, limit=3, **params) == list(_open_risks(**params)[1:4])
    assert statement.page(offset=4, limit=3, **params) == list(_open_risks(**params)[4:])
    with pytest.raises(ValueError, match="cannot be paged"):
        CompiledValues(_open_risks(**PROBES)[:2], PROBES).page(offset=0, limit=1, **params)


def test_in_ids_reads_the_rows_of_the_ids_as_an_array_on_postgresql_and_as_in_elsewhere():
    org = OrganizationFactory()
    mine = RiskFactory.create_batch(2, project=ProjectFactory(organization=org))
    RiskFactory(project=ProjectFactory())  # another organization's
    scoped = Project.objects.filter(organization=org).values("pk")
    risks = Risk.objects.filter(InIds(F("project_id"), scoped)).order_by("pk")
    assert list(risks) == mine == list(Risk.objects.filter(project__in=scoped).order_by("pk"))
    assert "= ANY(ARRAY(SELECT" in str(risks.query)
    assert in_ids("(SELECT 1)", "sqlite") == "IN (SELECT 1)"


def test_in_a_pipeline_statements_are_sent_at_once_and_read_what_they_read_alone():
    org = OrganizationFactory()
    RiskFactory.create_batch(3, project=ProjectFactory(organization=org))
    statements = {
        "risks": CompiledValues(_open_risks(**PROBES), PROBES),
        "projects": CompiledValues(Project.objects.filter(organization_id=-7_301_017).values("name"), PROBES),
    }
    params = {"organization_id": org.pk, "since": dt.datetime(2000, 1, 1, tzinfo=dt.UTC)}
    alone = {name: statement(**params) for name, statement in statements.items()}
    with CaptureQueriesContext(connection) as queries, pipeline() as sync:
        batch = compiled_send(statements, **params)
        risks = statements["risks"].send(**params)
        # All three are with the server, none read: libpq waits for their results.
        assert connection.connection.pgconn.is_busy()
        sync()
        assert not connection.connection.pgconn.is_busy()
        assert batch() == alone and risks() == alone["risks"]
    assert len(queries) == 3  # in a pipeline each statement goes on its own, none waited for


def test_a_failed_statement_in_a_pipeline_raises_djangos_error_when_read():
    project = ProjectFactory(progress=0)
    probes = {"organization_id": -7_301_017}
    inverse = Project.objects.filter(organization_id=-7_301_017).annotate(inverse=Value(100) / F("progress"))
    statement = CompiledValues(inverse.values("inverse"), probes)
    with pytest.raises(DataError, match="division by zero"), pipeline():
        rows = statement.send(organization_id=project.organization_id)
        rows()


def test_a_server_bound_cursor_sends_its_parameters_apart_from_the_sql():
    project = ProjectFactory(name="Before")
    summary = "x" * 100_000 + "'; --"
    with CaptureQueriesContext(connection) as queries, server_bound_cursor() as cursor:
        cursor.execute("UPDATE projects_project SET summary = %s WHERE id = %s", [summary, project.pk])
    assert Project.objects.get(pk=project.pk).summary == summary
    # Logged as Django's own cursors are; psycopg's server-binding cursor sent the value as a parameter.
    assert len(queries) == 1 and "UPDATE projects_project" in queries[0]["sql"]
    assert isinstance(cursor.cursor, psycopg.Cursor) and not isinstance(cursor.cursor, psycopg.ClientCursor)


def test_an_instance_from_values_is_the_one_from_db_builds_and_init_receivers_still_run():
    project = ProjectFactory()
    values = Project.objects.filter(pk=project.pk).values("id", "name", "organization_id", "stage").get()
    built = instance_from_values(Project, values)
    names = [f.attname for f in Project._meta.concrete_fields if f.attname in values]
    read = Project.from_db("default", names, [values[name] for name in names])
    assert {k: v for k, v in built.__dict__.items() if k != "_state"} == {
        k: v for k, v in read.__dict__.items() if k != "_state"
    }
    assert built.get_deferred_fields() == read.get_deferred_fields() and "industry" in built.get_deferred_fields()
    assert (built._state.adding, built._state.db) == (False, "default") and built.pk == project.pk
    assert built.industry == project.industry  # a deferred field loads on access, as from_db's does

    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance)

    post_init.connect(receiver, sender=Project)
    try:
        with_receiver = instance_from_values(Project, values)
    finally:
        post_init.disconnect(receiver, sender=Project)
    assert seen == [with_receiver] and with_receiver.name == project.name
