"""Database helpers every app shares: the web processes' statement ceiling, per-row existence probes."""

import logging

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import QuerySet, Subquery
from django.db.models.lookups import IsNull
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
