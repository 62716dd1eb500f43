"""Database helpers every app shares: the web processes' statement ceiling, per-row existence probes, a scope's
ids read as index lookups, statements compiled once and sent in a pipeline."""

import datetime as dt
import functools
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.db.models import Model, QuerySet, Subquery
from django.db.models.base import DEFERRED, ModelState
from django.db.models.lookups import IsNull, Lookup
from django.db.models.signals import post_init, pre_init
from django.db.models.sql.compiler import SQLCompiler
from django.db.utils import OperationalError

logger = logging.getLogger(__name__)

STATEMENT_TIMEOUT_MESSAGE = (
    "The request took too long in the database and was cancelled. "
    "Narrow it (filters, fewer or shorter search terms) or retry later."
)


def web_statement_timeout_apply() -> None:
    """Open this process's PostgreSQL connections from now on with `statement_timeout` set.

    It is a startup option of the connection (libpq `options`), so it costs no query per request.
    Only the WSGI entry point (gunicorn, runserver) calls this: migrations, management commands and
    the Celery worker keep PostgreSQL's default (no ceiling).
    """
    timeout = settings.DATABASE_WEB_STATEMENT_TIMEOUT_MS
    connection = connections[DEFAULT_DB_ALIAS]
    if not timeout or connection.vendor != "postgresql":
        return
    options = connection.settings_dict.setdefault("OPTIONS", {})
    options["options"] = f"{options.get('options', '')} -c statement_timeout={int(timeout)}".strip()


def statement_timeout_caught(exc: BaseException, *, path: str) -> bool:
    """Return whether `exc` is a statement PostgreSQL cancelled (the ceiling tripped), logging it if so."""
    if not (isinstance(exc, OperationalError) and isinstance(exc.__cause__, psycopg.errors.QueryCanceled)):
        return False
    logger.warning(
        "Statement cancelled after DATABASE_WEB_STATEMENT_TIMEOUT_MS=%s: %s: %s",
        settings.DATABASE_WEB_STATEMENT_TIMEOUT_MS,
        path,
        exc,
        extra={"path": path, "event": "statement_timeout"},
    )
    return True


def row_exists(queryset: QuerySet) -> IsNull:
    """Return whether the correlated `queryset` has a row, as an index probe per outer row.

    PostgreSQL may run an EXISTS as a hash over the whole table, every organization's rows
    included; a scalar subquery with LIMIT 1 is always an index lookup per row.
    """
    return IsNull(Subquery(queryset.order_by().values("pk")[:1]), False)


def row_absent(queryset: QuerySet) -> IsNull:
    """Return whether the correlated `queryset` has no row (the negation of `row_exists`)."""
    return IsNull(Subquery(queryset.order_by().values("pk")[:1]), True)


def in_ids(subquery: str, vendor: str) -> str:
    """Return the SQL condition (after a column) that the column is one of the ids `subquery` reads (a SELECT
    in parentheses).

    PostgreSQL plans `IN (subquery)` as a hash join costed from the subquery's share of the whole table
    (every organization's rows), so a statement over one organization's costs scanned them all; as an
    array, the ids are read first and each is an index lookup. Elsewhere (SQLite) it is a plain IN.
    """
    return f"= ANY(ARRAY{subquery})" if vendor == "postgresql" else f"IN {subquery}"


class InIds(Lookup):
    """`lhs` is one of the ids a `.values("pk")` queryset reads (`in_ids`): `filter(InIds(F("project_id"), qs))`."""

    lookup_name = "in_ids"
    prepare_rhs = False

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, list]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = compiler.compile(self.rhs)
        return f"{lhs} {in_ids(rhs, connection.vendor)}", [*lhs_params, *rhs_params]


# Where a probe's value goes in a statement's parameters: its name and item (None for a scalar), and the backend's
# adapter of its value when the compiler wrote the probe adapted.
Slot = tuple[tuple[str, int | None], Callable[[object], object] | None]


