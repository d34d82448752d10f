"""Quorum: a rule can ask for M approvals from distinct eligible reviewers."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.test import override_settings
from django.urls import reverse

from graphs.models import Run
from reviews.actions import ActionRefused
from reviews.actions import tasks as task_actions
from reviews.graph_state import read_state
from reviews.models import AuditEvent, ReviewRule, ReviewTask
from tests.reviews.conftest import finish, pending, reviewed_by, start
from tests.reviews.rows import stopped
from tests.reviews.test_decision_races import race

AGENTS = Path(__file__).resolve().parents[1] / "graphs" / "agents" / "langgraph.json"
REFUND = {"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]}


@pytest.fixture
def two_of_finance(rita, sam):
    return reviewed_by(
        "finance",
        (rita, sam),
        name="refunds need two",
        graph_name="support",
        tool_name="refund",
        required_approvals=2,
    )


def test_two_distinct_approvals_resume_once(two_of_finance, as_rita, as_sam, rita, sam):
    (task,) = pending(stopped("support", REFUND))
    assert task.rule == two_of_finance
    response = as_rita.post(
        reverse("decide", args=[task.pk]), {f"t{task.pk}-type": "accept"}, follow=True
    )
    assert "Your approval is recorded (1 of 2)" in response.content.decode()
    assert ReviewTask.objects.get(pk=task.pk).status == "pending"
    assert not Run.objects.filter(kind=Run.Kind.RESUME).exists()

    again = as_rita.post(reverse("decide", args=[task.pk]), {f"t{task.pk}-type": "accept"})
    assert again.status_code == 409 and "You already approved this" in again.content.decode()
    page = as_sam.get(reverse("task", args=[task.pk])).content.decode()
    assert "approved so far by rita" in page

    different = as_sam.post(
        reverse("decide", args=[task.pk]),
        {
            f"t{task.pk}-type": "edit",
            f"t{task.pk}-name": "refund",
            f"t{task.pk}-args": '{"order_id": "A-1001", "amount": 10}',
        },
    )
    assert (
        different.status_code == 409
        and "rita approved a different version" in different.content.decode()
    )
    done = as_sam.post(
        reverse("decide", args=[task.pk]), {f"t{task.pk}-type": "accept"}, follow=True
    )
    assert "resumes the graph" in done.content.decode()
    task.refresh_from_db()
    assert (task.status, task.decided_by, task.decision) == ("decided", sam, {"type": "accept"})
    assert Run.objects.filter(kind=Run.Kind.RESUME).count() == 1
    trail = list(AuditEvent.objects.filter(task_id=task.pk).values_list("action", "actor_name"))
    assert trail == [("task.approved", "rita"), ("task.approved", "sam"), ("task.decided", "sam")]


def test_any_rejection_rejects(two_of_finance, rita, sam):
    (task,) = pending(stopped("support", REFUND))
    task_actions.decide([task], {task.pk: {"type": "accept"}}, user=rita)
    run = task_actions.decide(
        [task], {task.pk: {"type": "response", "message": "Not this one."}}, user=sam
    )
    assert run is not None and run.payload == {
        "by_interrupt_id": {task.interrupt_id: [{"type": "response", "args": "Not this one."}]}
    }
    assert ReviewTask.objects.get(pk=task.pk).decided_by == sam


def test_an_approval_counts_while_its_reviewer_may_still_give_it(two_of_finance, rita, sam):
    from django.contrib.auth import get_user_model

    tom = get_user_model().objects.create_user("tom", password="pw-tom-123")
    finance = Group.objects.get(name="finance")
    tom.groups.add(finance)
    (task,) = pending(stopped("support", REFUND))
    assert task_actions.decide([task], {task.pk: {"type": "accept"}}, user=rita) is None
    rita.groups.remove(finance)  # rita's approval no longer counts
    assert task_actions.decide([task], {task.pk: {"type": "accept"}}, user=sam) is None
    assert ReviewTask.objects.get(pk=task.pk).status == "pending"
    sam.is_active = False
    sam.save()  # nor sam's, once deactivated
    assert task_actions.decide([task], {task.pk: {"type": "accept"}}, user=tom) is None
    uma = get_user_model().objects.create_user("uma", password="pw-uma-123")
    uma.groups.add(finance)
    assert task_actions.decide([task], {task.pk: {"type": "accept"}}, user=uma) is not None


def test_pages_count_only_approvals_that_still_count(two_of_finance, as_sam, rita):
    """The task page and the queue say how many approvals count towards the
    quorum, as the decision does: one whose reviewer lost the right is shown
    as no longer counting."""
    (task,) = pending(stopped("support", REFUND))
    task_actions.decide([task], {task.pk: {"type": "accept"}}, user=rita)
    page = as_sam.get(reverse("task", args=[task.pk])).content.decode()
    queue = as_sam.get(reverse("queue")).content.decode()
    assert "1 of 2 approvals" in page and "1 of 2 approvals" in queue
    assert "no longer counts" not in page

    rita.groups.remove(Group.objects.get(name="finance"))
    page = as_sam.get(reverse("task", args=[task.pk])).content.decode()
    queue = as_sam.get(reverse("queue")).content.decode()
    assert "0 of 2 approvals" in page and "approved so far by" not in page
    assert "no longer counts: rita may no longer approve this call" in page
    assert "0 of 2 approvals" in queue and "1 of 2" not in queue


def test_two_approvals_at_once_make_the_quorum_once(two_of_finance, rita, sam):
    for _ in range(3):
        (task,) = pending(stopped("support", REFUND))
        results = race(
            lambda t=task: task_actions.decide([t], {t.pk: {"type": "accept"}}, user=rita),
            lambda t=task: task_actions.decide([t], {t.pk: {"type": "accept"}}, user=sam),
        )
        assert not [r for r in results if isinstance(r, Exception)], results
        assert sum(isinstance(r, Run) for r in results) == 1
        assert ReviewTask.objects.get(pk=task.pk).status == "decided"
        assert task.approvals.count() == 2


def test_bulk_reports_quorum_tasks(two_of_finance, as_rita):
    (task,) = pending(stopped("support", REFUND))
    html = as_rita.post(
        reverse("bulk_decide"), {"action": "approve", "tasks": [task.pk]}, follow=True
    ).content.decode()
    assert f"Not decided, task {task.pk}: Your approval is recorded (1 of 2)" in html
    with pytest.raises(ActionRefused, match="You already approved"):
        task_actions.decide(
            [task],
            {task.pk: {"type": "accept"}},
            user=ReviewTask.objects.get(pk=task.pk).approvals.get().reviewer,
        )


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_a_breakpoint_before_a_tools_node_asks_its_calls_under_their_rules(
    two_of_finance, as_rita, rita, sam
):
    """LangGraph's classic review (interrupt_before the tools node): continuing
    runs the model's calls, so each is asked under its tool's rule, quorum
    and reviewers included."""
    from django.contrib.auth import get_user_model

    two_of_finance.graph_name = "classic"
    two_of_finance.save()
    thread = start("classic", {"messages": [{"role": "user", "content": "Refund me $9999"}]})
    (task,) = pending(thread)
    assert (task.shape, task.node, task.tool_name, task.args) == (
        "breakpoint",
        "tools",
        "refund",
        {"order_id": "A-1", "amount": 9999.0},
    )
    assert task.rule == two_of_finance
    mallory = get_user_model().objects.create_user("mallory", password="pw-mallory-123")
    with pytest.raises(PermissionDenied):
        task_actions.decide([task], {task.pk: {"type": "continue"}}, user=mallory)
    assert task_actions.decide([task], {task.pk: {"type": "continue"}}, user=rita) is None
    assert not Run.objects.filter(kind=Run.Kind.CONTINUE).exists()  # one of two
    page = as_rita.get(reverse("task", args=[task.pk])).content.decode()
    assert "stopped before <code>tools</code>" in page and "9999" in page
    assert 'rita approved <span class="version">the call as proposed</span>' in page
    run = task_actions.decide([task], {task.pk: {"type": "continue"}}, user=sam)
    assert run is not None and run.kind == Run.Kind.CONTINUE
    finish()
    assert "Refunded 9999.00" in str(read_state(Run.objects.get(pk=run.pk).thread).values)


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_a_runs_own_breakpoints_never_take_the_graphs_away(two_of_finance):
    """LangGraph lets a run's interrupt_before replace the compiled list:
    here the compiled breakpoint before the tools node stays."""
    refund = {"messages": [{"role": "user", "content": "Refund me $9999"}]}
    (task,) = pending(start("classic", refund, interrupt_before=["nope"]))
    assert (task.shape, task.node, task.tool_name) == ("breakpoint", "tools", "refund")
    (first,) = pending(start("classic", refund, interrupt_before=["*"]))  # "*" as a list
    assert (first.shape, first.node, first.tool_name) == ("breakpoint", "agent", "")


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
@pytest.mark.parametrize(
    ("graph", "namespace"),
    [
        ("subclassic", "worker:"),  # the classic agent as a subgraph, at its own breakpoint
        ("sendplan", ""),  # a planner hands the call to the tools node with a Send
    ],
)
def test_calls_a_breakpoint_lets_run_are_asked_under_their_rules_wherever_they_wait(
    two_of_finance, graph, namespace
):
    two_of_finance.graph_name = graph
    two_of_finance.save()
    refund = {"messages": [{"role": "user", "content": "Refund me $9999"}]}
    (task,) = pending(start(graph, refund))
    assert (task.shape, task.node, task.tool_name, task.rule) == (
        "breakpoint",
        "tools",
        "refund",
        two_of_finance,
    )
    assert task.namespace.startswith(namespace)


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_each_subagent_stopped_at_a_breakpoint_asks_its_calls_under_their_rules(
    two_of_finance, rita, sam
):
    """Subagents sent in parallel each stop before their tools in one step:
    continuing runs every one's calls, so every one's are asked."""
    from django.contrib.auth import get_user_model

    two_of_finance.graph_name = "fanout"
    two_of_finance.save()
    thread = start("fanout", {"messages": [{"role": "user", "content": "Refund $5; Refund $9999"}]})
    tasks = pending(thread)
    assert sorted((t.shape, t.tool_name, t.args["amount"], t.rule_id) for t in tasks) == [
        ("breakpoint", "refund", 5.0, two_of_finance.pk),
        ("breakpoint", "refund", 9999.0, two_of_finance.pk),
    ]
    assert len({t.namespace for t in tasks}) == 2  # each in its own subgraph
    mallory = get_user_model().objects.create_user("mallory", password="pw-mallory-123")
    for task in tasks:
        with pytest.raises(PermissionDenied):
            task_actions.decide([task], {task.pk: {"type": "continue"}}, user=mallory)
    continuing = {t.pk: {"type": "continue"} for t in tasks}
    assert task_actions.decide(tasks, continuing, user=rita) is None
    run = task_actions.decide(tasks, continuing, user=sam)
    assert run is not None and run.kind == Run.Kind.CONTINUE
    finish()
    values = str(read_state(Run.objects.get(pk=run.pk).thread).values)
    assert "Refunded 5.00" in values and "Refunded 9999.00" in values


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_a_breakpoint_beside_a_pending_interrupt_is_asked_too(two_of_finance, rita, sam):
    """An interrupt() in one branch and a subagent stopped at its breakpoint
    in another: answering the interrupt would let the subagent go on, so its
    call is asked beside the question, and the answer waits for it."""
    from django.contrib.auth import get_user_model

    two_of_finance.graph_name = "mixed"
    two_of_finance.save()
    thread = start("mixed", {"messages": [{"role": "user", "content": "Refund me $9999"}]})
    question, call = sorted(pending(thread), key=lambda t: t.shape == "breakpoint")
    assert (call.shape, call.tool_name, call.args["amount"]) == ("breakpoint", "refund", 9999.0)
    assert call.rule == two_of_finance and question.rule is None
    mallory = get_user_model().objects.create_user("mallory", password="pw-mallory-123")
    answer = {"type": "answer", "value": "yes"}
    assert task_actions.decide([question], {question.pk: answer}, user=mallory) is None
    assert finish() == 0  # the refund still waits for finance
    with pytest.raises(PermissionDenied):
        task_actions.decide([call], {call.pk: {"type": "continue"}}, user=mallory)
    assert task_actions.decide([call], {call.pk: {"type": "continue"}}, user=rita) is None
    run = task_actions.decide([call], {call.pk: {"type": "continue"}}, user=sam)
    assert run is not None and run.kind == Run.Kind.RESUME
    assert run.payload == {"by_interrupt_id": {question.interrupt_id: "yes"}}
    finish()
    values = str(read_state(Run.objects.get(pk=run.pk).thread).values)
    assert "Survey: yes" in values and "Refunded 9999.00" in values


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_a_continue_asked_before_a_stop_never_passes_it(two_of_finance, rita, sam):
    """A continue queued behind a run that then stops at a breakpoint was
    asked where the thread stood before: it is refused when it comes to run,
    and the stop's calls wait for their reviewers."""
    from django.contrib.auth import get_user_model

    from reviews.actions import runs as run_actions

    two_of_finance.graph_name = "classic"
    two_of_finance.save()
    thread = start("classic", {"messages": [{"role": "user", "content": "Refund me $1"}]})
    (small,) = pending(thread)
    for person in (rita, sam):
        task_actions.decide([small], {small.pk: {"type": "continue"}}, user=person)
    finish()  # the first turn ends

    Run.enqueue(
        graph_name="classic",
        kind=Run.Kind.START,
        thread_id=thread,
        payload={"messages": [{"role": "user", "content": "Refund me $9999"}]},
    )
    mallory = get_user_model().objects.create_user("mallory", password="pw-mallory-123")
    behind = run_actions.start(
        "classic", None, user=mallory, thread_id=thread, kind=Run.Kind.CONTINUE
    )
    finish()
    behind.refresh_from_db()
    assert behind.status == Run.Status.FAILED and "moved on" in behind.error
    (big,) = pending(thread)
    assert (big.tool_name, big.args["amount"], big.rule) == ("refund", 9999.0, two_of_finance)
    assert "Refunded 9999" not in str(read_state(behind.thread).values)


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_a_runs_config_never_builds_a_factorys_breakpoints_away(two_of_finance):
    """A factory built from a run's config keeps the breakpoints of the
    deployer's own build, whatever that config makes of it."""
    two_of_finance.graph_name = "classic_factory"
    two_of_finance.save()
    refund = {"messages": [{"role": "user", "content": "Refund me $9999"}]}
    fast = {"configurable": {"fast": True}}
    (task,) = pending(start("classic_factory", refund, config=fast))
    assert (task.shape, task.node, task.tool_name, task.rule) == (
        "breakpoint",
        "tools",
        "refund",
        two_of_finance,
    )


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_only_a_graphs_administrators_shape_a_factory_with_config(two_of_finance, rita):
    """A factory's config may leave out a node that asks for review (one
    LangGraph's breakpoints can't put back): setting it is administering."""
    from reviews.actions import runs as run_actions

    refund = {"messages": [{"role": "user", "content": "Refund me $9999"}]}
    fast = {"configurable": {"fast": True}}
    with pytest.raises(PermissionDenied, match="administer classic_factory"):
        run_actions.start("classic_factory", refund, user=rita, config=fast)
    # LangGraph's own keys shape nothing (they are dropped), nor does a graph built once.
    own = {"configurable": {"thread_id": "t"}}
    assert run_actions.start("classic_factory", refund, user=rita, config=own)
    assert run_actions.start("classic", refund, user=rita, config=fast)
    # The graph's own rule names rita's group to administer it.
    graph_rule = ReviewRule.objects.create(name="factory", graph_name="classic_factory")
    graph_rule.admin_groups.add(Group.objects.get(name="finance"))
    rita = type(rita).objects.get(pk=rita.pk)  # rights are read once per user object
    assert run_actions.start("classic_factory", refund, user=rita, config=fast)


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_a_continue_is_judged_on_the_calls_it_lets_run(two_of_finance, rita):
    """A stop no task asks yet (its run reached it a moment ago, or was
    cancelled there) is no way past its calls' review: a continue from it
    is judged as approving each call alone."""
    from django.contrib.auth import get_user_model

    from reviews.actions import runs as run_actions

    two_of_finance.graph_name = "classic"
    two_of_finance.save()
    thread = start("classic", {"messages": [{"role": "user", "content": "Refund me $9999"}]})
    ReviewTask.objects.filter(thread_id=thread).delete()  # the stop, not yet asked
    mallory = get_user_model().objects.create_user("mallory", password="pw-mallory-123")
    for person, why in ((mallory, "you may not approve it"), (rita, "2")):
        with pytest.raises(PermissionDenied, match=why):
            run_actions.start(
                "classic", None, user=person, thread_id=thread, kind=Run.Kind.CONTINUE
            )
    assert not Run.objects.filter(kind=Run.Kind.CONTINUE).exists()


