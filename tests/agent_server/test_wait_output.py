"""runs.wait on a thread answers with what the run streamed where it could,
as LangGraph's server does: the same as the thread's saved state says (a
join of the run, which reads it), wherever the run stopped."""

from __future__ import annotations

import uuid

import httpx
import pytest

TOPIC = {"topic": "x"}
FEEDBACK = {"approved": True, "tone": "formal"}


def wait(served, key: str, thread_id: str, **body) -> tuple[dict, str]:
    """The wait's answer, and the run's id (from where to join it)."""
    response = httpx.post(
        f"{served.api_url}/threads/{thread_id}/runs/wait",
        json={"assistant_id": "drafting", "if_not_exists": "create", **body},
        headers={"x-api-key": key},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response.json(), response.headers["Content-Location"].rsplit("/", 1)[-1]


@pytest.mark.parametrize(
    "asked",
    [
        {},
        {"interrupt_before": ["ask_feedback"]},
        {"interrupt_after": ["write_draft"]},
        {"stream_mode": ["updates"]},
        {"stream_mode": ["values", "updates"]},
        {"stream_mode": ["updates", "values"]},
    ],
    ids=["interrupt", "before", "after", "updates", "values-updates", "updates-values"],
)
def test_a_wait_answers_as_the_saved_state_does(served, api_key, sdk, asked):
    thread_id = str(uuid.uuid4())
    answered, run_id = wait(served, api_key, thread_id, input=TOPIC, **asked)
    assert answered == sdk.runs.join(thread_id, run_id)
    assert answered["draft"].startswith("Announcing: x.")


def test_interrupts_asked_at_once_are_answered_in_the_saved_states_order(served, api_key, sdk):
    thread_id = str(uuid.uuid4())
    answered, run_id = wait(served, api_key, thread_id, assistant_id="parallel", input={})
    assert answered == sdk.runs.join(thread_id, run_id)
    assert sorted(i["value"] for i in answered["__interrupt__"]) == ["question a", "question b"]


def test_a_resumed_wait_answers_as_the_saved_state_does_to_the_end(served, api_key, sdk):
    thread_id = str(uuid.uuid4())
    first, _ = wait(served, api_key, thread_id, input=TOPIC)
    assert "__interrupt__" in first
    at_breakpoint, run_id = wait(served, api_key, thread_id, command={"resume": FEEDBACK})
    assert at_breakpoint == sdk.runs.join(thread_id, run_id)
    assert at_breakpoint["feedback"] == FEEDBACK and "__interrupt__" not in at_breakpoint
    ended, run_id = wait(served, api_key, thread_id)
    assert ended == sdk.runs.join(thread_id, run_id)
    assert ended["published"] == at_breakpoint["draft"]
