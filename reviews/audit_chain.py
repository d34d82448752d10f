"""The audit trail's hash chain: each row's hash covers its content and the
previous row's hash, so changing or removing a row breaks every link after it.

Rows are hashed with HMAC-SHA256 under a key the database doesn't hold
(AUDIT_KEY), so whoever can write to the table can't rewrite a row and
recompute the hashes after it. Rows written before the chain was keyed keep
their plain SHA-256 hashes; the first keyed row links to the last of them.

An anchor is the chain's head (last id, hash, row count) signed with the
same key and kept outside the database: against it, removing the newest rows
or emptying the table shows too.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import os
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.crypto import salted_hmac

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
# AuditEvent.hash_version: how a row's hash was made.
UNKEYED = 1  # plain SHA-256, rows from before the chain was keyed
KEYED = 2  # HMAC-SHA256 with audit_key()
MIN_KEY_LENGTH = 32
ANCHOR_TYPE = "hitl-audit-anchor"
# A CSV export's last row: this in the id column, the signed anchor after it.
CSV_ANCHOR_MARK = "anchor"


def audit_key() -> bytes:
    """AUDIT_KEY (settings, else the environment); without it, a key derived
    from SECRET_KEY under a salt of its own, so no other signature made with
    SECRET_KEY can stand in for a chain hash."""
    key = _configured_key()
    if key is not None:
        return key.encode()
    return salted_hmac(
        "hitl.audit.chain", "audit-key", secret=settings.SECRET_KEY, algorithm="sha256"
    ).digest()


def _configured_key() -> str | None:
    key = getattr(settings, "AUDIT_KEY", None)
    if key is None:
        key = os.environ.get("AUDIT_KEY")
    if key is not None and len(key) < MIN_KEY_LENGTH:
        raise ImproperlyConfigured(
            f"AUDIT_KEY must be at least {MIN_KEY_LENGTH} characters, got {len(key)} "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return key


def key_id(key: bytes) -> str:
    """A short name for the key, to tell which key signed an anchor."""
    return hmac.new(key, b"hitl.audit.key-id", hashlib.sha256).hexdigest()[:12]


@checks.register(checks.Tags.security)
def check_audit_key(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        _configured_key()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="reviews.E001")]
    return []


@checks.register(checks.Tags.security, deploy=True)
def check_audit_key_deploy(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    if getattr(settings, "AUDIT_KEY", None) is None and "AUDIT_KEY" not in os.environ:
        return [
            checks.Warning(
                "AUDIT_KEY is not set: the audit chain is keyed from SECRET_KEY, so rotating "
                "SECRET_KEY makes the existing trail fail verify_audit.",
                hint="Set AUDIT_KEY to a random value of at least 32 characters, kept "
                "away from the database and its backups.",
                id="reviews.W001",
            )
        ]
    return []


def _content(values: dict[str, Any], prev_hash: str) -> dict[str, Any]:
    content = {name: values.get(name) for name in HASHED}
    created = content["created_at"]
    content["created_at"] = created.isoformat() if hasattr(created, "isoformat") else created
    return {"prev": prev_hash, **content}


def _canonical(content: dict[str, Any]) -> bytes:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), default=str).encode()


def row_hash(values: dict[str, Any], prev_hash: str) -> str:
    """The unkeyed hash of rows written before the chain was keyed (anyone
    can recompute it: it proves nothing against someone who can write rows)."""
    return hashlib.sha256(_canonical(_content(values, prev_hash))).hexdigest()


def keyed_row_hash(values: dict[str, Any], prev_hash: str, key: bytes) -> str:
    content = {**_content(values, prev_hash), "v": KEYED}
    return hmac.new(key, _canonical(content), hashlib.sha256).hexdigest()


@dataclass
class Verdict:
    """What a walk of the chain found: its head, the first broken row, and
    the row count and hash at each marked id (anchors' heads)."""

    count: int = 0
    head_id: int | None = None
    head_hash: str = GENESIS
    broken: tuple[int, str] | None = None
    marks: dict[int, tuple[int, str]] = field(default_factory=dict)


def _problem(row: dict[str, Any], prev: str, key: bytes, keyed_seen: bool) -> str:
    """Why a row doesn't verify after `prev`, or ""."""
    version = row["hash_version"]
    if row["prev_hash"] != prev:
        return "its link to the previous row is broken (a row before it was removed or changed)"
    if version == KEYED:
        if hmac.compare_digest(keyed_row_hash(row, prev, key), row["hash"]):
            return ""
        return (
            "its content does not match its keyed hash (it was changed after it was "
            "written, or AUDIT_KEY is not the key it was written with)"
        )
    if version == UNKEYED:
        if keyed_seen:
            return "it has an unkeyed hash after keyed rows (it was rewritten without the key)"
        if row_hash(row, prev) == row["hash"]:
            return ""
        return "its content does not match its hash (it was changed after it was written)"
    return f"its hash version {version!r} is unknown"


def walk(rows: Iterable[dict[str, Any]], key: bytes, marks: Collection[int] = ()) -> Verdict:
    """Walk rows in id order, stopping at the first that doesn't verify."""
    verdict = Verdict()
    keyed_seen = False
    for row in rows:
        why = _problem(row, verdict.head_hash, key, keyed_seen)
        if why:
            verdict.broken = (row["id"], why)
            return verdict
        keyed_seen = keyed_seen or row["hash_version"] == KEYED
        verdict.count += 1
        verdict.head_id, verdict.head_hash = row["id"], row["hash"]
        if row["id"] in marks:
            verdict.marks[row["id"]] = (verdict.count, row["hash"])
    if verdict.count and not keyed_seen:
        # Unkeyed rows are only those from before the key, and the migration
        # that keyed the chain wrote a keyed row after them: a trail with no
        # keyed row had its keyed rows removed or rewritten with the plain hash.
        verdict.broken = (
            verdict.head_id,
            "the trail has no keyed row after its unkeyed ones (keyed rows were removed or "
            "rewritten without the key)",
        )
    return verdict


def first_broken(rows: Iterable[dict[str, Any]], key: bytes) -> tuple[int, str] | None:
    """Walk rows in id order; the id of the first that doesn't match, and why."""
    return walk(rows, key).broken


# Anchors ---------------------------------------------------------------------


class AnchorInvalid(Exception):
    """An anchor that can't be read, or whose signature doesn't verify."""


def sign_anchor(
    *, last_id: int | None, head_hash: str, count: int, at: datetime, key: bytes
) -> dict[str, Any]:
    anchor = {
        "type": ANCHOR_TYPE,
        "last_id": last_id,
        "hash": head_hash,
        "count": count,
        "at": at.isoformat(),
        "key": key_id(key),
    }
    return {**anchor, "signature": _anchor_signature(anchor, key)}


def _anchor_signature(anchor: dict[str, Any], key: bytes) -> str:
    fields = {k: v for k, v in anchor.items() if k != "signature"}
    return hmac.new(key, b"hitl.audit.anchor:" + _canonical(fields), hashlib.sha256).hexdigest()


def anchor_line(anchor: dict[str, Any]) -> str:
    return json.dumps(anchor, sort_keys=True, separators=(",", ":"))


def read_anchor(text: str) -> dict[str, Any]:
    """The anchor in an anchor file, or the last one in a CSV or JSON Lines
    export (a CSV export's last row is `anchor,<anchor JSON>`)."""
    for line in reversed(text.splitlines()):
        candidate = _anchor_in(line.strip()) if line.strip() else None
        if isinstance(candidate, dict) and candidate.get("type") == ANCHOR_TYPE:
            return candidate
    raise AnchorInvalid(
        "it holds no audit anchor (an export's last line, or audit_anchor's output)"
    )


def _anchor_in(line: str) -> Any:
    if not line.startswith("{"):
        cells = next(csv.reader([line]), [])
        if len(cells) < 2 or cells[0] != CSV_ANCHOR_MARK:
            return None
        line = cells[1]
    try:
        return json.loads(line)
    except ValueError:
        return None


def check_anchor(anchor: dict[str, Any], key: bytes) -> None:
    """Refuse an anchor not signed with this key, or altered since."""
    signature = anchor.get("signature")
    if not isinstance(signature, str) or not hmac.compare_digest(
        signature, _anchor_signature(anchor, key)
    ):
        named = anchor.get("key")
        hint = (
            f" (it names key {named}, AUDIT_KEY here is {key_id(key)})"
            if named != key_id(key)
            else " (it was edited after it was signed)"
        )
        raise AnchorInvalid("its signature does not verify" + hint)
    if not isinstance(anchor.get("count"), int) or not isinstance(anchor.get("hash"), str):
        raise AnchorInvalid("it lacks a row count or a hash")


def anchor_problem(anchor: dict[str, Any], verdict: Verdict) -> str | None:
    """Why the trail, walked with the anchor's head marked, is not the trail
    the anchor saw, or None when every row up to its head is still there."""
    last_id, count = anchor["last_id"], anchor["count"]
    if last_id is None:
        return None  # anchored while empty: nothing to lose
    now = f"the trail now has {verdict.count} event(s)"
    if verdict.head_id is not None:
        now += f" up to event {verdict.head_id}"
    if last_id not in verdict.marks:
        return (
            f"event {last_id}, the anchor's head, is missing: the trail was truncated or "
            f"cut back ({now}; the anchor counted {count} up to event {last_id})"
        )
    mark_count, mark_hash = verdict.marks[last_id]
    if mark_hash != anchor["hash"]:
        return f"event {last_id} does not have the hash the anchor recorded: it was rewritten"
    if mark_count != count:
        return (
            f"{mark_count} event(s) up to event {last_id}, the anchor counted {count}: "
            "rows were removed or added before it"
        )
    return None
