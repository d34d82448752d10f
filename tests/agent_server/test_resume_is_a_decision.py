"""A `command.resume` through /langgraph/ is a decision by the key's user on
the open review tasks of the thread's interrupt, under the same rules, quorum
and audit as a decision on the task's page; and a task decided on its page
resumes the graph exactly as the same resume through the API.

Rules made here name only the order ids of these tests (A-71xx), so the
shared server's other tests never fall under them."""

from __future__ import annotations

import uuid

import pytest
from langgraph_sdk import get_sync_client
from langgraph_sdk.errors import ConflictError, PermissionDeniedError

ACCEPT = [{"type": "accept", "args": None}]


def refund(order_id: str, amount: int = 1450) -> dict:
    return {
        "messages": [
            {"role": "user", "content": f"Please refund order {order_id}, ${amount}: it broke"}
        ]
    }


def rule(served, order_id: str, *, approvals: int = 1) -> tuple[str, str]:
    """A rule for refunds of this order: `<order>-reviewers` decide (and
    `<order>-viewers` may only look); returns the two group names."""
    reviewers, viewers = f"{order_id}-reviewers", f"{order_id}-viewers"
    served.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import Group\n"
        "from reviews.models import ReviewRule\n"
        f"rule = ReviewRule.objects.create(name='refunds of {order_id}', order=1,"
        " graph_name='support', tool_name='refund',"
        f" condition={{'properties': {{'order_id': {{'const': {order_id!r}}}}},"
        f" 'required': ['order_id']}}, required_approvals={approvals})\n"
        f"rule.review_groups.set([Group.objects.get_or_create(name={reviewers!r})[0]])\n"
        f"rule.view_groups.set([Group.objects.get_or_create(name={viewers!r})[0]])\n",
    )
    return reviewers, viewers


def client_for(served, username: str):
    return get_sync_client(url=served.api_url, api_key=served.key(username))


def asked(client, order_id: str) -> str:
    """A thread stopped at the refund of this order; returns its id."""
    thread_id = str(uuid.uuid4())
    output = client.runs.wait(thread_id, "support", input=refund(order_id), if_not_exists="create")
    assert output["__interrupt__"][0]["value"][0]["action_request"]["action"] == "refund"
    return thread_id


def tasks(served, thread_id: str) -> list[list]:
    return served.query(
        "from reviews.models import ReviewTask\n"
        f"result = [[t.status, t.decided_by.username if t.decided_by else None, t.decision,"
        " t.approvals.count()]"
        f" for t in ReviewTask.objects.filter(thread_id={thread_id!r}, tool_name='refund')]"
    )


def test_a_resume_decides_the_open_task_as_the_keys_user(served, sdk):
    reviewers, _ = rule(served, "A-7101")
    served.user("refunder-7101", groups=(reviewers,))
    thread_id = asked(sdk, "A-7101")
    client = client_for(served, "refunder-7101")
    output = client.runs.wait(thread_id, "support", command={"resume": ACCEPT})
    assert output["executed"][0]["result"] == "Refunded 1450.00 on order A-7101 (customer request)"
    assert tasks(served, thread_id) == [["decided", "refunder-7101", {"type": "accept"}, 0]]
    # Audited as a decision on the page, by the key's user; the resume run is theirs.
    trail = served.query(
        "from graphs.models import Run\n"
        "from reviews.models import AuditEvent\n"
        f"decided = AuditEvent.objects.get(thread_id={thread_id!r}, action='task.decided')\n"
        f"run = Run.objects.filter(thread_id={thread_id!r}).latest('pk')\n"
        "result = [decided.actor_name, decided.after, run.kind, run.requested_by.username,"
        " run.status]"
    )
    assert trail == ["refunder-7101", {"type": "accept"}, "resume", "refunder-7101", "succeeded"]
    assert client.runs.list(thread_id)[0]["kwargs"]["command"] == {"resume": ACCEPT}


def test_a_user_the_rules_do_not_let_decide_is_refused(served, sdk):
    _, viewers = rule(served, "A-7201")
    served.user("looker-7201", groups=(viewers,))
    thread_id = asked(sdk, "A-7201")
    with pytest.raises(PermissionDeniedError) as refused:
        client_for(served, "looker-7201").runs.create(
            thread_id, "support", command={"resume": ACCEPT}
        )
    assert "may not decide the refund call" in refused.value.response.json()["detail"]
    assert tasks(served, thread_id) == [["pending", None, None, 0]]
    assert len(sdk.runs.list(thread_id)) == 1  # no resume was queued


