"""Where the reviews side listens to the graphs side."""

from __future__ import annotations

from functools import partial

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from graphs.models import Run
from graphs.signals import run_finished, run_interrupted
from reviews import live
from reviews.emit import emit
from reviews.models import ReviewRule, ReviewTask, current_rules


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
    rules = current_rules()
    moves: dict[int | None, list[int]] = {}
    for task in ReviewTask.objects.pending().only(
        "pk", "graph_name", "tool_name", "args", "guards", "rule"
    ):
        rule = ReviewRule.for_task(task, rules)
        if task.rule_id != (rule.pk if rule else None):
            moves.setdefault(rule.pk if rule else None, []).append(task.pk)
    for rule_id, ids in moves.items():
        ReviewTask.objects.filter(pk__in=ids).update(rule_id=rule_id)


User = get_user_model()


@receiver(user_logged_out, dispatch_uid="reviews.close_live_pages")
def close_live_pages(sender, request, user, **kwargs) -> None:
    """A session that ends takes its open pages' live updates with it."""
    key = getattr(getattr(request, "session", None), "session_key", None)
    if key:
        live.rights_changed(users=[], sessions=[live.session_tag(key)])


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="reviews.groups_changed")
def groups_changed(sender, instance, action: str, reverse: bool, pk_set, **kwargs) -> None:
    """A user joined or left a group: their open pages follow their rights."""
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    # From the group's side (group.user_set), pk_set names the users; None
    # when cleared: every page then reads its rights again.
    users = (list(pk_set) if pk_set is not None else None) if reverse else [instance.pk]
    transaction.on_commit(partial(live.rights_changed, users=users))


@receiver(post_save, sender=User, dispatch_uid="reviews.user_changed")
def user_changed(sender, instance, created: bool, update_fields=None, **kwargs) -> None:
    """Deactivated, made superuser or not, a new password: open pages of the
    user read their rights (and session) again. Signing in changes nothing."""
    if created or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return
    transaction.on_commit(partial(live.rights_changed, users=[instance.pk]))
