"""Template tags of the registers (the project list, the risk register): sortable column headers."""

from django import template
from django.utils.html import format_html

register = template.Library()

ARROWS = {"ascending": "▲", "descending": "▼"}


@register.simple_tag(takes_context=True)
def sort_header(context, label: str, key: str, *, default: str = "", css: str = "") -> str:
    """Return a column header whose link sorts by `key` (again: the other way), keeping the other query parameters.

    `default` is the sort the page applies when the URL names none; the sorted column carries `aria-sort`.
    """
    request = context["request"]
    current = request.GET.get("sort") or default
    state = {key: "ascending", f"-{key}": "descending"}.get(current, "")
    query = request.GET.copy()
    query.pop("page", None)
    query["sort"] = f"-{key}" if state == "ascending" else key
    return format_html(
        '<th scope="col"{}{}><a href="?{}" class="sort">{}<span aria-hidden="true">{}</span></a></th>',
        format_html(' class="{}"', css) if css else "",
        format_html(' aria-sort="{}"', state) if state else "",
        query.urlencode(),
        label,
        f" {ARROWS[state]}" if state else "",
    )