def test_a_quorum_waits_for_other_reviewers(served, sdk):
    reviewers, _ = rule(served, "A-7301", approvals=2)
    served.user("first-7301", groups=(reviewers,))
    served.user("second-7301", groups=(reviewers,))
    thread_id = asked(sdk, "A-7301")
    with pytest.raises(ConflictError) as waiting:
        client_for(served, "first-7301").runs.create(
            thread_id, "support", command={"resume": ACCEPT}
        )
    assert "2 reviewers" in waiting.value.response.json()["detail"]
    # The approval stands, audited, and counts towards the quorum.
    assert tasks(served, thread_id) == [["pending", None, None, 1]]
    with pytest.raises(ConflictError) as twice:
        client_for(served, "first-7301").runs.create(
            thread_id, "support", command={"resume": ACCEPT}
        )
    assert "already approved" in twice.value.response.json()["detail"]
    output = client_for(served, "second-7301").runs.wait(
        thread_id, "support", command={"resume": ACCEPT}
    )
    assert output["executed"][0]["tool"] == "refund"
    assert tasks(served, thread_id) == [["decided", "second-7301", {"type": "accept"}, 2]]
    approvals = served.query(
        "from reviews.models import AuditEvent\n"
        f"result = list(AuditEvent.objects.filter(thread_id={thread_id!r}, action='task.approved')"
        ".order_by('pk').values_list('actor_name', flat=True))"
    )
    assert approvals == ["first-7301", "second-7301"]


def test_a_page_decision_resumes_as_the_same_resume_through_the_api(served, sdk):
    edit = {
        "type": "edit",
        "args": {"action": "refund", "args": {"order_id": "A-7401", "amount": 99}},
    }
    through_api = asked(sdk, "A-7401")
    api_output = sdk.runs.wait(through_api, "support", command={"resume": [edit]})
    on_page = asked(sdk, "A-7401")
    served.query(
        "from django.contrib.auth.models import User\n"
        "from reviews.actions import tasks\n"
        "from reviews.models import ReviewTask\n"
        f"task = ReviewTask.objects.get(thread_id={on_page!r}, status='pending')\n"
        "tasks.decide([task], {task.pk: {'type': 'edit', 'name': 'refund',"
        " 'args': {'order_id': 'A-7401', 'amount': 99}}}, user=User.objects.get(username='admin'))\n"
        "result = None"
    )
    page_output = sdk.runs.join(on_page, sdk.runs.list(on_page)[0]["run_id"])
    assert page_output["executed"] == api_output["executed"]
    assert page_output["executed"][0]["result"] == "Refunded 99.00 on order A-7401"
    assert [m["content"] for m in page_output["messages"]] == [
        m["content"] for m in api_output["messages"]
    ]
    assert tasks(served, through_api) == tasks(served, on_page)


def test_a_batched_turn_takes_one_decision_per_call(served, sdk):
    thread_id = str(uuid.uuid4())
    output = sdk.runs.wait(
        thread_id,
        "tool_agent",
        input={
            "messages": [{"role": "user", "content": "Book me a flight to Lisbon for 3 people"}]
        },
        if_not_exists="create",
    )
    requests = output["__interrupt__"][0]["value"]["action_requests"]
    decisions = [{"type": "approve"}] + [
        {"type": "reject", "message": "not now"} for _ in requests[1:]
    ]
    sdk.runs.wait(thread_id, "tool_agent", command={"resume": {"decisions": decisions}})
    decided = served.query(
        "from reviews.models import ReviewTask\n"
        f"result = list(ReviewTask.objects.filter(thread_id={thread_id!r}).order_by('action_index')"
        ".values_list('tool_name', 'decision'))"
    )
    assert [d[0] for d in decided[: len(requests)]] == [r["name"] for r in requests]
    assert [d[1] for d in decided[: len(requests)]] == decisions
    assert sdk.runs.list(thread_id)[0]["status"] == "success"


def test_a_resume_that_does_not_fit_the_interrupt_is_refused(served, sdk):
    thread_id = asked(sdk, "A-7501")
    with pytest.raises(Exception) as refused:
        sdk.runs.create(thread_id, "support", command={"resume": [{"type": "ignore"}]})
    assert refused.value.response.status_code == 422
    assert "'ignore' is not allowed" in refused.value.response.json()["detail"]
    assert tasks(served, thread_id) == [["pending", None, None, 0]]
