"""Domain errors raised by services; the API and the web UI map them to responses."""

from collections.abc import Iterable, Mapping, Sequence

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Model, TextChoices


class ErrorCode(TextChoices):
    """Every `code` an error body of the API can carry, by the status it comes with (the schema's enums)."""

    INVALID = "invalid", "400: a field, a filter or the query string is invalid (see errors)"
    PARSE_ERROR = "parse_error", "400: the body is not valid JSON"
    BAD_REQUEST = "bad_request", "400: a malformed request header"
    NOT_AUTHENTICATED = "not_authenticated", "401: no credentials"
    AUTHENTICATION_FAILED = "authentication_failed", "401: an unknown or revoked token"
    TOKEN_EXPIRED = "token_expired", "401: the token has expired"
    PERMISSION_DENIED = "permission_denied", "403: the caller's role or token scope does not allow it"
    NOT_FOUND = "not_found", "404: unknown, or another organization's"
    METHOD_NOT_ALLOWED = "method_not_allowed", "405: the path does not take this method"
    NOT_ACCEPTABLE = "not_acceptable", "406: the Accept header names no type the endpoint answers"
    CONFLICT = "conflict", "409: clashes with what is stored (a duplicate, a row in use, the last admin)"
    TOO_MANY_PENDING_REPORTS = "too_many_pending_reports", "409: the requester has too many reports waiting"
    TRANSITION_REFUSED = "transition_refused", "409: unmet stage gates (see missing)"
    EXTERNAL_ID_CONFLICT = "external_id_conflict", "409: a recorded external_id resent with other content"
    IDEMPOTENCY_KEY_IN_USE = "idempotency_key_in_use", "409: the request with this Idempotency-Key still runs"
    REQUEST_TOO_LARGE = "request_too_large", "413: the body is over MAX_REQUEST_BODY_BYTES"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type", "415: the body is not application/json"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused", "422: the Idempotency-Key was sent with another body"
    THROTTLED = "throttled", "429: a rate limit; retry after Retry-After seconds"
    STATEMENT_TIMEOUT = "statement_timeout", "503: the request took too long in the database"
    QUEUE_UNAVAILABLE = "queue_unavailable", "503: saved, but the task queue is down"


def error_body(detail: str, code: str, errors: Mapping[str, Sequence[str]] | None = None) -> dict[str, object]:
    """Return the one error shape of the API: {"detail", "code", "errors": {field: [messages]}}."""
    return {"detail": detail, "code": code, "errors": {field: list(msgs) for field, msgs in (errors or {}).items()}}


class DomainError(Exception):
    """A business rule refused the operation; nothing was written."""

    status_code = 400
    default_code = "invalid"

    def __init__(
        self,
        message: str,
        *,
        errors: Mapping[str, Sequence[str]] | None = None,
        code: str = "",
        extra: Mapping[str, object] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.errors = {field: list(msgs) for field, msgs in (errors or {}).items()}
        self.code = code or self.default_code
        # More members of the API's error body, e.g. the id of what was saved before the refusal.
        self.extra = dict(extra or {})


class ValidationFailed(DomainError):
    """Input broke a rule; `errors` maps each field to its messages."""


class NotPermitted(DomainError):
    """The caller's role does not allow the operation."""

    status_code = 403
    default_code = "permission_denied"


class Conflict(DomainError):
    """The operation clashes with the current state (e.g. a duplicate)."""

    status_code = 409
    default_code = "conflict"


class Unprocessable(DomainError):
    """Well-formed input the operation cannot take as it is (e.g. an idempotency key reused with another body)."""

    status_code = 422
    default_code = "unprocessable"


class TooManyRequests(DomainError):
    """A rate limit refused the operation; retry after `retry_after` seconds."""

    status_code = 429
    default_code = "throttled"

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class ServiceUnavailable(DomainError):
    """A service the operation needs (e.g. the task queue) is down; what was saved stays saved, retry later."""

    status_code = 503
    default_code = "service_unavailable"


class TransitionRefused(Conflict):
    """A stage move was refused; `missing` lists every unmet gate."""

    default_code = "transition_refused"

    def __init__(self, message: str, *, missing: Sequence[Mapping[str, object]] = ()):
        super().__init__(message)
        self.missing = [dict(gate) for gate in missing]


def validate_model(
    instance: Model,
    *,
    exclude: Iterable[str] | None = None,
    constraint_errors: Mapping[str, tuple[str, str]] | None = None,
) -> None:
    """Run the model's field, choice and constraint checks; raise ValidationFailed per field.

    `constraint_errors` maps a constraint's name to the field and message that explain it to a user,
    in place of Django's generic non-field "Constraint … is violated".
    """
    try:
        instance.full_clean(exclude=exclude)
    except DjangoValidationError as exc:
        errors = exc.message_dict
        explained = {
            constraint.get_violation_error_message(): constraint_errors[constraint.name]
            for constraint in instance._meta.constraints
            if constraint.name in (constraint_errors or {})
        }
        for message in errors.pop(NON_FIELD_ERRORS, []):
            field, text = explained.get(message, (NON_FIELD_ERRORS, message))
            errors.setdefault(field, []).append(text)
        first = next(iter(errors.values()))[0]
        raise ValidationFailed(first, errors=errors) from exc


def reject_unknown_fields(changes: Mapping[str, object], allowed: Iterable[str]) -> None:
    """Refuse fields a service does not accept, instead of silently dropping them."""
    unknown = sorted(set(changes) - set(allowed))
    if unknown:
        raise ValidationFailed(
            f"Unknown field(s): {', '.join(unknown)}.", errors={name: ["Unknown field."] for name in unknown}
        )
