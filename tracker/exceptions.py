"""Domain errors raised by services; the API and the web UI map them to responses."""

from collections.abc import Iterable, Mapping, Sequence

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Model


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
    ):
        super().__init__(message)
        self.message = message
        self.errors = {field: list(msgs) for field, msgs in (errors or {}).items()}
        self.code = code or self.default_code


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
