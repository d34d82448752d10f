"""Each payload shape's vocabulary: decisions make the resume value its graph
expects, and that value read back gives the same decisions (what a client
sending `Command(resume=...)` means, as a reviewer's decisions)."""

from __future__ import annotations

import re

import pytest

from graphs.interrupts import (
    VOCABULARIES,
    DecisionError,
    Shape,
    decisions_in,
    requests_for,
    resume_value,
    validate_decision,
)

INBOX = [
    {
        "action_request": {"action": name, "args": {"n": 1}},
        "config": {"allow_accept": True, "allow_edit": True, "allow_respond": True},
        "description": "",
    }
    for name in ("search", "send")
]
BATCHED = {
    "action_requests": [{"name": "book", "args": {"to": "Oslo"}}, {"name": "pay", "args": {}}],
    "review_configs": [],
}
PER_CALL = {"type": "tool_approval", "name": "refund", "args": {"amount": 5}}

CASES = {
    Shape.AGENT_INBOX: (
        requests_for("i", INBOX),
        [
            {"type": "edit", "name": "search", "args": {"n": 2}},
            {"type": "response", "message": "not now"},
        ],
    ),
    Shape.HITL_BATCHED: (
        requests_for("i", BATCHED),
        [
            {"type": "edit", "name": "book", "args": {"to": "Rome"}},
            {"type": "reject", "message": "no"},
        ],
    ),
    Shape.HITL_PER_CALL: (requests_for("i", PER_CALL), [{"type": "approve"}]),
    Shape.SCHEMA: (
        requests_for("i", "How long?", {"type": "integer"}),
        [{"type": "answer", "value": 3}],
    ),
    Shape.JSON: (requests_for("i", {"question": "Why?"}), [{"type": "answer", "value": "because"}]),
}


def test_every_shape_has_a_vocabulary():
    assert set(VOCABULARIES) == set(Shape)


@pytest.mark.parametrize("shape", list(CASES))
def test_a_resume_value_reads_back_as_its_decisions(shape):
    requests, decisions = CASES[shape]
    requests = [r.as_dict() for r in requests]
    assert {r["shape"] for r in requests} == {shape}
    checked = [validate_decision(r, d) for r, d in zip(requests, decisions, strict=True)]
    assert checked == decisions
    assert decisions_in(requests, resume_value(requests, checked)) == decisions


def test_a_breakpoint_is_passed_as_proposed_or_not_at_all():
    request = {"shape": Shape.BREAKPOINT, "allowed": ["continue"], "tool_name": "refund"}
    request["args"] = {"amount": 2400}
    continued = validate_decision(request, {"type": "continue"})
    assert resume_value([request], [continued]) is None
    assert decisions_in([request, request], None) == [{"type": "continue"}] * 2
    for passing in ("approve", [{"type": "accept", "args": None}], {"type": "continue"}):
        assert decisions_in([request], passing) == [{"type": "continue"}]
    for declining in (
        {},
        "no",
        {"type": "reject", "message": "too much"},
        [{"type": "response", "args": "No"}],
        [{"type": "edit", "args": {"amount": 10}}],
    ):
        with pytest.raises(DecisionError, match=r"allowed: continue"):
            decisions_in([request], declining)
        with pytest.raises(DecisionError, match=r"allowed: continue"):
            validate_decision(request, declining if isinstance(declining, dict) else {})


@pytest.mark.parametrize(
    ("shape", "value", "message"),
    [
        (Shape.HITL_BATCHED, [{"type": "approve"}], 'resumed with {"decisions": [...]}'),
        (Shape.HITL_BATCHED, {"decisions": [{"type": "approve"}]}, "asks 2 decisions"),
        (Shape.AGENT_INBOX, ["accept", "accept"], "an object with a type"),
    ],
)
def test_a_value_in_another_shape_is_refused(shape, value, message):
    requests = [r.as_dict() for r in CASES[shape][0]]
    with pytest.raises(DecisionError, match=re.escape(message)):
        decisions_in(requests, value)
