"""What people do to reviews, one module per noun: `tasks` (claim, release,
assign, decide, with its quorum and resume), `runs` (start, cancel, retry,
replay) and `state` (edit, fork). Each action checks, takes its lock, writes,
then calls `reviews.emit.emit` for its effects (audit, webhooks, live pages).
Pages, the JSON API, the Agent Server API, admin and the deadline sweep are
adapters over them. A refusal is raised as one of the two errors below."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from graphs.models import Thread


class ActionRefused(Exception):
    """An action refused as things stand: a decision someone else took first,
    a thread that moved on or has a run, a run that already stopped, a claim
    another holds. The message says which, for the person who asked."""

    status = 409

    @classmethod
    def while_running(cls, thread: Thread, action: str) -> None:
        """Refuse `action` ("decide", "replay"...) while a run has the thread:
        whatever it does would overlap the run's steps."""
        active = thread.active_run()
        if active is not None:
            raise cls(
                f"Run {active.pk} is {active.phase} on this thread; {action} once it has stopped."
            )


class ValuesRefused(ActionRefused):
    """Values the graph itself could not take (a message its reducer can't
    read): nothing was written."""

    status = 422


@dataclass
class DecisionsInvalid(Exception):
    """Decisions that don't fit their requests, by task id; nothing was written."""

    errors: dict[int, str]
