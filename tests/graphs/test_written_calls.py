"""Tool calls are found by shape in whatever a change to a thread writes, in
every format LangGraph and LangChain accept; a tools node's next calls are
every call of the last AI message, answered or not."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from graphs.written_calls import last_turn, waiting, written

CHARGE = {"name": "charge_card", "args": {"amount": 9999.0}}

FORMS = {
    "LangChain dict": {"type": "ai", "content": "", "tool_calls": [{**CHARGE, "id": "c"}]},
    "lc constructor": {
        "lc": 1,
        "type": "constructor",
        "id": ["langchain", "schema", "messages", "AIMessage"],
        "kwargs": {"content": "", "tool_calls": [{**CHARGE, "id": "c"}]},
    },
    "OpenAI": {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "c",
                "type": "function",
                "function": {"name": "charge_card", "arguments": '{"amount": 9999.0}'},
            }
        ],
    },
    "OpenAI function_call": {
        "role": "assistant",
        "content": "",
        "function_call": {"name": "charge_card", "arguments": '{"amount": 9999.0}'},
    },
    "Anthropic tool_use": {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "c", "name": "charge_card", "input": {"amount": 9999.0}}
        ],
    },
    "a Send's bare call": {"node": "tools", "input": {"tool_call": {**CHARGE, "id": "c"}}},
    "a message object": AIMessage("", tool_calls=[{**CHARGE, "id": "c"}]),
}


@pytest.mark.parametrize("form", FORMS)
def test_a_call_is_found_in_every_form(form):
    assert CHARGE in written({"messages": [FORMS[form]], "goto": []})


def test_plain_input_holds_no_call():
    assert written({"messages": [{"role": "user", "content": "Refund A-1002, 9999"}]}) == []


def test_the_last_turns_calls_count_answered_or_not():
    values = {
        "messages": [
            HumanMessage("Book and pay"),
            AIMessage("", tool_calls=[{**CHARGE, "id": "c"}]),
            ToolMessage("A reviewer rejected this.", tool_call_id="c"),
        ],
        "note": "not a message list",
    }
    assert last_turn(values) == [CHARGE]
    values["messages"].append(AIMessage("All set."))
    assert last_turn(values) == []


def test_a_dict_with_several_shapes_is_judged_on_each():
    """LangChain's converters take OpenAI's `function` over a decoy `args`."""
    decoy = {
        "id": "c",
        "name": "charge_card",
        "args": {"amount": 1},
        "type": "function",
        "function": {"name": "charge_card", "arguments": '{"amount": 9999.0}'},
    }
    found = written({"messages": [{"role": "assistant", "tool_calls": [decoy]}]})
    assert CHARGE in found and {"name": "charge_card", "args": {"amount": 1}} in found


def test_arguments_are_read_as_leniently_as_langchain_reads_them():
    tabbed = {
        "function": {"name": "charge_card", "arguments": '{"amount": 9999.0, "note": "a\tb"}'}
    }
    cut = {"function": {"name": "charge_card", "arguments": '{"amount": 9999.0'}}
    assert written(tabbed) == [{"name": "charge_card", "args": {"amount": 9999.0, "note": "a\tb"}}]
    assert written(cut) == [CHARGE]
    # No reading gives an object: judged under every rule of its tool.
    assert written({"function": {"name": "charge_card", "arguments": "[9999]"}}) == [
        {"name": "charge_card", "args": None}
    ]


def test_waiting_calls_are_those_of_a_last_message_from_the_model():
    asked = AIMessage("", tool_calls=[{**CHARGE, "id": "c"}])
    assert waiting({"messages": [HumanMessage("Pay"), asked]}) == [CHARGE]
    answered = [HumanMessage("Pay"), asked, ToolMessage("done", tool_call_id="c")]
    assert waiting({"messages": answered}) == []


def test_waiting_calls_are_those_of_the_last_ai_message_not_yet_answered():
    from langchain_core.messages import SystemMessage

    other = {"name": "send_email", "args": {"to": "a@b.c"}}
    asked = AIMessage("", tool_calls=[{**CHARGE, "id": "c"}, {**other, "id": "e"}])
    noted = [HumanMessage("Pay"), asked, SystemMessage("audited")]
    assert waiting({"messages": noted}) == [CHARGE, other]
    half = [*noted, ToolMessage("sent", tool_call_id="e")]
    assert waiting({"messages": half}) == [CHARGE]


@pytest.mark.parametrize("as_dict", [False, True], ids=["message", "dict"])
def test_equal_calls_under_two_ids_are_two_calls(as_dict):
    """A tools node runs both: each is asked, not one for the two."""
    refund = {"name": "refund", "args": {"order_id": "A-1", "amount": 9999.0}}
    message = AIMessage("", tool_calls=[{**refund, "id": "c1"}, {**refund, "id": "c2"}])
    state = {"messages": [message.model_dump() if as_dict else message]}
    assert waiting(state) == [refund, refund]
    answered = {"messages": [*state["messages"], ToolMessage("done", tool_call_id="c1")]}
    assert waiting(answered) == [refund]


def test_a_question_guards_the_calls_it_shows_and_those_waiting_below_it():
    """What answering an interrupt() that is no call of its own lets run: a
    call its value shows, and the calls waiting in the graph that asks and
    each graph around it; not those of a parallel branch stopped at a
    breakpoint, which asks them itself."""
    from types import SimpleNamespace

    from graphs.interrupts import _guarded_calls

    def graph(ns: str, calls: list, *tasks) -> SimpleNamespace:
        messages = [AIMessage("", tool_calls=[{**c, "id": c["name"]} for c in calls])]
        config = {"configurable": {"checkpoint_ns": ns}}
        return SimpleNamespace(values={"messages": messages}, tasks=tasks, config=config)

    refund = {"name": "refund", "args": {"amount": 2400.0}}
    lookup = {"name": "lookup", "args": {"q": 1}}
    asking = graph("agent:1", [refund])
    beside = graph("worker:2", [lookup])
    root = graph(
        "",
        [],
        SimpleNamespace(state=asking),
        SimpleNamespace(state=beside),
        SimpleNamespace(state={"configurable": {}}),
    )
    shown = {"question": "go ahead?", "call": CHARGE}
    assert _guarded_calls(shown, root, "agent:1") == [CHARGE, refund]
    assert _guarded_calls("go ahead?", root, "") == []
    assert _guarded_calls("go ahead?", root, "worker:2") == [lookup]


def test_calls_kept_outside_the_messages_are_held_in_the_state():
    """A plan in a key of its own may run past any stop; calls in message
    lists are read by what answers them (waiting), a middleware's kept
    edits by the call they replace."""
    from graphs.written_calls import EDITED_CALLS_KEY, held

    asked = AIMessage("", tool_calls=[{"name": "lookup", "args": {"q": 1}, "id": "l"}])
    dicts = [{"role": "assistant", "content": "", "tool_calls": [{**CHARGE, "id": "d"}]}]
    state = {
        "messages": [HumanMessage("hi"), asked, ToolMessage("done", tool_call_id="l")],
        "history": dicts,
        "plan": {**CHARGE, "id": "p1", "type": "tool_call"},
        EDITED_CALLS_KEY: {"l": {"name": "lookup", "args": {"q": 2}}},
    }
    assert held(state) == [CHARGE]
    assert held({"plans": [CHARGE]}) == [CHARGE] and held([CHARGE]) == []


@pytest.mark.parametrize(
    "plan",
    [
        [
            {
                "id": "c",
                "type": "function",
                "function": {"name": "charge_card", "arguments": '{"amount": 9999.0}'},
            }
        ],
        {"action": "charge_card", "args": {"amount": 9999.0}},
        [{"type": "tool", "name": "charge_card", "args": {"amount": 9999.0}}],
        {"toolUse": {"toolUseId": "t", "name": "charge_card", "input": {"amount": 9999.0}}},
        {"tool": "charge_card", "params": {"amount": 9999.0}},
        [{"role": "ai", "content": "", "tool_calls": [{**CHARGE, "id": "c"}]}],
    ],
    ids=["OpenAI list", "Agent Inbox action", "typed list", "Bedrock", "tool/params", "role ai"],
)
def test_a_plan_is_read_in_every_shape_a_format_gives_a_call(plan):
    """Kept in a state key of its own, or as messages LangChain reads."""
    from graphs.written_calls import held

    state = {"plan": plan}
    assert CHARGE in held(state) + waiting(state)