class CompiledValues:
    """A `.values()` queryset compiled to SQL once per process; each call binds fresh parameters.

    For statements whose shape is fixed and whose only changing inputs are a few parameters (a
    report's organization and period): the ORM's building and compiling of the queryset is the
    larger part of such a statement's cost. `queryset` is built once with `probes`, one distinct value
    per parameter that no real call uses (a negative id, a day of 1901), and the probes' positions in the
    compiled parameters are where each call's values go. A probe the compiler wrote into the SQL text
    instead of a parameter could not be rebound, so it is refused at once. Anything else the queryset
    reads when built (today's date, a setting) is frozen with it: key the cache by it, or keep it out.
    A list for an `__in` lookup is probed with a tuple of distinct probes, and each call binds a list
    of the same length (the SQL has one parameter per item): key the cache by the lengths.
    """

    def __init__(self, queryset: QuerySet, probes: dict[str, object]) -> None:
        self.db = queryset.db
        self.compiler = queryset.query.get_compiler(self.db)
        self.sql, params = self.compiler.as_sql()
        items = {  # (name, None) for a scalar probe, (name, position) for an item of a tuple of probes
            (name, position): value
            for name, probe in probes.items()
            for position, value in (enumerate(probe) if isinstance(probe, tuple) else [(None, probe)])
        }
        for probe in items.values():
            if str(probe)[:10] in self.sql:
                raise ValueError(f"{probe!r} is written into the SQL, not bound: it cannot be rebound")
        self.params = list(params)
        # A slot is where a probe sits, and how the backend wrote it there: SQLite's ORM writes a date or a time
        # as text (in UTC), so the probe is found in that form and each call's value is adapted the same way.
        ops = connections[self.db].ops
        adapters = {dt.datetime: ops.adapt_datetimefield_value, dt.date: ops.adapt_datefield_value}
        self.slots: dict[int, Slot] = {}
        for index, value in enumerate(self.params):
            for item, probe in items.items():
                adapt = adapters.get(type(probe))
                if type(value) is type(probe) and value == probe:
                    self.slots[index] = (item, None)
                elif adapt is not None and (written := adapt(probe)) is not probe and value == written:
                    self.slots[index] = (item, adapt)
        query = queryset.query
        self.sliced = query.is_sliced
        self.names = [*query.extra_select, *query.values_select, *query.annotation_select]
        self.converters = self.compiler.get_converters([s[0] for s in self.compiler.select[: self.compiler.col_count]])

    def __call__(self, **values: object) -> list[dict]:
        """Return the rows (dicts, as `.values()` gives them) of the statement with `values` bound."""
        return self._rows(self.sql, self._params(values))

    def send(self, **values: object) -> Callable[[], list[dict]]:
        """Execute the statement with `values` bound; return what reads its rows (see `pipeline`)."""
        cursor = connections[self.db].cursor()
        cursor.execute(self.sql, self._params(values))

        def rows() -> list[dict]:
            with cursor:
                return self._dicts(cursor.fetchall())

        return rows

    def page(self, *, offset: int, limit: int, **values: object) -> list[dict]:
        """Return the rows `offset` to `offset + limit` of the statement (ordered, not sliced) with `values` bound.

        The ORM writes a slice into the SQL text, where it could not be rebound: the page's bounds are
        parameters appended to the statement instead.
        """
        if self.sliced:
            raise ValueError("a sliced statement cannot be paged")
        return self._rows(f"{self.sql} LIMIT %s OFFSET %s", [*self._params(values), int(limit), int(offset)])

    def bound_names(self) -> set[str]:
        """Return the names of the probes found among the compiled parameters (each one bound per call)."""
        return {name for (name, _), _ in self.slots.values()}

    def _params(self, values: dict[str, object]) -> list[object]:
        return [self._bound(values, self.slots[i]) if i in self.slots else v for i, v in enumerate(self.params)]

    def _rows(self, sql: str, params: list[object]) -> list[dict]:
        with connections[self.db].cursor() as cursor:
            cursor.execute(sql, params)
            return self._dicts(cursor.fetchall())

    def _dicts(self, rows: list[tuple]) -> list[dict]:
        if self.converters:
            rows = self.compiler.apply_converters(rows, self.converters)
        return [dict(zip(self.names, row, strict=True)) for row in rows]

    @staticmethod
    def _bound(values: dict[str, object], slot: Slot) -> object:
        (name, position), adapt = slot
        value = values[name] if position is None else values[name][position]
        return value if adapt is None else adapt(value)


def compiled_send(statements: dict[str, CompiledValues], **values: object) -> Callable[[], dict[str, list[dict]]]:
    """Execute each statement with `values` bound; return what reads each one's rows (as its call would read them).

    In a `pipeline` they are all sent at once and the server runs them while the caller goes on.
    """
    sent = {name: statement.send(**values) for name, statement in statements.items()}
    return lambda: {name: rows() for name, rows in sent.items()}


