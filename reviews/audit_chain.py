"""The audit trail's hash chain: each row's hash covers its content and the
previous row's hash, so changing or removing a row breaks every link after it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

GENESIS = "0" * 64
# The fields a row's hash covers, in this order.
HASHED = (
    "created_at",
    "actor_name",
    "action",
    "graph_name",
    "thread_id",
    "checkpoint_id",
    "task_id",
    "run_id",
    "before",
    "after",
    "client_address",
)


def row_hash(values: dict[str, Any], prev_hash: str) -> str:
    content = {name: values.get(name) for name in HASHED}
    created = content["created_at"]
    content["created_at"] = created.isoformat() if hasattr(created, "isoformat") else created
    text = json.dumps(
        {"prev": prev_hash, **content}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()


def first_broken(rows: Iterable[dict[str, Any]]) -> tuple[int, str] | None:
    """Walk rows in id order; the id of the first that doesn't match, and why."""
    prev = GENESIS
    for row in rows:
        if row["prev_hash"] != prev:
            return row[
                "id"
            ], "its link to the previous row is broken (a row before it was removed or changed)"
        if row_hash(row, prev) != row["hash"]:
            return row[
                "id"
            ], "its content does not match its hash (it was changed after it was written)"
        prev = row["hash"]
    return None
