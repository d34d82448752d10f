"""The rows a run leaves where its graph stops, made without running it.

Most page tests only read or decide the review task a stopped run leaves;
driving the graph there through the worker costs each of them a run.
`stopped` writes the same rows: the graph runs once per process and input,
on LangGraph's in-memory saver, and each call replays what it saved (its
checkpoints and pending writes, as LangGraph made them) into a new thread
through our saver's `put` and `put_writes`; the run and its review tasks are
then recorded as the worker records a stop. The thread page, the state editor
and a resume read a real checkpoint. tests/reviews/test_rows.py holds these
rows to those the worker leaves.
"""

from __future__ import annotations

import copy
import functools
import json
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone
from langgraph.checkpoint.memory import InMemorySaver

from graphs.checkpoint import DjangoCheckpointSaver
from graphs.models import Run, Thread
from graphs.registry import get_registry
from graphs.serde import strict_serializer
from graphs.worker import LEASE, RUN_KEY, record_stop, run_config, runs_on_loop, stream_on_loop

WORKER = "test-worker"
# The fields of a run that change where its graph stops.
SHAPING = ("interrupt_before", "interrupt_after", "config", "context")


@dataclass(frozen=True)
class Recording:
    """What one run of a graph saved, in order, and where it stopped."""

    saved: tuple[tuple[str, tuple], ...]  # ("put" | "put_writes", arguments)
    stop: Any  # LangGraph's state snapshot at the stop


def _kept(config: dict[str, Any]) -> dict[str, Any]:
    """What a saver reads of a config (a subgraph's also holds LangGraph's
    runtime objects, under keys that start with "__")."""
    return {
        "configurable": {k: v for k, v in config["configurable"].items() if not k.startswith("__")},
        "metadata": {
            k: v
            for k, v in (config.get("metadata") or {}).items()
            if isinstance(v, str | int | float | bool)
        },
    }


class _Recorder(InMemorySaver):
    # Versions as our saver makes them, for the runs that continue a thread.
    get_next_version = DjangoCheckpointSaver.get_next_version

    def __init__(self) -> None:
        super().__init__(serde=strict_serializer())
        self.saved: list[tuple[str, tuple]] = []

    def put(self, config, checkpoint, metadata, new_versions):
        saved = copy.deepcopy((_kept(config), checkpoint, metadata, new_versions))
        self.saved.append(("put", saved))
        return super().put(config, checkpoint, metadata, new_versions)

    def put_writes(self, config, writes, task_id, task_path=""):
        saved = copy.deepcopy((_kept(config), writes, task_id, task_path))
        self.saved.append(("put_writes", saved))
        return super().put_writes(config, writes, task_id, task_path)


@functools.cache
def _recording(config_path: str, graph_name: str, asked: str) -> Recording:
    fields = json.loads(asked)
    run = Run(thread_id="recorded", graph_name=graph_name, **fields["run"])
    recorder = _Recorder()
    config = run_config(run)
    graph = get_registry().get(graph_name).compile(recorder, config=config)
    kwargs = {key: fields["run"][key] for key in SHAPING[:2] if fields["run"].get(key)}
    if fields["run"].get("context") is not None:
        kwargs["context"] = fields["run"]["context"]
    # As the worker streams a run (graphs.worker.execute).
    stream = functools.partial(stream_on_loop, graph) if runs_on_loop(graph) else graph.stream
    for _ in stream(
        fields["payload"],
        config,
        stream_mode=["updates", "checkpoints"],
        durability="sync",
        **kwargs,
    ):
        pass
    stop = graph.get_state({"configurable": {"thread_id": "recorded"}}, subgraphs=True)
    assert stop.next, f"{graph_name} ran to its end on {fields['payload']!r}: nothing to review"
    return Recording(saved=tuple(recorder.saved), stop=stop)


def stopped(graph_name: str, payload: Any, **fields: Any) -> str:
    """What `start(graph_name, payload, **fields)` leaves when the graph
    stops for review, without running it; returns the thread id."""
    shaping = {key: fields[key] for key in SHAPING if key in fields}
    asked = json.dumps({"payload": payload, "run": shaping}, sort_keys=True)
    recording = _recording(str(get_registry().config_path), graph_name, asked)
    now = timezone.now()
    with transaction.atomic():
        thread = Thread.objects.create(
            thread_id=str(uuid.uuid4()), graph_name=graph_name, title=fields.pop("title", "")
        )
        # Claimed, as a worker holds it while its graph runs.
        run = Run.objects.create(
            thread=thread,
            graph_name=graph_name,
            kind=Run.Kind.START,
            payload=payload,
            status=Run.Status.RUNNING,
            worker_id=WORKER,
            lease_expires_at=now + LEASE,
            started_at=now,
            attempts=1,
            **fields,
        )
    saver = DjangoCheckpointSaver()
    for method, arguments in recording.saved:
        # The saver only reads what it is given: the recording serves every call.
        config, *rest = arguments
        config = {**config, "configurable": {**config["configurable"], "thread_id": thread.pk}}
        if method == "put":
            checkpoint, metadata, new_versions = rest
            saver.put(config, checkpoint, {**metadata, RUN_KEY: run.pk}, new_versions)
        else:
            saver.put_writes(config, *rest)
    record_stop(run, WORKER, recording.stop, new_checkpoint=True)
    return thread.thread_id
