"""How codes, money, numbers and dates read for people: the one home of every label and format.

Pages, reports, Markdown exports and e-mails go through these functions (templates through the
`formatting` template library); machine formats (CSV, JSON, the API) keep raw decimals, ISO 8601
dates and codes. Money, numbers and month names follow the organization's `locale` (CLDR, through
Babel); the date patterns are ours, one per context, so that every page reads dates the same way.
"""

import copy
import datetime as dt
import functools
import zoneinfo
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Protocol

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import NumberPattern, format_decimal
from django.apps import apps
from django.db import models
from django.utils.text import capfirst

DEFAULT_LOCALE = "en"
DEFAULT_CURRENCY = "USD"
EMPTY = "—"


class Context(StrEnum):
    """Where a date is read: people (pages, reports, Markdown, e-mails) or machines (CSV, JSON, API)."""

    HUMAN = "human"
    MACHINE = "machine"


# One pattern per context: "1 Dec 2026" and "1 Dec 2026, 10:00" (the organization's time zone).
DATE_PATTERNS = {Context.HUMAN: "d MMM y"}
DATETIME_PATTERNS = {Context.HUMAN: "d MMM y, HH:mm"}


class Localized(Protocol):
    """What formatting needs of an organization (a `projects.Organization`, or None for the defaults)."""

    currency: str
    timezone: str
    locale: str


# Parsing a locale and copying its patterns cost more than formatting a figure with them: pages format
# hundreds of figures in a few locales, so each locale and pattern is made once per process.
@functools.lru_cache(maxsize=64)
def _parsed_locale(identifier: str) -> Locale:
    return Locale.parse(identifier)


def _locale(organization: Localized | None) -> Locale:
    return _parsed_locale(getattr(organization, "locale", None) or DEFAULT_LOCALE)


@functools.lru_cache(maxsize=256)
def _pattern(locale: Locale, kind: str, frac_prec: tuple[int, int] | None) -> NumberPattern:
    """Return the locale's currency or percent pattern, with `frac_prec` decimals (None: the locale's)."""
    pattern = copy.copy(locale.currency_formats["standard"] if kind == "currency" else locale.percent_formats[None])
    if frac_prec is not None:
        pattern.frac_prec = frac_prec
    return pattern


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def money(amount: Any, organization: Localized | None, *, whole: bool = False) -> str:
    """Return an amount in the organization's currency and locale: "$3,979,202.46", "3.979.202,46 €".

    `whole` rounds to the unit, for tables and axes where cents are noise.
    """
    value = _decimal(amount)
    if value is None:
        return EMPTY
    locale = _locale(organization)
    pattern = _pattern(locale, "currency", (0, 0) if whole else None)
    currency = getattr(organization, "currency", None) or DEFAULT_CURRENCY
    return pattern.apply(value, locale, currency=currency, currency_digits=not whole)


def rate(amount: Any, organization: Localized | None) -> str:
    """Return a price per million tokens: the cents, and up to the 4 decimal places prices keep ("$0.0028")."""
    value = _decimal(amount)
    if value is None:
        return EMPTY
    locale = _locale(organization)
    pattern = _pattern(locale, "currency", (2, 4))
    currency = getattr(organization, "currency", None) or DEFAULT_CURRENCY
    return pattern.apply(value, locale, currency=currency, currency_digits=False)


def number(value: Any, organization: Localized | None) -> str:
    """Return a count or measure with the locale's separators: "1,234,567", "1.234.567"."""
    parsed = _decimal(value)
    return EMPTY if parsed is None else format_decimal(parsed, locale=_locale(organization))


def measure(value: Any, organization: Localized | None) -> str:
    """Return a physical measure (kWh, kg CO₂eq) to six decimals, the locale's way: "0.000574", "1.234,5"."""
    parsed = _decimal(value)
    return EMPTY if parsed is None else format_decimal(parsed, format="#,##0.######", locale=_locale(organization))


def percent(value: Any, organization: Localized | None) -> str:
    """Return a figure kept in percent units ("103.6", as reports store it) as "103.6%" ("103,6 %" in de)."""
    parsed = _decimal(value)
    if parsed is None:
        return EMPTY
    locale = _locale(organization)
    pattern = _pattern(locale, "percent", (1, 1))  # one decimal always, so that a column of them lines up
    return pattern.apply(parsed / 100, locale)


def _tzinfo(organization: Localized | None) -> dt.tzinfo:
    return zoneinfo.ZoneInfo(getattr(organization, "timezone", None) or "UTC")


