"""A thread's checkpoints as a branching timeline, read from the saver's rows.

The first view must stay fast on threads with thousands of checkpoints, so it
reads one page of checkpoint rows (newest first, by the thread's checkpoint
index) plus the pending writes of those rows and their parents, and nothing
else: no channel values, no deserialising. State is loaded only for the point
someone clicks.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from graphs.models import Checkpoint, CheckpointWrite, Run, Thread
from graphs.serde import strict_serializer
from graphs.worker import RUN_KEY
from reviews.graph_state import EDITED_AS_NODE, EDITED_BY

PAGE = 50
LANE_WIDTH = 16  # pixels between two lanes of the drawing
LANE_COLORS = 6  # site.css colours lanes lane-c0 to lane-c5
_UUID_EPOCH = datetime(1582, 10, 15, tzinfo=UTC)


@dataclass
class Point:
    checkpoint_id: str
    ns: str
    parent_id: str | None
    step: int
    source: str
    writers: list[str] = field(default_factory=list)
    run: Run | None = None
    edited_by: str = ""
    interrupted: bool = False
    lane: int = 0
    forks_from: str | None = None  # set when this point starts a branch
    latest: bool = False
    branch: str = ""  # on a branch's newest point: what started it (replay, fork...)
    rails: list[dict[str, Any]] = field(default_factory=list)  # the graph drawn beside it

    @property
    def short_id(self) -> str:
        return self.checkpoint_id[-8:]

    @property
    def x(self) -> int:
        return self.lane * LANE_WIDTH

    @property
    def color(self) -> int:
        return self.lane % LANE_COLORS

    @property
    def at(self) -> datetime | None:
        return checkpoint_time(self.checkpoint_id)

    @property
    def caused_by(self) -> str:
        if self.edited_by:
            return f"edited by {self.edited_by}"
        if self.run is not None:
            who = self.run.requested_by.get_username() if self.run.requested_by else ""
            return f"run {self.run.pk} ({self.run.get_kind_display()}{', ' + who if who else ''})"
        return {
            "input": "input",
            "loop": "graph step",
            "update": "state update",
            "fork": "fork",
        }.get(self.source, self.source)


def checkpoint_time(checkpoint_id: str) -> datetime | None:
    """LangGraph's checkpoint ids are UUIDv6: the time is in the id."""
    try:
        value = uuid.UUID(checkpoint_id)
    except ValueError:
        return None
    if value.version != 6:
        return None
    ticks = (
        (value.int >> 96) << 28 | ((value.int >> 80) & 0xFFFF) << 12 | ((value.int >> 64) & 0xFFF)
    )
    return _UUID_EPOCH + timedelta(microseconds=ticks // 10)


PUSH = "~__pregel_push"
SENDS = "__pregel_tasks"


def _node_of(task_path: str) -> str:
    # "~__pregel_pull, write_draft" -> "write_draft". A pushed task (a Send)
    # names only its place among the sends, "~__pregel_push, 0000000001, ...":
    # see _sent_nodes.
    parts = [p.strip() for p in task_path.split(",")]
    return parts[1] if len(parts) > 1 else task_path


def _sent_nodes(thread: Thread, checkpoint_ids: set[str]) -> dict[str, list[str]]:
    """The nodes of the sends written at these checkpoints, in the order the
    next step numbers its pushed tasks. Only these small rows are read."""
    rows = CheckpointWrite.objects.filter(
        thread_id=thread.thread_id, checkpoint_id__in=checkpoint_ids, channel=SENDS
    ).order_by("checkpoint_id", "task_path", "idx")
    serde = strict_serializer()
    sent: dict[str, list[str]] = {}
    for row in rows.values_list("checkpoint_id", "type", "blob"):
        try:
            node = getattr(serde.loads_typed((row[1], bytes(row[2]))), "node", "")
        except Exception:  # a value this process can't read: the step still shows
            node = ""
        sent.setdefault(row[0], []).append(str(node or ""))
    return sent


def timeline(thread: Thread, *, before: str = "", limit: int = PAGE) -> tuple[list[Point], str]:
    """The newest `limit` points (older than `before`), newest first, and the
    cursor for the page after them ("" when there is none)."""
    rows = Checkpoint.objects.filter(thread_id=thread.thread_id)
    if before:
        rows = rows.filter(checkpoint_id__lt=before)
    page = list(
        rows.order_by("-checkpoint_id").values(
            "checkpoint_ns", "checkpoint_id", "parent_checkpoint_id", "metadata"
        )[: limit + 1]
    )
    more = len(page) > limit
    page = page[:limit]
    points = [
        Point(
            checkpoint_id=r["checkpoint_id"],
            ns=r["checkpoint_ns"],
            parent_id=r["parent_checkpoint_id"],
            step=(r["metadata"] or {}).get("step", -1),
            source=(r["metadata"] or {}).get("source", ""),
            # Only the state editor's own points say who edited them.
            edited_by=(r["metadata"] or {}).get(EDITED_BY, "")
            if (r["metadata"] or {}).get("source") == "update"
            else "",
        )
        for r in page
    ]
    metadata = {r["checkpoint_id"]: r["metadata"] or {} for r in page}
    _add_writes(thread, points, metadata)
    _add_runs(points, metadata)
    _add_lanes(points)
    _add_rails(points)
    root = [p for p in points if not p.ns]
    if root and not before:
        root[0].latest = True
    return points, (points[-1].checkpoint_id if more and points else "")


def _add_writes(thread: Thread, points: list[Point], metadata: dict[str, dict]) -> None:
    """Who wrote each point (its parent's tasks) and which points interrupted."""
    ids = {p.checkpoint_id for p in points} | {p.parent_id for p in points if p.parent_id}
    writes = CheckpointWrite.objects.filter(
        thread_id=thread.thread_id,
        checkpoint_ns__in={p.ns for p in points},
        checkpoint_id__in=ids,
    ).values_list("checkpoint_id", "task_path", "channel")
    nodes: dict[str, list[str]] = {}
    interrupted: set[str] = set()
    pushed: list[tuple[str, str]] = []
    for checkpoint_id, task_path, channel in writes:
        if channel == "__interrupt__":
            interrupted.add(checkpoint_id)
            continue
        if task_path.startswith(PUSH):
            pushed.append((checkpoint_id, task_path))
            continue
        node = _node_of(task_path)
        if node and node not in nodes.setdefault(checkpoint_id, []):
            nodes[checkpoint_id].append(node)
    if pushed:
        # A pushed task's node is in the send that made it, written one
        # checkpoint earlier.
        parent_of = {p.checkpoint_id: p.parent_id for p in points}
        sent = _sent_nodes(thread, {parent_of.get(c) or "" for c, _ in pushed})
        for checkpoint_id, task_path in sorted(set(pushed)):
            sends = sent.get(parent_of.get(checkpoint_id) or "", [])
            index = _node_of(task_path)
            node = sends[int(index)] if index.isdigit() and int(index) < len(sends) else ""
            nodes.setdefault(checkpoint_id, [])
            if node and node not in nodes[checkpoint_id]:
                nodes[checkpoint_id].append(node)
    for point in points:
        point.interrupted = point.checkpoint_id in interrupted
        if point.source == "update":
            as_node = metadata[point.checkpoint_id].get(EDITED_AS_NODE)
            point.writers = [as_node] if as_node else []
        elif point.source == "loop" and point.parent_id:
            point.writers = [n for n in nodes.get(point.parent_id, []) if n != "__start__"] or (
                nodes.get(point.parent_id, [])
            )


def _add_runs(points: list[Point], metadata: dict[str, Any]) -> None:
    run_ids = {m.get(RUN_KEY) for m in metadata.values() if isinstance(m.get(RUN_KEY), int)}
    runs = Run.objects.select_related("requested_by").in_bulk(run_ids) if run_ids else {}
    for point in points:
        point.run = runs.get(metadata[point.checkpoint_id].get(RUN_KEY))


def _add_lanes(points: list[Point]) -> None:
    """Lanes, oldest first: a point continues its parent's lane while it is
    the parent's first child; a second child (a replay, a fork, an edit of
    the past) opens a lane of its own and names where it branched from."""
    tips: list[tuple[str, str] | None] = []  # lane -> (ns, checkpoint id) at its tip
    lane_of: dict[tuple[str, str], int] = {}
    for point in reversed(points):
        key, parent = (point.ns, point.checkpoint_id), (point.ns, point.parent_id or "")
        lane = lane_of.get(parent)
        if lane is not None and tips[lane] == parent:
            pass  # the parent's first child carries its lane on
        else:
            if lane is not None:
                point.forks_from = point.parent_id
            lane = next((i for i, tip in enumerate(tips) if tip is None), len(tips))
            if lane == len(tips):
                tips.append(None)
        tips[lane] = key
        lane_of[key] = lane
        point.lane = lane


def _branch_kind(first: Point) -> str:
    """What started a branch, from its oldest point."""
    if first.run is not None and first.run.kind == "replay":
        return "replay"
    if first.source == "update":
        return "fork: state edited" if first.edited_by else "state update"
    if first.source == "fork":
        return "fork"
    return "branch"


def _add_rails(points: list[Point]) -> None:
    """The branch graph beside each row, the way git clients draw history:
    a vertical line per lane from its newest point down to where it forked,
    joined there to the point it branched from. Each rail is a line in one
    lane: from the row's top or its dot, to its dot or its bottom; a `join`
    rail runs across from the row's dot to the lane of a branch that forked
    from it."""
    row_of = {(p.ns, p.checkpoint_id): i for i, p in enumerate(points)}
    top: dict[int, int] = {}
    bottom: dict[int, int] = {}
    oldest: dict[int, Point] = {}
    for i, p in enumerate(points):
        top.setdefault(p.lane, i)
        oldest[p.lane] = p
        parent_row = row_of.get((p.ns, p.parent_id or ""))
        if p.forks_from and parent_row is not None:
            bottom[p.lane] = parent_row
        elif p.parent_id and parent_row is None:
            bottom[p.lane] = len(points)  # continues on an older page
        else:
            bottom[p.lane] = max(bottom.get(p.lane, i), i)
    for lane, first in oldest.items():
        if first.forks_from:
            points[top[lane]].branch = _branch_kind(first)
    for i, p in enumerate(points):
        rails: list[dict[str, Any]] = []
        for lane in sorted(top):
            if not top[lane] <= i <= bottom[lane]:
                continue
            x = lane * LANE_WIDTH
            if lane == p.lane:
                if i > top[lane]:
                    rails.append(
                        {"lane": lane, "x": x, "part": "above", "color": lane % LANE_COLORS}
                    )
                if i < bottom[lane]:
                    rails.append(
                        {"lane": lane, "x": x, "part": "below", "color": lane % LANE_COLORS}
                    )
            elif i == bottom[lane]:
                # The branch forked from this row's point: its line comes down
                # to the dot's height and turns towards it.
                rails.append({"lane": lane, "x": x, "part": "above", "color": lane % LANE_COLORS})
                left, right = sorted((x, p.lane * LANE_WIDTH))
                rails.append(
                    {
                        "lane": lane,
                        "x": left,
                        "width": right - left,
                        "part": "join",
                        "color": lane % LANE_COLORS,
                    }
                )
            else:
                rails.append({"lane": lane, "x": x, "part": "through", "color": lane % LANE_COLORS})
        p.rails = rails
