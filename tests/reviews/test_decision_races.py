"""Two reviewers deciding at the same moment: one decision, one resume."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from graphs.models import Run
from reviews.actions import ActionRefused
from reviews.actions import tasks as task_actions
from reviews.models import AuditEvent, ReviewTask
from tests.reviews.conftest import pending, start

REFUND = {"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]}
FLIGHT = {"messages": [{"role": "user", "content": "Book me a flight to Oslo for 2 people"}]}


def race(*attempts) -> list[object]:
    barrier = threading.Barrier(len(attempts))
    results: list[object] = [None] * len(attempts)

    def attempt(index: int, call) -> None:
        barrier.wait()
        try:
            results[index] = call()
        except Exception as exc:
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt, args=(i, a)) for i, a in enumerate(attempts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_same_task_two_reviewers_exactly_one_wins(rita, sam):
    for _ in range(5):
        thread = start("support", REFUND)
        (task,) = pending(thread)
        results = race(
            lambda t=task: task_actions.decide([t], {t.pk: {"type": "accept"}}, user=rita),
            lambda t=task: task_actions.decide(
                [t], {t.pk: {"type": "response", "message": "no"}}, user=sam
            ),
        )
        runs = [r for r in results if isinstance(r, Run)]
        refusals = [r for r in results if isinstance(r, ActionRefused)]
        assert len(runs) == 1 and len(refusals) == 1, results
        assert "Already decided by" in str(refusals[0])
        assert Run.objects.filter(thread_id=thread, kind=Run.Kind.RESUME).count() == 1
        assert AuditEvent.objects.filter(task_id=task.pk).count() == 1


def test_last_two_interrupts_decided_at_once_resume_exactly_once(rita, sam):
    """Two interrupts pending at one checkpoint, each decided by someone else
    at the same moment: the thread's lock lets only the last one queue the
    resume, with both values."""
    thread = start("support", REFUND)
    (task,) = pending(thread)
    # A second request at the same checkpoint (another interrupt pending at once).
    twin = ReviewTask.objects.create(
        thread_id=thread,
        graph_name="support",
        checkpoint_id=task.checkpoint_id,
        interrupt_id="other-interrupt",
        shape="json",
        kind="other",
    )
    results = race(
        lambda: task_actions.decide([task], {task.pk: {"type": "accept"}}, user=rita),
        lambda: task_actions.decide([twin], {twin.pk: {"type": "answer", "value": 1}}, user=sam),
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    (resume,) = Run.objects.filter(thread_id=thread, kind=Run.Kind.RESUME)
    assert resume.payload == {
        "by_interrupt_id": {
            task.interrupt_id: [{"type": "accept", "args": None}],
            "other-interrupt": 1,
        }
    }


def test_late_decision_names_who_decided_first_even_while_the_resume_runs(rita, sam):
    thread = start("support", REFUND)
    (task,) = pending(thread)  # both reviewers loaded the page while it was pending
    task_actions.decide([task], {task.pk: {"type": "accept"}}, user=rita)
    with pytest.raises(ActionRefused, match="Already decided by rita at"):
        task_actions.decide([task], {task.pk: {"type": "response", "message": "no"}}, user=sam)


def decided_by_rita_after_reading(monkeypatch, module: str, rita) -> None:
    """Rita's decision commits just after the route has read the task, before
    it lists the task's open calls: the moment two reviewers submit at once."""
    import importlib

    route = importlib.import_module(module)
    read = route.task_for

    def read_then_rita_decides(user, pk, *args):
        task = read(user, pk, *args)
        fresh = ReviewTask.objects.get(pk=pk)
        task_actions.decide([fresh], {fresh.pk: {"type": "accept"}}, user=rita)
        return task

    monkeypatch.setattr(route, "task_for", read_then_rita_decides)


def test_page_names_who_decided_between_reading_the_task_and_deciding(monkeypatch, rita, as_sam):
    (task,) = pending(start("support", REFUND))
    decided_by_rita_after_reading(monkeypatch, "reviews.views", rita)
    response = as_sam.post(f"/tasks/{task.pk}/decide/", {f"t{task.pk}-type": "ignore"})
    assert response.status_code == 409
    assert "Already decided by rita at" in response.content.decode()


def test_api_names_who_decided_between_reading_the_task_and_deciding(monkeypatch, rita, sam):
    from reviews.models import ApiToken
    from tests.reviews.test_api import Api

    (task,) = pending(start("support", REFUND))
    decided_by_rita_after_reading(monkeypatch, "reviews.api", rita)
    api = Api(ApiToken.issue(sam, "tests")[1])
    response = api.post(f"/tasks/{task.pk}/decision", {"decisions": {task.pk: {"type": "ignore"}}})
    assert response.status_code == 409
    assert "Already decided by rita at" in response.json()["detail"]
