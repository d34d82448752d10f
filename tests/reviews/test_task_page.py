"""The task page and its decisions, through the test client, on real graphs."""

from __future__ import annotations

import json
import re
from pathlib import Path

from django.test import override_settings
from django.urls import reverse

from graphs.models import Run
from reviews.models import AuditEvent, ReviewTask
from tests.reviews.conftest import finish, pending, start
from tests.reviews.rows import stopped

AGENTS = Path(__file__).resolve().parents[1] / "graphs" / "agents" / "langgraph.json"
FLIGHT = {"messages": [{"role": "user", "content": "Book me a flight to Oslo for 2 people"}]}
REFUND = {"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]}


def tool_messages(thread_id: str) -> list[dict]:
    from graphs.models import Thread
    from reviews.graph_state import read_state

    values = read_state(Thread.objects.get(pk=thread_id)).values
    return [m for m in values["messages"] if m["type"] == "tool"]


def test_pages_need_a_signed_in_user(client, transactional_db):
    thread = stopped("support", REFUND)
    (task,) = pending(thread)
    for url in (
        reverse("queue"),
        reverse("task", args=[task.pk]),
        reverse("thread_state", args=[thread]),
    ):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    response = client.post(reverse("decide", args=[task.pk]), {f"t{task.pk}-type": "accept"})
    assert response.status_code == 302
    assert ReviewTask.objects.get(pk=task.pk).status == "pending"


def test_batched_turn_each_call_decided_edit_keeps_json_types(as_rita, rita):
    thread = start("tool_agent", FLIGHT)
    book, charge = pending(thread)
    page = as_rita.get(reverse("task", args=[book.pk])).content.decode()
    assert "Decide each of 2 calls of this turn" in page
    assert f'name="t{book.pk}-type" value="approve"' in page
    assert f'name="t{charge.pk}-args"' in page

    response = as_rita.post(
        reverse("decide", args=[book.pk]),
        {
            f"t{book.pk}-type": "approve",
            f"t{charge.pk}-type": "edit",
            f"t{charge.pk}-name": "charge_card",
            f"t{charge.pk}-args": '{"amount": 300, "currency": "NOK"}',
        },
        REMOTE_ADDR="10.1.2.3",
    )
    assert response.status_code == 302
    charge.refresh_from_db()
    assert charge.status == "decided" and charge.decided_by == rita
    assert charge.decision == {
        "type": "edit",
        "name": "charge_card",
        "args": {"amount": 300, "currency": "NOK"},
    }
    assert isinstance(charge.decision["args"]["amount"], int)  # a number stays a number
    (resume,) = Run.objects.filter(kind=Run.Kind.RESUME)
    assert resume.payload["by_interrupt_id"] == {
        charge.interrupt_id: {
            "decisions": [
                {"type": "approve"},
                {
                    "type": "edit",
                    "edited_action": {
                        "name": "charge_card",
                        "args": {"amount": 300, "currency": "NOK"},
                    },
                },
            ]
        }
    }
    audit = list(AuditEvent.objects.filter(action="task.decided").order_by("pk"))
    assert [(a.action, a.task_id, a.actor_name, a.client_address) for a in audit] == [
        ("task.decided", book.pk, "rita", "10.1.2.3"),
        ("task.decided", charge.pk, "rita", "10.1.2.3"),
    ]
    assert audit[1].before == {"tool": "charge_card", "args": {"amount": 360.0, "currency": "EUR"}}

    finish()
    executed = [m["content"] for m in tool_messages(thread)]
    assert "Booked 2 seat(s) on FL-204" in executed
    assert any(c.endswith("Charged 300.00 NOK") for c in executed)
    page = as_rita.get(reverse("task", args=[charge.pk])).content.decode()
    assert "Charged 300.00 NOK" in page  # proposed, decided and executed side by side
    assert "&quot;amount&quot;: 360.0" in page and "&quot;amount&quot;: 300" in page


def test_invalid_json_is_refused_and_changes_nothing(as_rita):
    thread = stopped("tool_agent", FLIGHT)
    book, charge = pending(thread)
    response = as_rita.post(
        reverse("decide", args=[book.pk]),
        {
            f"t{book.pk}-type": "approve",
            f"t{charge.pk}-type": "edit",
            f"t{charge.pk}-name": "charge_card",
            f"t{charge.pk}-args": '{"amount": 300,',
        },
    )
    assert response.status_code == 422
    assert "Arguments: Not valid JSON" in response.content.decode()
    assert "{&quot;amount&quot;: 300," in response.content.decode()  # what was typed stays
    assert [t.status for t in pending(thread)] == ["pending", "pending"]
    assert not Run.objects.filter(kind=Run.Kind.RESUME).exists()
    assert not AuditEvent.objects.exclude(action="interrupt.raised").exists()


def test_edit_checked_against_the_tools_argument_schema(as_rita):
    thread = stopped("tool_agent", FLIGHT)
    book, charge = pending(thread)
    response = as_rita.post(
        reverse("decide", args=[book.pk]),
        {
            f"t{book.pk}-type": "approve",
            f"t{charge.pk}-type": "edit",
            f"t{charge.pk}-name": "charge_card",
            f"t{charge.pk}-args": '{"amount": "a lot"}',
        },
    )
    assert response.status_code == 422
    assert "the arguments of charge_card at amount" in response.content.decode()
    assert len(pending(thread)) == 2


def test_reject_needs_a_message_and_the_model_reads_it(as_rita):
    thread = start("tool_agent", FLIGHT)
    book, charge = pending(thread)
    data = {f"t{book.pk}-type": "approve", f"t{charge.pk}-type": "reject"}
    response = as_rita.post(reverse("decide", args=[book.pk]), data)
    assert response.status_code == 422
    assert "Write the message the model will read." in response.content.decode()
    data[f"t{charge.pk}-message"] = "Use the company card instead."
    assert as_rita.post(reverse("decide", args=[book.pk]), data).status_code == 302
    finish()
    rejected = [m for m in tool_messages(thread) if m["name"] == "charge_card"]
    assert rejected and "Use the company card instead." in rejected[0]["content"]


def test_second_reviewer_is_told_who_decided_first(as_rita, as_sam):
    thread = stopped("support", REFUND)
    (task,) = pending(thread)
    assert (
        as_rita.post(reverse("decide", args=[task.pk]), {f"t{task.pk}-type": "accept"}).status_code
        == 302
    )
    response = as_sam.post(
        reverse("decide", args=[task.pk]),
        {f"t{task.pk}-type": "ignore"},
    )
    assert response.status_code == 409
    assert "Already decided by rita at" in response.content.decode()
    assert ReviewTask.objects.get(pk=task.pk).decision == {"type": "accept"}
    assert Run.objects.filter(kind=Run.Kind.RESUME).count() == 1


def test_decision_on_a_thread_that_moved_on_is_refused(as_rita):
    thread = stopped("support", REFUND)
    (task,) = pending(thread)
    # Another run moves the thread on (a state edit from another tab, say).
    from graphs.models import Thread
    from reviews.graph_state import config_for, graph_for

    thread_row = Thread.objects.get(pk=thread)
    graph_for(thread_row).update_state(config_for(thread_row), {"executed": []})
    response = as_rita.post(reverse("decide", args=[task.pk]), {f"t{task.pk}-type": "accept"})
    assert response.status_code == 409
    assert "The thread has moved on" in response.content.decode()
    assert ReviewTask.objects.get(pk=task.pk).status == "pending"


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_agent_text_is_escaped_and_json_answers_keep_their_type(as_rita):
    thread = start("echo", {"text": "<script>alert('x')</script> ok?"})
    (task,) = pending(thread)
    for url in (reverse("task", args=[task.pk]), reverse("queue")):
        html = as_rita.get(url).content.decode()
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; ok?" in html
        assert "<script>alert" not in html
    response = as_rita.post(
        reverse("decide", args=[task.pk]),
        {f"t{task.pk}-type": "answer", f"t{task.pk}-value": "yes"},
    )
    assert response.status_code == 422 and "Answer: Not valid JSON" in response.content.decode()
    response = as_rita.post(
        reverse("decide", args=[task.pk]),
        {f"t{task.pk}-type": "answer", f"t{task.pk}-value": '{"ok": true, "n": 2}'},
    )
    assert response.status_code == 302
    finish()
    from graphs.models import Thread
    from reviews.graph_state import read_state

    assert read_state(Thread.objects.get(pk=thread)).values["reply"] == {"ok": True, "n": 2}


def test_a_call_shows_the_characters_that_reorder_or_hide_text_as_escapes(as_rita):
    """A right-to-left override in an argument would show the text after it
    reversed (an amount of 2400 as "0042"): pages show such characters as
    JSON escapes, and the edit box's JSON still reads as the call."""
    (task,) = pending(stopped("support", REFUND))
    hidden = "order A-1\u202e, \u200bnote\u2066"
    args = {"order_id": hidden, "amount": 2400.0}
    ReviewTask.objects.filter(pk=task.pk).update(args=args)
    for url in (reverse("task", args=[task.pk]), reverse("queue")):
        html = as_rita.get(url).content.decode()
        assert not {"\u202e", "\u200b", "\u2066"} & set(html), url
        assert r"order A-1\u202e, \u200bnote\u2066" in html, url
    page = as_rita.get(reverse("task", args=[task.pk])).content.decode()
    (box,) = re.findall(r"<textarea[^>]*-args[^>]*>(.*?)</textarea>", page, re.S)
    assert json.loads(box.replace("&quot;", '"')) == args


def test_feedback_form_from_response_schema_gives_typed_values(as_rita):
    thread = start("drafting", {"topic": "launch"})
    (task,) = pending(thread)
    page = as_rita.get(reverse("task", args=[task.pk])).content.decode()
    assert f'name="t{task.pk}-f-max_words"' in page and 'type="number"' in page
    bad = as_rita.post(
        reverse("decide", args=[task.pk]),
        {f"t{task.pk}-type": "answer", f"t{task.pk}-f-max_words": "ten"},
    )
    assert (
        bad.status_code == 422 and "&#x27;ten&#x27; is not a whole number." in bad.content.decode()
    )
    good = as_rita.post(
        reverse("decide", args=[task.pk]),
        {
            f"t{task.pk}-type": "answer",
            f"t{task.pk}-f-approved": "on",
            f"t{task.pk}-f-tone": json.dumps("friendly"),
            f"t{task.pk}-f-max_words": "12",
        },
    )
    assert good.status_code == 302
    task.refresh_from_db()
    assert task.decision["value"] == {"approved": True, "tone": "friendly", "max_words": 12}
    finish()
    (breakpoint,) = pending(thread)
    assert breakpoint.kind == "breakpoint" and breakpoint.node == "publish"
    from reviews.graph_state import read_state

    assert read_state(task.thread).values["feedback"]["max_words"] == 12


def test_an_active_run_status_asks_again_until_it_ends(as_rita):
    thread = start("support", REFUND)
    (task,) = pending(thread)
    as_rita.post(reverse("decide", args=[task.pk]), {f"t{task.pk}-type": "accept"})
    resume = Run.objects.get(kind=Run.Kind.RESUME)
    page = as_rita.get(reverse("task", args=[task.pk])).content.decode()
    status_url = reverse("run_status", args=[resume.pk])
    assert f'hx-get="{status_url}" hx-trigger="load delay:2s"' in page  # queued: keeps asking
    finish()
    html = as_rita.get(status_url).content.decode()
    assert "Run" in html and "succeeded" in html and "hx-get" not in html  # ended: stops


def _proposed_block(html: str, task_pk: int) -> str:
    """The "the model proposes" card of one call's fieldset."""
    fieldset = html.split(f'id="decision-{task_pk}"', 1)[1]
    return fieldset.split('class="tool-card proposed"', 1)[1].split("</pre>", 1)[0]


def test_an_edit_left_in_the_editor_is_never_approved_as_proposed(as_rita):
    thread = stopped("support", REFUND)
    (refund,) = pending(thread)
    edited = {**refund.args, "amount": 12}
    response = as_rita.post(
        reverse("decide", args=[refund.pk]),
        {
            f"t{refund.pk}-type": "accept",
            f"t{refund.pk}-name": "refund",
            f"t{refund.pk}-args": json.dumps(edited),
        },
    )
    html = response.content.decode()
    assert response.status_code == 422
    assert "You changed the call but chose “Accept”" in html
    assert "choose “Edit, then run” to run your edit" in html
    assert "&quot;amount&quot;: 12" in html  # the edit is still in the editor
    assert ReviewTask.objects.get(pk=refund.pk).status == "pending"
    assert not Run.objects.filter(kind=Run.Kind.RESUME).exists()

    # The proposed call written another way is no change: accepted as proposed.
    same = json.dumps(dict(reversed(list(refund.args.items()))), indent=4)
    response = as_rita.post(
        reverse("decide", args=[refund.pk]),
        {f"t{refund.pk}-type": "accept", f"t{refund.pk}-args": same},
    )
    assert response.status_code == 302
    assert ReviewTask.objects.get(pk=refund.pk).decision == {"type": "accept"}


def test_after_a_refused_edit_the_proposed_block_shows_what_the_model_proposed(as_rita):
    thread = stopped("tool_agent", FLIGHT)
    book, charge = pending(thread)
    for typed in ('{"amount": 300,', '{"amount": "a lot"}'):
        response = as_rita.post(
            reverse("decide", args=[book.pk]),
            {
                f"t{book.pk}-type": "approve",
                f"t{charge.pk}-type": "edit",
                f"t{charge.pk}-name": "charge_card",
                f"t{charge.pk}-args": typed,
            },
        )
        html = response.content.decode()
        assert response.status_code == 422
        proposed = _proposed_block(html, charge.pk)
        assert "&quot;amount&quot;: 360.0" in proposed and "300" not in proposed
        assert "a lot" not in proposed


def test_the_outcome_asks_again_by_itself_only_while_a_run_is_active(as_rita):
    thread = start("tool_agent", FLIGHT)
    book, charge = pending(thread)
    as_rita.post(
        reverse("decide", args=[book.pk]),
        {f"t{book.pk}-type": "approve", f"t{charge.pk}-type": "approve"},
    )
    # The resume is queued: the run may end before the page is shown, its
    # events gone before the page listens, so the outcome asks again itself.
    outcome = as_rita.get(
        reverse("task", args=[book.pk]), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="task-outcome"
    ).content.decode()
    assert 'hx-trigger="thread-changed from:body delay:300ms, load delay:2s"' in outcome
    assert "no tool result yet" in outcome
    finish()
    outcome = as_rita.get(
        reverse("task", args=[book.pk]), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="task-outcome"
    ).content.decode()
    assert 'hx-trigger="thread-changed from:body delay:300ms"' in outcome
    assert "Charged 360.00 EUR" in outcome and "no tool result yet" not in outcome


def test_the_runs_since_the_task_and_an_active_one_past_the_newest_ten(as_rita):
    thread = stopped("support", REFUND)
    (task,) = pending(thread)

    def run(status: str) -> Run:
        return Run.objects.create(
            thread_id=thread, graph_name="support", kind=Run.Kind.RESUME, status=status
        )

    # Queued behind a dozen later runs: older than the thread's newest ten.
    queued = run(Run.Status.QUEUED)
    later = [run(Run.Status.SUCCEEDED) for _ in range(12)]

    def shown() -> tuple[list[str], str]:
        page = as_rita.get(reverse("task", args=[task.pk])).content.decode()
        outcome = page.split('id="task-outcome"', 1)[1].split(">", 1)[0]
        return re.findall(r'id="run-(\d+)-status"', page), outcome

    runs, outcome = shown()
    assert runs == [str(r.pk) for r in [queued, *later][:5]]  # oldest first, not the task's own
    assert "load delay:2s" in outcome  # a run has the thread: the outcome asks again
    Run.objects.filter(pk=queued.pk).update(status=Run.Status.SUCCEEDED)
    runs, outcome = shown()
    assert runs == [str(r.pk) for r in [queued, *later][:5]]
    assert "load delay:2s" not in outcome