def _stopped_by_a_failure(graph: str) -> str:
    """A thread whose run failed just past the model's call (its recursion
    limit): it stands before the tools node, and no task asks the call."""
    refund = {"messages": [{"role": "user", "content": "Refund me $9999"}]}
    run = Run.enqueue(
        graph_name=graph, kind=Run.Kind.START, payload=refund, config={"recursion_limit": 1}
    )
    finish()
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED and "Recursion" in run.error
    assert not pending(run.thread_id)
    return run.thread_id


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
@pytest.mark.parametrize("graph", ["classic", "subclassic"])
def test_no_way_of_going_on_passes_the_calls_a_failed_run_left(two_of_finance, rita, graph):
    """A retry, a continue, or a state edit that continues, from where a run
    failed before its stop was asked, is judged on the calls it lets run."""
    from django.contrib.auth import get_user_model

    from graphs.models import Thread
    from reviews.actions import runs as run_actions
    from reviews.actions import state as state_actions
    from reviews.state_editor import StateEdit

    two_of_finance.graph_name = graph
    two_of_finance.save()
    thread = Thread.objects.get(pk=_stopped_by_a_failure(graph))
    failed = thread.runs.get()
    mallory = get_user_model().objects.create_user("mallory", password="pw-mallory-123")
    for person, why in ((mallory, "you may not approve it"), (rita, "2")):
        with pytest.raises(PermissionDenied, match=why):
            run_actions.retry(failed, user=person)
        with pytest.raises(PermissionDenied, match=why):
            run_actions.start(graph, None, user=person, thread_id=thread.pk, kind=Run.Kind.CONTINUE)
        edit = StateEdit.open(thread, {})
        edit.bind_values(None, continue_run=True, base_checkpoint=thread.latest_checkpoint_id())
        assert edit.is_valid()
        with pytest.raises(PermissionDenied, match=why):
            state_actions.edit(edit, user=person)
    assert thread.runs.count() == 1


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_a_continue_asked_before_a_subgraph_stopped_never_passes_it(two_of_finance):
    """A subgraph that stops writes checkpoints in its own namespace only:
    a continue asked before it stopped is refused all the same."""
    from graphs.models import Thread

    two_of_finance.graph_name = "subclassic"
    two_of_finance.save()
    thread = start("subclassic", {"messages": [{"role": "user", "content": "Refund me $9999"}]})
    (task,) = pending(thread)
    root = Thread(pk=thread).latest_checkpoint_id()
    assert Thread(pk=thread).newest_checkpoint_id() > root  # the subgraph's stop
    asked_before = Run.enqueue(
        graph_name="subclassic", kind=Run.Kind.CONTINUE, thread_id=thread, checkpoint_id=root
    )
    finish()
    asked_before.refresh_from_db()
    assert asked_before.status == Run.Status.FAILED and "moved on" in asked_before.error
    assert pending(thread) == [task]


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_an_answer_to_one_question_never_answers_the_next(two_of_finance, rita):
    """A node that asks for each call of a turn in turn (the support example's
    tools node) stops again at the same checkpoint once the first is
    answered. That answer is given by interrupt id, so no later run there
    hands it to the refund's question; and going on without an answer is
    refused, before the node asks again or after."""
    from graphs.models import Thread
    from reviews.actions import runs as run_actions
    from reviews.actions import state as state_actions
    from reviews.state_editor import StateEdit

    two_of_finance.graph_name = "two_asks"
    two_of_finance.save()
    thread = start("two_asks", {"messages": [{"role": "user", "content": "Refund me $2400"}]})
    (email,) = pending(thread)
    assert email.tool_name == "send_email"

    def go_on() -> Run:
        return run_actions.start(
            "two_asks", None, user=rita, thread_id=thread, kind=Run.Kind.CONTINUE
        )

    def edit_nothing_and_go_on(on: str = thread) -> None:
        edit = StateEdit.open(Thread.objects.get(pk=on), {})
        latest = Thread(pk=on).latest_checkpoint_id()
        edit.bind_values(None, continue_run=True, base_checkpoint=latest)
        assert edit.is_valid()
        state_actions.edit(edit, user=rita)

    def replay_where_it_stands() -> None:
        at = Thread(pk=thread).latest_checkpoint_id()
        run_actions.replay(Thread.objects.get(pk=thread), at, user=rita)

    for way in (go_on, replay_where_it_stands):
        with pytest.raises(ActionRefused, match="waits for an answer"):
            way()
    with pytest.raises(PermissionDenied, match="asks 2 reviewers"):
        edit_nothing_and_go_on()  # judged on the refund first
    with pytest.raises(ActionRefused, match="waits for an answer"):
        edit_nothing_and_go_on(start("drafting", {"topic": "refunds"}))
    task_actions.decide([email], {email.pk: {"type": "accept"}}, user=rita)
    with pytest.raises(ActionRefused, match="waits for an answer"):
        go_on()  # asked while the resume is queued
    finish()
    (refund,) = pending(thread)
    assert (refund.tool_name, refund.args["amount"], refund.rule) == (
        "refund",
        2400.0,
        two_of_finance,
    )
    for way in (go_on, replay_where_it_stands):
        with pytest.raises(ActionRefused, match="waits for an answer"):
            way()
    # One that got past the request runs the node again: the refund is asked again.
    Run.enqueue(
        graph_name="two_asks",
        kind=Run.Kind.CONTINUE,
        thread_id=thread,
        checkpoint_id=Thread(pk=thread).newest_checkpoint_id(),
    )
    finish()
    state = read_state(Thread.objects.get(pk=thread))
    assert list(state.next) == ["tools"] and "Refunded" not in str(state.values)
    assert [(t.tool_name, t.args["amount"]) for t in pending(thread)] == [("refund", 2400.0)]


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_a_resume_run_again_never_answers_the_next_question(two_of_finance, rita):
    """A resume attempt cut short once the node asked its next question (a
    lost worker, a cancel that came late) runs again: the answer its first
    attempt gave is not sent again, since LangGraph would hand it to that
    next question."""
    from graphs.models import Thread

    two_of_finance.graph_name = "two_asks"
    two_of_finance.save()
    thread = start("two_asks", {"messages": [{"role": "user", "content": "Refund me $2400"}]})
    (email,) = pending(thread)
    resume = task_actions.decide([email], {email.pk: {"type": "accept"}}, user=rita)
    finish()
    # As if its worker was lost after the refund was asked, before the stop
    # was recorded: the run goes back to the queue, nothing asks the refund.
    ReviewTask.objects.filter(thread_id=thread, tool_name="refund").delete()
    Run.objects.filter(pk=resume.pk).update(status=Run.Status.QUEUED, worker_id="")
    finish()
    state = read_state(Thread.objects.get(pk=thread))
    assert list(state.next) == ["tools"] and "Refunded" not in str(state.values)
    (refund,) = pending(thread)
    assert (refund.tool_name, refund.args["amount"], refund.rule) == (
        "refund",
        2400.0,
        two_of_finance,
    )


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_a_resume_cancelled_after_a_worker_took_it_keeps_its_decisions(two_of_finance, rita):
    """Only a resume that never ran gives its review back: one a worker took
    in the meantime may have acted on its answers already, whatever the
    canceller's page last said of it."""
    from datetime import timedelta

    from reviews.actions import runs as run_actions

    two_of_finance.graph_name = "two_asks"
    two_of_finance.save()
    thread = start("two_asks", {"messages": [{"role": "user", "content": "Refund me $2400"}]})
    (email,) = pending(thread)
    seen = task_actions.decide([email], {email.pk: {"type": "accept"}}, user=rita)
    assert seen.status == Run.Status.QUEUED
    assert Run.objects.claim_next("another-worker", timedelta(seconds=30)).pk == seen.pk
    run_actions.cancel(seen, user=rita)
    email.refresh_from_db()
    assert (email.status, email.decided_by) == (ReviewTask.Status.DECIDED, rita)
    assert AuditEvent.objects.get(action="run.cancelled").before == {"status": "running"}