def date(value: Any, organization: Localized | None, context: Context = Context.HUMAN) -> str:
    """Return a date ("1 Dec 2026") or a datetime ("1 Dec 2026, 10:00", in the organization's time zone).

    ISO 8601 strings, as report data and history keep them, are read first. The machine context
    returns ISO 8601.
    """
    if isinstance(value, str) and value:
        try:
            value = dt.datetime.fromisoformat(value) if "T" in value else dt.date.fromisoformat(value)
        except ValueError:
            return value
    if not isinstance(value, dt.date):
        return EMPTY
    if isinstance(value, dt.datetime):
        moment = value.astimezone(_tzinfo(organization)) if value.tzinfo else value
        if context == Context.MACHINE:
            return moment.isoformat()
        return format_datetime(moment, DATETIME_PATTERNS[context], locale=_locale(organization))
    if context == Context.MACHINE:
        return value.isoformat()
    return _day(value, DATE_PATTERNS[context], _locale(organization))


@functools.lru_cache(maxsize=4096)
def _day(value: dt.date, pattern: str, locale: Locale) -> str:
    # A page repeats the same few days (every row's budget period): each is formatted once.
    return format_date(value, pattern, locale=locale)


def month(value: Any, organization: Localized | None) -> str:
    """Return a month as "Dec 2026" (any date of it)."""
    if not isinstance(value, dt.date):
        return EMPTY
    return format_date(value, "MMM y", locale=_locale(organization))


def date_range(start: Any, end: Any, organization: Localized | None) -> str:
    """Return a period as "24 Nov 2026 – 30 Nov 2026"."""
    return f"{date(start, organization)} – {date(end, organization)}"


Choices = type[models.Choices] | Iterable[tuple[Any, Any]]


def label(choices: Choices, code: Any) -> str:
    """Return the label of a code from its choices (a `TextChoices` class or (code, label) pairs).

    A code the choices no longer know (a stored report written before a rename) shows as written.
    """
    if code is None or code == "":
        return EMPTY
    pairs = choices.choices if isinstance(choices, type) and issubclass(choices, models.Choices) else choices
    return str(dict(pairs).get(code, code))


def choices_of(spec: str) -> list[tuple[Any, Any]]:
    """Return the choices named by "app_label.Model.field" (a field's, e.g. "projects.Project.stage") or by
    "app_label.Choices" (a choices class of the app's models module, e.g. "ops.Severity")."""
    app_label, name, *field = spec.split(".")
    if field:
        return apps.get_model(app_label, name)._meta.get_field(field[0]).flatchoices
    choices = getattr(apps.get_app_config(app_label).models_module, name)
    if not (isinstance(choices, type) and issubclass(choices, models.Choices)):
        raise TypeError(f"{spec} is no choices class")
    return choices.choices


def model_label(object_type: str) -> str:
    """Return the verbose name of "app_label.model" ("ops.costentry" → "cost entry")."""
    try:
        return str(apps.get_model(object_type)._meta.verbose_name)
    except (LookupError, ValueError):
        return object_type.rpartition(".")[2]


def _field_value(field: models.Field | None, value: Any, organization: Localized | None) -> str:
    if value is None or value == "" or value == []:
        return EMPTY
    if field is not None and field.flatchoices:
        return label(field.flatchoices, value)
    if isinstance(field, models.BooleanField):
        return "yes" if value else "no"
    if isinstance(field, models.DateField):  # DateTimeField included
        return date(value, organization)
    if isinstance(field, models.ForeignKey):
        return f"#{value}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def change_lines(*, object_type: str, changes: dict[str, Any], organization: Localized | None) -> list[str]:
    """Return a history event's changes as sentences with field labels: "Health: On track → At risk".

    History keeps field names (attnames) and raw values; the labels come from the model at reading
    time, so a renamed label reads the new way in old history too.
    """
    try:
        fields = {f.attname: f for f in apps.get_model(object_type)._meta.concrete_fields}
    except (LookupError, ValueError):
        fields = {}
    lines = []
    for name, values in changes.items():
        field = fields.get(name)
        title = capfirst(str(field.verbose_name)) if field is not None else capfirst(name.replace("_", " "))
        old, new = [*values, None, None][:2] if isinstance(values, list) else (None, values)
        lines.append(f"{title}: {_field_value(field, old, organization)} → {_field_value(field, new, organization)}")
    return lines
