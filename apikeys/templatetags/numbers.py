"""``thousands``: a whole number with thousands separators (``200,000``), on the pages that show
counts, without turning grouping on for every number the site prints."""

from django import template

register = template.Library()


@register.filter
def thousands(value) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
