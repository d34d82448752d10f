"""Fails on import, after defining something: the failure must be told each time."""

from typing import TypedDict

import a_module_that_is_not_installed  # noqa: F401


class Never(TypedDict):
    x: int
