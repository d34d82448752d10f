"""Untrusted JSON text to a value, refused with a message a person can act on.

Every JSON box in a form and every JSON body that is not already parsed by the
API goes through `parse_json`. Plain `json.loads` accepts things that break
later, far from the input: nesting deep enough to raise RecursionError (in the
parser, or in whatever walks the value next), NUL characters that PostgreSQL
refuses in text and jsonb, integers too large for a database column or for the
checkpoint's msgpack encoding, and NaN/Infinity, which are not JSON.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

MAX_CHARS = 2_621_440  # Django's DATA_UPLOAD_MAX_MEMORY_SIZE: a form could not carry more
MAX_DEPTH = 100
INT_MIN, INT_MAX = -(2**63), 2**63 - 1

# A JSON string literal, so brackets inside strings do not count as nesting.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class JSONSyntaxError(ValueError):
    """The text is not JSON at all (as opposed to JSON refused for its content)."""


def parse_json(text: str | bytes, *, max_chars: int = MAX_CHARS, max_depth: int = MAX_DEPTH) -> Any:
    """JSON text to a value. Raises ValueError with a sentence that says what is wrong."""
    if isinstance(text, bytes | bytearray):
        if len(text) > max_chars:
            raise ValueError(_too_long(len(text), max_chars))
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONSyntaxError(f"Not valid UTF-8 text (byte {exc.start}).") from None
    if not isinstance(text, str):
        raise ValueError("Expected JSON text.")
    if len(text) > max_chars:
        raise ValueError(_too_long(len(text), max_chars))
    if "\x00" in text:
        raise ValueError("JSON text may not contain NUL characters.")
    depth = _depth(text)
    if depth > max_depth:
        raise ValueError(f"JSON is nested {depth} levels deep; at most {max_depth} are allowed.")
    try:
        value = json.loads(
            text, parse_int=_bounded_int, parse_float=_finite_float, parse_constant=_no_constant
        )
    except _Refused as exc:
        raise ValueError(str(exc)) from None
    except json.JSONDecodeError as exc:
        raise JSONSyntaxError(
            f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from None
    except RecursionError:  # the bracket count above should make this unreachable
        raise ValueError(f"JSON is nested more than {max_depth} levels deep.") from None
    _refuse_nul(value)
    return value


def _too_long(size: int, limit: int) -> str:
    return f"JSON text is {size:,} characters long; at most {limit:,} are allowed."


def _depth(text: str) -> int:
    """How deeply the brackets nest, counted outside string literals. An
    unbalanced text may count wrong; the parser then reports it as invalid."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub('""', text))
    if brackets.count("[") + brackets.count("{") <= 1:
        return 1 if brackets else 0
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


class _Refused(ValueError):
    """Raised from the parser's hooks; its message is the whole explanation."""


def _bounded_int(digits: str) -> int:
    # Checked on length first: int() of thousands of digits is itself refused
    # (sys.set_int_max_str_digits) and slow.
    if len(digits.lstrip("-")) > 19 or not INT_MIN <= int(digits) <= INT_MAX:
        shown = digits if len(digits) <= 30 else f"{digits[:24]}…"
        raise _Refused(f"The number {shown} is too large (at most 64-bit integers).")
    return int(digits)


def _finite_float(digits: str) -> float:
    number = float(digits)
    if not math.isfinite(number):
        raise _Refused(f"The number {digits[:30]} is too large.")
    return number


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON value.")


def _refuse_nul(value: Any) -> None:
    """`\\u0000` escapes decode to NUL, which PostgreSQL refuses in jsonb."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ValueError("JSON text may not contain NUL characters (\\u0000).")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
