"""Run callables at the same moment, each in its own thread with its own database connection."""

import threading
from collections.abc import Callable

from django.db import connection


def at_once(*targets: Callable[[], object], timeout: float = 60) -> list[object]:
    """Start every target together (behind a barrier); return each one's result or exception, in order."""
    barrier = threading.Barrier(len(targets))
    results: list[object] = [None] * len(targets)

    def run(index: int, target: Callable[[], object]) -> None:
        try:
            barrier.wait()
            results[index] = target()
        except Exception as exc:  # handed back: the test asserts on it
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, target)) for i, target in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return results
