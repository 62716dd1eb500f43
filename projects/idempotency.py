"""Idempotency keys of API POSTs: claim a key, keep the answer, replay it to retries, purge after a day.

A key is scoped to its caller and path. The claim is one INSERT ... ON CONFLICT DO NOTHING, committed
before the request runs: of two requests with one key, exactly one inserts and runs; the other finds
the row and answers 409 while it runs, the stored answer once it is done, 422 when its body differs.
The web layer (tracker.api_conditional.IdempotentMixin) calls these; they hold the rules.
"""

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.utils import timezone

from projects.models import IdempotencyKey
from tracker.exceptions import Conflict, Unprocessable

IN_USE = "A request with this Idempotency-Key is still running; retry once it has answered."
REUSED = "This Idempotency-Key was used with another request body; use a new key for a new request."


@dataclass(frozen=True)
class Claim:
    """This request holds the key: it runs, then its answer is kept (or the claim released)."""

    pk: int


@dataclass(frozen=True)
class StoredAnswer:
    """The answer of the request that first used the key."""

    status: int
    headers: dict[str, str]
    body: bytes


def _insert(*, caller: str, path: str, key: str, fingerprint: str, now: dt.datetime) -> int | None:
    table = connection.ops.quote_name(IdempotencyKey._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (caller, path, key, fingerprint, claimed_at, headers, body)"  # nosec B608
            " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
            [caller, path, key, fingerprint, now, "{}", b""],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def idempotency_key_claim(
    *, caller: str, path: str, key: str, fingerprint: str, now: dt.datetime | None = None
) -> Claim | StoredAnswer:
    """Claim the key for this request, or return the answer already kept for it.

    Raise Unprocessable (422) when the key came with another body, Conflict (409) while its first
    request runs. A key past API_IDEMPOTENCY_KEY_HOURS counts as new even before the purge removes it;
    a claim older than API_IDEMPOTENCY_LOCK_SECONDS with no answer (its server died mid-request) is
    taken over, so a retry is not refused for a day.
    """
    now = now or timezone.now()
    expired = now - dt.timedelta(hours=settings.API_IDEMPOTENCY_KEY_HOURS)
    abandoned = now - dt.timedelta(seconds=settings.API_IDEMPOTENCY_LOCK_SECONDS)
    scope = IdempotencyKey.objects.filter(caller=caller, path=path, key=key)
    for _ in range(3):  # the row may go between the INSERT and the SELECT (released, purged): insert again
        pk = _insert(caller=caller, path=path, key=key, fingerprint=fingerprint, now=now)
        if pk is not None:
            return Claim(pk=pk)
        row = scope.first()
        if row is None:
            continue
        if row.claimed_at < expired:
            scope.filter(pk=row.pk, claimed_at=row.claimed_at).delete()
            continue
        if row.fingerprint != fingerprint:
            raise Unprocessable(REUSED, code="idempotency_key_reused")
        if row.status is not None:
            return StoredAnswer(status=row.status, headers=row.headers, body=bytes(row.body))
        if row.claimed_at < abandoned and scope.filter(pk=row.pk, status=None, claimed_at=row.claimed_at).update(
            claimed_at=now
        ):
            return Claim(pk=row.pk)
        raise Conflict(IN_USE, code="idempotency_key_in_use")
    raise Conflict(IN_USE, code="idempotency_key_in_use")


def idempotency_key_store(*, claim: Claim, answer: StoredAnswer) -> None:
    """Keep the claimed request's answer for its retries."""
    IdempotencyKey.objects.filter(pk=claim.pk).update(status=answer.status, headers=answer.headers, body=answer.body)


def idempotency_key_release(*, claim: Claim) -> None:
    """Give the key up (the request failed in a way a retry may fix: a 5xx or a 429): the next use runs again."""
    IdempotencyKey.objects.filter(pk=claim.pk, status=None).delete()


def idempotency_keys_purge(*, now: dt.datetime | None = None) -> int:
    """Delete the keys claimed more than API_IDEMPOTENCY_KEY_HOURS ago; return how many went."""
    cutoff = (now or timezone.now()) - dt.timedelta(hours=settings.API_IDEMPOTENCY_KEY_HOURS)
    deleted, _ = IdempotencyKey.objects.filter(claimed_at__lt=cutoff).delete()
    return deleted
