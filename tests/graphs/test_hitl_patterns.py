"""Every human-in-the-loop pattern of LangGraph's documentation, run twice:
directly with LangGraph (an in-memory saver, `ainvoke`, then `Command(resume=
...)` with the value the reviewer's decision should produce, `update_state`
for a state edit) and through this project (started through the API, run by
the worker, each decision and edit made through the API). The final states
must be equal in value and in Python type."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import override_settings

from tests.graphs.differential import (
    GO_ON,
    Step,
    answer,
    comparable,
    directly,
    each,
    through_the_api,
)

PATTERNS = Path(__file__).parent / "patterns" / "langgraph.json"
FEEDBACK = {"approved": False, "tone": "friendly", "notes": "shorter"}
TRAVEL = {"messages": [{"role": "user", "content": "Book me a flight to Rome for 2 people"}]}
REFUND = {"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]}
NOK = {"name": "charge_card", "args": {"amount": 300, "currency": "NOK"}}

CASES: dict[str, tuple[str, dict, list[Step]]] = {
    "approve, then Command(goto=...)": ("approval", {}, [answer("approve")]),
    "reject, then Command(goto=...)": ("approval", {}, [answer("reject")]),
    "typed feedback, then a static interrupt_before": (
        "drafting",
        {"topic": "refunds"},
        [answer(FEEDBACK), GO_ON],
    ),
    "edit the state at a breakpoint, as a node": (
        "drafting",
        {"topic": "refunds"},
        [answer(FEEDBACK), Step(edit=({"draft": "Edited by a person."}, "revise"))],
    ),
    "static interrupt_after": ("paused_after", {"log": []}, [GO_ON]),
    "review a tool call inside the tool": (
        "tool_with_interrupt",
        {},
        [answer({"type": "edit", "args": {"hotel_name": "Grand"}})],
    ),
    "parallel interrupts resumed together": (
        "parallel",
        {"answers": []},
        [
            Step(
                decide=each(lambda t: {"type": "answer", "value": t["description"][-1]}),
                resume=lambda interrupts: {i.id: i.value[-1] for i in interrupts},
            )
        ],
    ),
    "an interrupt inside a subgraph": ("nested", {"text": " hello "}, [answer("fine")]),
    "Agent Inbox (HumanInterrupt)": (
        "support",
        REFUND,
        [
            Step(
                decide=each(lambda task: {"type": "accept"}),
                resume=lambda interrupts: {interrupts[0].id: [{"type": "accept", "args": None}]},
            )
        ],
    ),
    "create_agent with HumanInTheLoopMiddleware, batched": (
        "tool_agent",
        TRAVEL,
        [
            Step(
                decide=each(
                    lambda t: (
                        {"type": "approve"}
                        if t["tool_name"] == "book_flight"
                        else {"type": "edit", **NOK}
                    )
                ),
                resume=lambda interrupts: {
                    interrupts[0].id: {
                        "decisions": [
                            {"type": "approve"},
                            {"type": "edit", "edited_action": NOK},
                        ]
                    }
                },
            )
        ],
    ),
    "create_agent with HumanInTheLoopMiddleware, per call": (
        "per_call",
        TRAVEL,
        [
            Step(
                decide=each(
                    lambda t: (
                        {"type": "approve"}
                        if t["tool_name"] == "book_flight"
                        else {"type": "reject", "message": "not on this card"}
                    )
                ),
                resume=lambda interrupts: {
                    i.id: {"type": "approve"}
                    if i.value["name"] == "book_flight"
                    else {"type": "reject", "message": "not on this card"}
                    for i in interrupts
                },
            )
        ],
    ),
    "interrupt() in a loop, validating the answer": (
        "asks_again",
        {},
        [answer("x"), answer(-1), answer(30)],
    ),
    "typed state: Decimal, set, bytes, datetime, UUID, timedelta, dataclass, messages": (
        "rich",
        {},
        [answer("yes")],
    ),
    "pydantic state": ("rich_model", {}, [answer("fine")]),
    "async nodes and an async tool": ("async_tools", {}, [answer("go ahead")]),
}


@pytest.mark.parametrize("case", list(CASES))
@override_settings(HITL_GRAPHS_CONFIG=PATTERNS)
def test_same_final_state_as_langgraph(case, transactional_db):
    graph_name, given, steps = CASES[case]
    expected = directly(graph_name, given, steps)
    got = through_the_api(graph_name, given, steps)
    assert comparable(got.values) == comparable(expected)


@override_settings(HITL_GRAPHS_CONFIG=PATTERNS)
def test_the_cases_reach_what_their_names_say(transactional_db):
    """What the comparisons above compare, spelled out for a few cases."""
    assert directly("approval", {}, [answer("approve")])["outcome"].startswith("done")
    assert directly("approval", {}, [answer("reject")])["outcome"] == "called off"
    edited = CASES["edit the state at a breakpoint, as a node"]
    assert directly(*edited)["published"] == "Edited by a person."
    hotel = CASES["review a tool call inside the tool"]
    assert "Grand" in directly(*hotel)["messages"][-1].content
    batched = directly(*CASES["create_agent with HumanInTheLoopMiddleware, batched"])
    assert any("300.00 NOK" in str(m.content) for m in batched["messages"])
