"""E-mail every app sends: subjects that cannot break a header, batches that one bad message cannot stop."""

import dataclasses
import logging
import re
from collections.abc import Callable, Iterable
from typing import TypeVar

from django.conf import settings
from django.core.mail import get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import DatabaseError
from django.db.models import Model
from django.urls import NoReverseMatch

from tracker.metrics import MAILS

logger = logging.getLogger(__name__)

SUBJECT_MAX_LENGTH = 200
# Every control character (C0 with \t \n \v \f \r \x1c-\x1f, DEL, C1 with \x85) and the Unicode
# line and paragraph separators: any of them can end a header line for some mail client or parser.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

T = TypeVar("T")


def subject_line(*parts: object) -> str:
    """Join the parts into one line: controls and line breaks become spaces, runs collapse, long text is cut."""
    text = " ".join(_CONTROL.sub(" ", " ".join(str(part) for part in parts)).split())
    if len(text) > SUBJECT_MAX_LENGTH:
        text = text[: SUBJECT_MAX_LENGTH - 1].rstrip() + "…"
    return text


@dataclasses.dataclass(frozen=True)
class MailCounts:
    """What a batch sent and how many of its items failed (each failure is logged)."""

    sent: int = 0
    failed: int = 0


def mail_each(
    items: Iterable[T],
    send: Callable[[T, BaseEmailBackend], bool],
    *,
    kind: str,
    describe: Callable[[T], str],
) -> MailCounts:
    """Call `send(item, connection)` for each item over one connection; return what was sent and what failed.

    `send` returns whether it sent anything (False: skipped). An item that raises is logged with
    `describe(item)` and counted, and the batch goes on, so one poisoned item never stops the others.
    A mail server that cannot be reached raises before anything is sent (the caller retries later),
    and a database error propagates (the task retries it): neither is the item's fault.
    """
    items = list(items)
    if not items:  # no connection to the mail server for nothing
        return MailCounts()
    sent = failed = 0
    connection = get_connection()
    connection.open()
    try:
        for item in items:
            try:
                done = send(item, connection)
            except DatabaseError:
                raise
            except Exception:
                logger.exception("Could not send the %s e-mail for %s", kind, describe(item))
                MAILS.labels(kind, "failed").inc()
                failed += 1
            else:
                if done:
                    MAILS.labels(kind, "sent").inc()
                    sent += 1
    finally:
        connection.close()
    return MailCounts(sent=sent, failed=failed)


def absolute_link(instance: Model, api_path: str) -> str:
    """Return the full URL of an object's page for an e-mail, or of its API resource without a web UI."""
    try:
        path = instance.get_absolute_url()
    except (NoReverseMatch, AttributeError):  # AttributeError: a model with no page (a team, a cost centre)
        path = api_path
    return settings.SITE_URL.rstrip("/") + path
