"""Structured logs: a request id carried from the request into the tasks it enqueues, JSON lines.

`tracker/celery.py` imports this module, which connects the Celery signal handlers: one log line
(and one metrics observation) per task with its name, id, duration and outcome.
"""

import datetime as dt
import json
import logging
import time
from contextvars import ContextVar
from typing import Any

from celery import signals

from tracker import metrics

# The id of the request (or of the task's originating request) this code runs for.
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# What text logs show outside any request or task (JSON says null).
NO_REQUEST = "-"

# The task message header carrying the request id from the publisher to the worker.
REQUEST_ID_HEADER = "request_id"

task_logger = logging.getLogger("tracker.task")

# Attributes every LogRecord has; anything else was passed through `extra=` and goes into the JSON.
_RECORD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}


class RequestIdFilter(logging.Filter):
    """Stamp every record with the current request id (NO_REQUEST outside a request or task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or NO_REQUEST
        return True


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object on one line, with the fields passed through `extra=`."""

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        payload: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": None if request_id == NO_REQUEST else request_id,
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


@signals.setup_logging.connect
def _logging_from_django_settings(**_: Any) -> None:
    """Let worker and beat log through Django's LOGGING (JSON or text) instead of Celery's own format."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


@signals.before_task_publish.connect
def _stamp_request_id(headers: dict | None = None, **_: Any) -> None:
    """Carry the current request id in the message of every task enqueued while serving it."""
    request_id = request_id_var.get()
    if request_id and headers is not None:
        headers.setdefault(REQUEST_ID_HEADER, request_id)


# task id -> (start time, context-variable token); a worker process runs one task per thread.
_running: dict[str, tuple[float, Any]] = {}


@signals.task_prerun.connect
def _task_started(task_id: str = "", task: Any = None, **_: Any) -> None:
    # An eager task has no message headers: it keeps the request id of the code that called it.
    request_id = getattr(task.request, REQUEST_ID_HEADER, None) or request_id_var.get()
    _running[task_id] = (time.perf_counter(), request_id_var.set(request_id))


@signals.task_postrun.connect
def _task_finished(task_id: str = "", task: Any = None, state: str | None = None, **_: Any) -> None:
    started = _running.pop(task_id, None)
    if started is None:
        return
    start, token = started
    duration = time.perf_counter() - start
    outcome = {"SUCCESS": "success", "RETRY": "retry", "FAILURE": "failure"}.get(state or "", (state or "").lower())
    metrics.task_observe(task=task.name, outcome=outcome, duration=duration)
    task_logger.info(
        "task %s %s in %.1f ms",
        task.name,
        outcome,
        duration * 1000,
        extra={
            "task_name": task.name,
            "task_id": task_id,
            "duration_ms": round(duration * 1000, 1),
            "outcome": outcome,
        },
    )
    request_id_var.reset(token)


@signals.worker_init.connect
def _worker_metrics(**_: Any) -> None:
    """Serve the worker's task metrics on WORKER_METRICS_PORT, when set (see README, Deploy)."""
    metrics.worker_metrics_serve()
