"""``time_ago``: how long ago something happened, as the API keys pages show ``last_used``."""

from datetime import timedelta

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

register = template.Library()


@register.filter
def time_ago(moment, now=None) -> str:
    """``3 days ago``: the largest unit only, as a glance at a table wants it."""
    now = now or timezone.now()
    if now - moment < timedelta(minutes=1):
        return "just now"
    return f"{timesince(moment, now, depth=1)} ago".replace("\xa0", " ")