@contextmanager
def pipeline(using: str = DEFAULT_DB_ALIAS) -> Iterator[Callable[[], None]]:
    """Run the block in PostgreSQL's pipeline mode, so that the server executes while Python works.

    Each statement is sent when it is executed and not waited for: the first read of any rows waits for
    everything sent until then, and so does the `sync` yielded (rows read after it are at hand). A reader
    sends what it needs next, then works on the rows it has while the server runs it (`CompiledValues.send`,
    `compiled_send`). The statements up to a `sync` run in one implicit transaction, each with its own
    snapshot (as in autocommit); a write in the block returns no row count. Elsewhere (SQLite, a libpq
    without pipelines) statements run as they are executed and `sync` does nothing.
    """
    connection = connections[using]
    if connection.vendor != "postgresql" or not psycopg.Pipeline.is_supported():
        yield lambda: None
        return
    connection.ensure_connection()
    with connection.connection.pipeline() as block:
        yield block.sync


@contextmanager
def server_bound_cursor(using: str = DEFAULT_DB_ALIAS) -> Iterator[CursorWrapper]:
    """Yield a cursor of `using` whose parameters PostgreSQL binds (elsewhere, the connection's usual cursor).

    For a statement with a large parameter (a report's JSON): Django's psycopg cursor binds client-side,
    so Python escapes the value into the SQL text and PostgreSQL parses it back out of it. The cursor is
    wrapped as Django wraps its own (execute wrappers and the query log see it) and shares the connection's
    transaction. It is for writes: it skips the timestamp loader Django adds to a cursor whose connection's
    timezone has changed since it was opened.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    from django.db.backends.postgresql.base import ServerBindingCursor  # psycopg 3 only

    connection.ensure_connection()
    connection.validate_thread_sharing()
    raw = ServerBindingCursor(connection.connection)
    with connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw) as cursor:
        yield cursor


@functools.cache
def _attnames(model: type[Model]) -> tuple[str, ...]:
    return tuple(f.attname for f in model._meta.concrete_fields)


def instance_from_values(model: type[Model], values: dict[str, object]) -> Model:
    """Return an instance of `model` with `values` (by attname) loaded and its other fields deferred.

    The instance is what `from_db` gives (the loaded attnames in its `__dict__`, the others deferred, its
    state not adding, on the manager's database), built without `Model.__init__` walking every field: for
    the reports' 500 project rows of 40 fields, 31 → ~5 µs a row. A model with init signals' receivers
    gets `from_db` itself, so they still run.
    """
    names = _attnames(model)
    db = model.objects.db
    if pre_init.has_listeners(model) or post_init.has_listeners(model):
        return model.from_db(db, names, [values.get(name, DEFERRED) for name in names])
    instance = model.__new__(model)
    instance.__dict__.update((name, values[name]) for name in names if name in values)
    state = instance._state = ModelState()
    state.adding, state.db = False, db
    return instance


def _related_model(model: type[Model], name: str) -> type[Model]:
    return model._meta.get_field(name).related_model


def related_values_names(model: type[Model], related: Iterable[str]) -> list[str]:
    """Return the `.values()` names reading `model`'s fields and those of its `related` foreign keys, whole."""
    names = [f.attname for f in model._meta.concrete_fields]
    return names + [
        f"{name}__{f.attname}" for name in related for f in _related_model(model, name)._meta.concrete_fields
    ]


def instance_from_row(model: type[Model], values: dict[str, object], related: Iterable[str] = ()) -> Model:
    """Return the `model` instance of a `.values()` row, as the ORM's own read would give it.

    Its fields (by attname) are loaded, the others deferred; each foreign key of `related`, read as
    `name__field`, is rebuilt the same way (None when its id is); any other value (an annotation) is
    set as an attribute.
    """
    columns = _attnames(model)
    prefixes = {name: f"{name}__" for name in related}
    nested: dict[str, dict[str, object]] = {name: {} for name in prefixes}
    instance = instance_from_values(model, values)
    for key in values.keys() - columns:
        value = values[key]
        owner = next((name for name, prefix in prefixes.items() if key.startswith(prefix)), None) if prefixes else None
        if owner is None:
            setattr(instance, key, value)
        else:
            nested[owner][key.removeprefix(prefixes[owner])] = value
    for name, fields in nested.items():
        rel = _related_model(model, name)
        setattr(
            instance, name, instance_from_values(rel, fields) if fields.get(rel._meta.pk.attname) is not None else None
        )
    return instance
