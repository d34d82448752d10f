"""The queue's rows (reviews.queue_row), for templates."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString

from reviews.models import ReviewTask
from reviews.queue_row import Local, local, row_html

register = template.Library()


def here(context: template.Context) -> Local:
    """The reader's zone and language, looked up once per rendering."""
    found = context.render_context.get(Local)
    if found is None:
        found = context.render_context[Local] = local()
    return found


@register.simple_tag(takes_context=True)
def queue_row(context: template.Context, task: ReviewTask) -> SafeString:
    return row_html(task, here=here(context))
