"""Where the reviews side listens to the graphs side."""

from __future__ import annotations

from functools import partial

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from graphs.models import Run
from graphs.signals import run_finished, run_interrupted
from reviews import live
from reviews.emit import emit
from reviews.models import ReviewRule, ReviewTask


@receiver(run_interrupted, dispatch_uid="reviews.create_tasks")
def create_tasks(
    sender, run, requests, checkpoint_id: str, new_checkpoint: bool = False, **kwargs
) -> None:
    """Runs inside the worker's transaction that marks the run interrupted."""
    stale = ReviewTask.objects.supersede(run.thread_id, keep_checkpoint=checkpoint_id)
    created = ReviewTask.objects.create_for(
        thread_id=run.thread_id,
        graph_name=run.graph_name,
        checkpoint_id=checkpoint_id,
        requests=requests,
        run=run,
        new_checkpoint=new_checkpoint,
    )
    if created:  # a run that stopped again where it had stopped asks nothing new
        emit(
            "interrupt.raised",
            tasks=created,
            removed=stale,
            checkpoint_id=checkpoint_id,
            run=run,
            after=[
                {"kind": r.kind, "tool": r.tool_name, "node": r.node, "args": r.args}
                for r in requests
            ],
        )
    elif stale:
        transaction.on_commit(partial(live.tasks_removed, stale))


@receiver(run_finished, dispatch_uid="reviews.reopen_refused")
def reopen_refused(sender, run, status: str, answer_refused: bool = False, **kwargs) -> None:
    """The graph raised on the decisions a resume gave it, before taking a
    step: the review opens again, showing what it raised, to be decided anew."""
    if status != Run.Status.FAILED or not answer_refused:
        return
    with transaction.atomic():
        reopened = ReviewTask.objects.reopen(run, refused_with=run.error)
        for task in reopened:
            emit("task.reopened", task=task, run=run, after={"refused_with": run.error})


@receiver(run_finished, dispatch_uid="reviews.supersede_on_finish")
def supersede_on_finish(sender, run, status: str, **kwargs) -> None:
    """A graph that ran to its end waits for nobody (a failed run still does)."""
    if status == Run.Status.SUCCEEDED:
        stale = ReviewTask.objects.supersede(run.thread_id)
        if stale:
            transaction.on_commit(partial(live.tasks_removed, stale))


@receiver([post_save, post_delete], sender=ReviewRule, dispatch_uid="reviews.rematch_rules")
def rematch_pending(sender, **kwargs) -> None:
    """Rules changed: pending tasks are governed by whatever matches now."""
    rules = list(ReviewRule.objects.all())
    moves: dict[int | None, list[int]] = {}
    for task in ReviewTask.objects.pending().only("pk", "graph_name", "tool_name", "args", "rule"):
        rule = ReviewRule.for_task(task, rules)
        if task.rule_id != (rule.pk if rule else None):
            moves.setdefault(rule.pk if rule else None, []).append(task.pk)
    for rule_id, ids in moves.items():
        ReviewTask.objects.filter(pk__in=ids).update(rule_id=rule_id)
