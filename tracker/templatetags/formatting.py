"""`{% load formatting %}`: the filters through which templates show codes, money, numbers and dates.

{{ amount|money:organization }}   {{ amount|money_whole:organization }}   {{ tokens|number:organization }}
{{ pct|percent:organization }}    {{ day_or_moment|when:organization }}
{{ project.stage|label:"projects.Project.stage" }}
<canvas data-chart="{{ series|as_json }}">: a chart's data in its own attribute (static/js/app.js)
"""

import json
from typing import Any

from django import template

from tracker import formatting

register = template.Library()


@register.filter
def as_json(value: Any) -> str:
    """Return `value` as JSON for an attribute (autoescaping quotes it).

    Charts carry their data on the canvas rather than in a json_script: htmx drops every <script>
    of a swapped fragment (allowScriptTags is off for the CSP), which lost a refreshed section's chart.
    """
    return json.dumps(value)


@register.filter
def money(amount: Any, organization: Any) -> str:
    return formatting.money(amount, organization)


@register.filter
def money_whole(amount: Any, organization: Any) -> str:
    return formatting.money(amount, organization, whole=True)


@register.filter
def rate(amount: Any, organization: Any) -> str:
    return formatting.rate(amount, organization)


@register.filter
def number(value: Any, organization: Any) -> str:
    return formatting.number(value, organization)


@register.filter
def measure(value: Any, organization: Any) -> str:
    return formatting.measure(value, organization)


@register.filter
def percent(value: Any, organization: Any) -> str:
    return formatting.percent(value, organization)


@register.filter
def when(value: Any, organization: Any) -> str:
    return formatting.date(value, organization)


@register.filter
def month(value: Any, organization: Any) -> str:
    return formatting.month(value, organization)


@register.filter
def iso(value: Any, organization: Any) -> str:
    """ISO 8601 for machine-read attributes (<time datetime>), in the organization's time zone."""
    return formatting.date(value, organization, formatting.Context.MACHINE)


@register.filter
def label(code: Any, spec: str) -> str:
    return formatting.label(formatting.choices_of(spec), code)


@register.filter
def labels(codes: Any, spec: str) -> list[str]:
    """Return the label of each code of a list (a risk's NIST and OWASP references)."""
    choices = formatting.choices_of(spec)
    return [formatting.label(choices, code) for code in codes or ()]


@register.filter
def model_label(object_type: str) -> str:
    return formatting.model_label(object_type)


@register.simple_tag
def change_lines(event: Any, organization: Any) -> list[str]:
    return formatting.change_lines(object_type=event.object_type, changes=event.changes, organization=organization)
