"""The queue's rows (reviews.queue_row), for templates."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString

from reviews.models import ReviewTask
from reviews.queue_row import row_html

register = template.Library()


@register.simple_tag
def queue_row(task: ReviewTask) -> SafeString:
    return row_html(task)
