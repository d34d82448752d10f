"""A queue row's age reads as Django's timesince words (reviews.queue_row)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone, translation
from django.utils.timesince import timesince

from reviews.queue_row import _since

# Half a minute past each mark: the two readings of the clock fall in one minute.
AGES = [
    timedelta(seconds=s + 30)
    for s in (0, 60, 59 * 60, 60 * 60, 61 * 60, 23 * 3600 + 59 * 60, 24 * 3600, 25 * 3600)
] + [timedelta(days=40, seconds=30), timedelta(days=400, seconds=30), timedelta(seconds=-90)]


@pytest.mark.parametrize("language", ["en-us", "de", "fr"])
def test_ages_read_as_timesince_says_in_the_active_language(language):
    with translation.override(language):
        for age in AGES:
            moment = timezone.now() - age
            assert _since(moment) == timesince(moment), age
            naive = timezone.make_naive(moment)
            assert _since(naive) == timesince(naive), age
