"""The demo graphs, loaded through the registry and run on the Django saver."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from langchain_core.messages import ToolMessage
from langgraph.types import Command

from graphs.registry import GraphLoadError, GraphNotFound, Registry, get_registry


def cfg() -> dict:
    return {"configurable": {"thread_id": str(uuid.uuid4())}}


def test_registry_reads_the_bundled_langgraph_json():
    registry = get_registry()
    assert registry.errors == []
    assert [spec.name for spec in registry.specs()] == ["support", "tool_agent", "drafting"]
    assert "Agent Inbox" in registry.get("support").description
    with pytest.raises(GraphNotFound, match=r"no graph named 'nope'.*support"):
        registry.get("nope")


def test_registry_reports_bad_configs(tmp_path: Path):
    (tmp_path / "agent.py").write_text("not_a_graph = 42\n")
    config = tmp_path / "langgraph.json"
    config.write_text(
        json.dumps(
            {
                "graphs": {
                    "missing_file": "./nowhere.py:graph",
                    "wrong_type": "./agent.py:not_a_graph",
                    "no_attr": "./agent.py:graph",
                    "bad": 7,
                }
            }
        )
    )
    registry = Registry(config)
    assert registry.errors == ["graph 'bad': target must be a 'path:attr' string"]
    with pytest.raises(GraphLoadError, match="not found"):
        registry.get("missing_file").load_object()
    with pytest.raises(GraphLoadError, match="is a int, not a StateGraph"):
        registry.get("wrong_type").compile(None)
    with pytest.raises(GraphLoadError, match="has no 'graph'"):
        registry.get("no_attr").load_object()

    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert Registry(broken).errors and Registry(broken).specs() == []


def test_support_refund_edited_then_executed(saver):
    graph = get_registry().get("support").compile(saver)
    config = cfg()
    result = graph.invoke(
        {"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]}, config
    )
    (request,) = result["__interrupt__"][0].value
    assert request["action_request"] == {
        "action": "refund",
        "args": {"order_id": "A-1001", "amount": 120.0, "reason": "customer request"},
    }
    assert request["config"]["allow_edit"] and not request["config"]["allow_ignore"]

    edited = {
        "action": "refund",
        "args": {"order_id": "A-1001", "amount": 100, "reason": "partial"},
    }
    final = graph.invoke(Command(resume=[{"type": "edit", "args": edited}]), config)
    assert final["executed"] == [
        {
            "tool": "refund",
            "args": edited["args"],
            "result": "Refunded 100.00 on order A-1001 (partial)",
        }
    ]
    assert final["messages"][-1].content.startswith("Done. Refunded 100.00")


def test_support_response_reaches_the_model_and_runs_nothing(saver):
    graph = get_registry().get("support").compile(saver)
    config = cfg()
    graph.invoke(
        {"messages": [{"role": "user", "content": "Close my account, order A-1002"}]}, config
    )
    final = graph.invoke(
        Command(resume=[{"type": "response", "args": "Call the customer first"}]), config
    )
    assert final.get("executed", []) == []
    tool_messages = [m for m in final["messages"] if isinstance(m, ToolMessage)]
    assert tool_messages[-1].content == "A reviewer declined and said: Call the customer first"


def test_tool_agent_batched_decisions_in_order(saver):
    graph = get_registry().get("tool_agent").compile(saver)
    config = cfg()
    result = graph.invoke(
        {"messages": [{"role": "user", "content": "Book me a flight to Porto for 2 people"}]},
        config,
    )
    value = result["__interrupt__"][0].value
    assert [a["name"] for a in value["action_requests"]] == ["book_flight", "charge_card"]
    assert value["review_configs"][0]["allowed_decisions"] == ["approve", "edit", "reject"]

    final = graph.invoke(
        Command(
            resume={
                "decisions": [
                    {
                        "type": "edit",
                        "edited_action": {
                            "name": "book_flight",
                            "args": {"flight": "FL-204", "passengers": 3},
                        },
                    },
                    {"type": "reject", "message": "Too expensive, ask first"},
                ]
            }
        ),
        config,
    )
    tools = {m.name: m.content for m in final["messages"] if isinstance(m, ToolMessage)}
    assert "Booked 3 seat(s) on FL-204" in tools["book_flight"]
    assert "Too expensive, ask first" in tools["charge_card"]
    assert "Charged" not in tools["charge_card"]


def test_drafting_feedback_then_breakpoint_before_publish(saver):
    graph = get_registry().get("drafting").compile(saver)
    config = cfg()
    result = graph.invoke({"topic": "refunds"}, config)
    interrupt = result["__interrupt__"][0]
    assert interrupt.response_schema["required"] == ["approved", "tone"]
    graph.invoke(Command(resume={"approved": False, "tone": "friendly", "max_words": 4}), config)
    state = graph.get_state(config)
    assert state.next == ("publish",)
    assert state.values["draft"] == "Hi all! Announcing: refunds."
    assert "published" not in state.values
    final = graph.invoke(None, config)
    assert final["published"] == "Hi all! Announcing: refunds."
