"""A pytest plugin (pyproject's addopts): every test starts with an empty cache.

The cache counts wrong API tokens per client address, and every test client
calls from 127.0.0.1: without this, one test's refusals would throttle the
next test's requests."""

import pytest
from django.core.cache import caches


@pytest.fixture(autouse=True)
def _empty_caches():
    for cache in caches.all():
        cache.clear()
    yield
