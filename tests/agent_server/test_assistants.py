"""/langgraph/assistants through langgraph-sdk: each graph is an assistant
with LangGraph's own id, and assistants made here keep their versions.

The expected shapes are those LangGraph's dev server (`langgraph dev`)
answers for the same graphs."""

from __future__ import annotations

import uuid

import pytest
from langgraph_sdk.errors import NotFoundError, PermissionDeniedError

from tests.agent_server.test_threads import add_rule

NAMESPACE_GRAPH = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
ASSISTANT_KEYS = {
    "assistant_id",
    "graph_id",
    "config",
    "context",
    "metadata",
    "name",
    "created_at",
    "updated_at",
    "version",
    "description",
}


def test_each_graph_is_an_assistant_under_langgraphs_id_or_its_name(sdk):
    found = {a["graph_id"]: a for a in sdk.assistants.search(limit=100)}
    assert {"drafting", "support", "tool_agent", "nested"} <= set(found)
    drafting = found["drafting"]
    assert set(drafting) == ASSISTANT_KEYS
    assert drafting["assistant_id"] == str(uuid.uuid5(NAMESPACE_GRAPH, "drafting"))
    assert drafting["metadata"] == {"created_by": "system"}
    assert (drafting["name"], drafting["version"], drafting["config"]) == ("drafting", 1, {})
    assert sdk.assistants.get("drafting") == drafting
    assert sdk.assistants.get(drafting["assistant_id"]) == drafting
    assert sdk.assistants.count(graph_id="drafting") >= 1
    with pytest.raises(NotFoundError):
        sdk.assistants.get(str(uuid.uuid4()))


def test_get_graph_draws_subgraphs_with_xray(sdk):
    plain = sdk.assistants.get_graph("nested")
    assert [n["id"] for n in plain["nodes"]] == ["__start__", "prepare", "review", "__end__"]
    assert {"source": "prepare", "target": "review"} in plain["edges"]
    xray = sdk.assistants.get_graph("nested", xray=True)
    assert "review:check" in [n["id"] for n in xray["nodes"]]
    assert sdk.assistants.get_graph("nested", xray=1) == xray
    # A static breakpoint the graph was compiled with is drawn as LangGraph draws it.
    publish = next(n for n in sdk.assistants.get_graph("drafting")["nodes"] if n["id"] == "publish")
    assert publish == {
        "id": "publish",
        "type": "runnable",
        "data": {"name": "publish"},
        "metadata": {"__interrupt": "before"},
    }


async def test_schemas_and_subgraphs(async_sdk):
    schemas = await async_sdk.assistants.get_schemas(str(uuid.uuid5(NAMESPACE_GRAPH, "drafting")))
    assert set(schemas) == {
        "graph_id",
        "input_schema",
        "output_schema",
        "state_schema",
        "config_schema",
        "context_schema",
    }
    assert schemas["graph_id"] == "drafting"
    assert schemas["state_schema"]["title"] == "drafting_state"
    assert schemas["state_schema"]["properties"]["topic"] == {
        "default": None,
        "title": "Topic",
        "type": "string",
    }
    assert schemas["input_schema"]["title"] == "DraftState"
    assert (schemas["config_schema"], schemas["context_schema"]) == ({}, None)

    assert await async_sdk.assistants.get_subgraphs("drafting") == {}
    subgraphs = await async_sdk.assistants.get_subgraphs("nested")
    assert list(subgraphs) == ["review"]
    assert subgraphs["review"]["state_schema"]["properties"]["checked"]["type"] == "string"
    assert await async_sdk.assistants.get_subgraphs("nested", namespace="review") == subgraphs


async def test_an_assistant_made_here_keeps_every_version(async_sdk, served):
    made = await async_sdk.assistants.create(
        "drafting",
        config={"recursion_limit": 7},
        context={"tone": "formal"},
        metadata={"team": "docs"},
        name="formal drafts",
    )
    assert set(made) == ASSISTANT_KEYS
    # configurable and context mirror each other, as LangGraph keeps them.
    assert made["config"] == {"recursion_limit": 7, "configurable": {"tone": "formal"}}
    assert (made["context"], made["metadata"], made["version"]) == (
        {"tone": "formal"},
        {"team": "docs"},
        1,
    )
    changed = await async_sdk.assistants.update(made["assistant_id"], metadata={"owner": "ann"})
    assert changed["version"] == 2
    assert changed["metadata"] == {"team": "docs", "owner": "ann"}

    versions = await async_sdk.assistants.get_versions(made["assistant_id"])
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[1]["metadata"] == {"team": "docs"}
    rows = served.query(
        "from agent_server.models import AssistantVersion\n"
        f"result = sorted(AssistantVersion.objects.filter(assistant_id={made['assistant_id']!r})"
        ".values_list('version', flat=True))"
    )
    assert rows == [1, 2]

    back = await async_sdk.assistants.set_latest(made["assistant_id"], 1)
    assert (back["version"], back["metadata"]) == (1, {"team": "docs"})
    found = await async_sdk.assistants.search(metadata={"team": "docs"}, graph_id="drafting")
    assert made["assistant_id"] in [a["assistant_id"] for a in found]

    await async_sdk.assistants.delete(made["assistant_id"])
    with pytest.raises(NotFoundError):
        await async_sdk.assistants.get(made["assistant_id"])


def test_assistants_follow_the_graphs_review_rules(served, sdk):
    """A graph's rule names who may see its assistant and who may make one."""
    add_rule(served, "nested", view=("nested-viewers",), review=("nested-reviewers",))
    served.user("nested-outsider")
    served.user("nested-viewer", groups=("nested-viewers",))
    from langgraph_sdk import get_sync_client

    outsider = get_sync_client(url=served.api_url, api_key=served.key("nested-outsider"))
    viewer = get_sync_client(url=served.api_url, api_key=served.key("nested-viewer"))
    assert "nested" not in [a["graph_id"] for a in outsider.assistants.search(limit=100)]
    with pytest.raises(NotFoundError):
        outsider.assistants.get("nested")
    assert viewer.assistants.get("nested")["graph_id"] == "nested"
    with pytest.raises(PermissionDeniedError):
        viewer.assistants.create("nested", name="mine")
    assert sdk.assistants.create("nested", name="admin's")["name"] == "admin's"
