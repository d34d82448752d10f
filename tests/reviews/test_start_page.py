"""The start page: an example input, a sentence for a message list, and the
graph's own working state kept apart from what a person starts it with."""

from __future__ import annotations

import json
from pathlib import Path

from django.test import override_settings
from django.urls import reverse
from django.utils.html import escape

from graphs.models import Run
from graphs.registry import Registry
from reviews.models import ReviewTask
from tests.reviews.conftest import finish

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "graphs" / "examples" / "langgraph.json"
AGENTS = ROOT / "tests" / "graphs" / "agents" / "langgraph.json"


def test_a_sentence_starts_a_message_list_graph(as_rita):
    page = as_rita.get(reverse("start_run", args=["tool_agent"])).content.decode()
    assert (
        "Example input: <code>{&quot;messages&quot;: [{&quot;role&quot;: &quot;user&quot;" in page
    )
    response = as_rita.post(
        reverse("start_run", args=["tool_agent"]), {"in-messages": "Book me a flight to Oslo"}
    )
    assert response.status_code == 302
    run = Run.objects.get()
    assert run.payload == {"messages": [{"role": "user", "content": "Book me a flight to Oslo"}]}


def test_working_state_keys_are_offered_apart_from_the_input(as_rita):
    page = as_rita.get(reverse("start_run", args=["support"])).content.decode()
    head, rest = page.split('<details class="state-fields"', 1)
    assert 'name="in-messages"' in head
    assert 'name="in-executed"' not in head and 'name="in-executed"' in rest


def test_each_demo_graph_offers_its_langgraph_json_example_and_it_runs(as_rita):
    examples = json.loads(EXAMPLES.read_text())["examples"]
    assert set(examples) == {"support", "tool_agent", "drafting"}
    for name, example in examples.items():
        page = as_rita.get(reverse("start_run", args=[name])).content.decode()
        shown = escape(json.dumps(example, ensure_ascii=False))
        assert f"Example input: <code>{shown}</code>" in page, name
        assert f'placeholder="{shown}"' in page, name
    # The support example is a refund over 1000: the demo's two-approval rule.
    response = as_rita.post(
        reverse("start_run", args=["support"]), {"raw": json.dumps(examples["support"])}
    )
    assert response.status_code == 302
    finish()
    (task,) = ReviewTask.objects.pending()
    assert task.tool_name == "refund" and task.args["amount"] > 1000


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_without_a_langgraph_json_example_the_schema_gives_one(as_rita):
    assert json.loads(AGENTS.read_text()).get("examples") is None
    page = as_rita.get(reverse("start_run", args=["echo"])).content.decode()
    assert "Example input: <code>{&quot;text&quot;: &quot;…&quot;}</code>" in page


def test_an_example_must_be_an_input_object(tmp_path):
    config = tmp_path / "langgraph.json"
    config.write_text(
        json.dumps(
            {
                "graphs": {"a": "./a.py:graph", "b": "./b.py:graph", "c": "./c.py:graph"},
                "examples": {"a": {"topic": "x"}, "b": "a sentence"},
            }
        )
    )
    registry = Registry(config)
    assert registry.get("a").example == {"topic": "x"}
    assert registry.get("b").example is None and registry.get("c").example is None
    assert registry.errors == ["graph 'b': its example must be an input object"]
    config.write_text(json.dumps({"graphs": {"a": "./a.py:graph"}, "examples": ["x"]}))
    assert Registry(config).errors == ['"examples" must map graph names to input objects']
