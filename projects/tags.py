"""Tags: free `key=value` labels on projects, costs and usage, and the one rule that validates them.

A key is lower-case letters, digits and `_ . : / -`, starting with a letter or digit (the subset the
cloud providers' tag keys and OpenTelemetry attribute names share); a value is any printable text up
to 256 characters. At most 50 tags per row. Stored as a JSON object {key: value}.
"""

import re

from django.core.exceptions import ValidationError

KEY = re.compile(r"^[a-z0-9][a-z0-9_.:/-]{0,62}$")
MAX_VALUE = 256
MAX_TAGS = 50


def tags_validate(value: object) -> None:
    """Raise ValidationError unless `value` is a {key: value} object of valid tags (the model validator)."""
    if not isinstance(value, dict):
        raise ValidationError("Tags are an object of key: value.", code="invalid")
    if len(value) > MAX_TAGS:
        raise ValidationError(f"At most {MAX_TAGS} tags.", code="invalid")
    for key, text in value.items():
        if not isinstance(key, str) or not KEY.match(key):
            raise ValidationError(
                f"Tag key {str(key)[:70]!r}: lower-case letters, digits and _ . : / - (up to 63).", code="invalid"
            )
        if not isinstance(text, str) or len(text) > MAX_VALUE or not text.isprintable():
            raise ValidationError(f"Tag {key}: a printable value up to {MAX_VALUE} characters.", code="invalid")


def tag_keys_validate(value: object) -> None:
    """Raise ValidationError unless `value` is a list of distinct valid tag keys (an organization's OTLP tag keys)."""
    if not isinstance(value, list) or len(value) > MAX_TAGS:
        raise ValidationError(f"A list of up to {MAX_TAGS} tag keys.", code="invalid")
    if len(set(map(str, value))) != len(value):
        raise ValidationError("Each tag key once.", code="invalid")
    for key in value:
        if not isinstance(key, str) or not KEY.match(key):
            raise ValidationError(f"Tag key {str(key)[:70]!r}: lower-case letters, digits and _ . : / - (up to 63).")


def tags_parse(text: str) -> dict[str, str]:
    """Return the tags of `key=value` lines (or comma-separated pairs), validated; the form's input."""
    tags: dict[str, str] = {}
    for item in re.split(r"[\n,]", text):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise ValidationError(f"{item.strip()[:70]!r} is not key=value.", code="invalid")
        tags[key.strip()] = value.strip()
    tags_validate(tags)
    return tags


def tags_format(tags: dict[str, str]) -> str:
    """Return the tags as `key=value` lines, sorted: the form's initial text and the CSV column."""
    return "\n".join(f"{key}={value}" for key, value in sorted(tags.items()))
