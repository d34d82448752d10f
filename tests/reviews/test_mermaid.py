"""The graph drawing on the thread page: node names are text, whatever they hold."""

from __future__ import annotations

import html
import itertools
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.test import override_settings
from django.urls import reverse
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict

from graphs.worker import compiled_graph
from reviews.graph_state import mermaid
from tests.reviews.conftest import pending, start
from tests.servers import CHROMIUM, chromium_missing_reason, require

ROOT = Path(__file__).resolve().parents[2]
IMG = "<img src=x onerror=alert(1)>"
ASKS = "say (hi)"
# "node_0" could be the id made up for another name; "end" is a Mermaid word.
NAMES = [IMG, ASKS, "it's", 'the "best"', "two words", "ünïcode ✓", "end", "a#b;c", "[x]{y}&"]
NAMES += ["node_0", "plain_name"]


class Log(TypedDict, total=False):
    seen: list[str]


def _node(name: str):
    def run(state: Log) -> Log:
        if name == ASKS:
            interrupt("go on?")
        return {"seen": [*state.get("seen", []), name]}

    return run


def _weird() -> StateGraph:
    builder = StateGraph(Log)
    for name in NAMES:
        builder.add_node(name, _node(name))
    builder.add_edge(START, NAMES[0])
    for a, b in itertools.pairwise(NAMES):
        builder.add_edge(a, b)
    builder.add_edge(NAMES[-1], END)
    return builder


weird = _weird().compile(interrupt_after=["two words"])


@pytest.fixture
def weird_config(tmp_path):
    config = tmp_path / "langgraph.json"
    config.write_text('{"graphs": {"weird": "tests.reviews.test_mermaid:weird"}}')
    with override_settings(HITL_GRAPHS_CONFIG=config):
        yield config


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.diagrams: list[str] = []
        self._in_diagram = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in_diagram = tag == "pre" and ("class", "mermaid") in attrs
        if self._in_diagram:
            self.diagrams.append("")

    def handle_endtag(self, tag):
        self._in_diagram = self._in_diagram and tag != "pre"

    def handle_data(self, data):
        if self._in_diagram:
            self.diagrams[-1] += data


NODE = re.compile(r'^\t(\w+)(\(\[|\()"([^"]*)"(\]\)|\))(:::\w+)?;$')
EDGE = re.compile(r'^\t(\w+) (-->|-\.->)(\|"[^"]*"\|)? (\w+);$')
CLASS = re.compile(r"^\tclass ([\w,]+) next;$")


def _parse(source: str) -> tuple[dict[str, str], list[tuple[str, str]], list[str]]:
    """Node labels by id, edges and marked ids, checking every line's shape."""
    lines = source.splitlines()
    assert lines[: lines.index("graph TD;") + 1][0] == "---"
    labels: dict[str, str] = {}
    edges, marked = [], []
    for line in lines[lines.index("graph TD;") + 1 :]:
        if node := NODE.match(line):
            assert node[1] not in labels, line
            text = node[3].split("<br>")[0]
            labels[node[1]] = re.sub(r"#(\d+);", lambda m: chr(int(m[1])), text)
        elif edge := EDGE.match(line):
            edges.append((edge[1], edge[4]))
        elif mark := CLASS.match(line):
            marked += mark[1].split(",")
        else:
            assert line.startswith("\tclassDef "), line
    assert all(re.fullmatch(r"[A-Za-z0-9_]+", node_id) for node_id in labels)
    assert {a for e in edges for a in e} <= labels.keys() and set(marked) <= labels.keys()
    return labels, edges, marked


def test_every_name_is_a_quoted_label_and_can_be_marked(weird_config):
    graph = compiled_graph("weird")
    labels, edges, marked = _parse(mermaid(graph, NAMES))
    assert sorted(labels.values()) == sorted(["__start__", *NAMES, "__end__"])
    by_name = {name: node_id for node_id, name in labels.items()}
    assert sorted(marked) == sorted(by_name[name] for name in NAMES)
    chain = ["__start__", *NAMES, "__end__"]
    assert by_name["plain_name"] == "plain_name"  # readable where it can be
    assert sorted(edges) == sorted((by_name[a], by_name[b]) for a, b in itertools.pairwise(chain))


def _thread_page(client, thread_id: str) -> str:
    response = client.get(reverse("thread", args=[thread_id]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_thread_page_shows_names_as_text(weird_config, as_rita):
    thread_id = start("weird", {})
    assert pending(thread_id)
    page = _thread_page(as_rita, thread_id)
    parsed = _Page()
    parsed.feed(page)
    assert "img" not in parsed.tags
    (diagram,) = parsed.diagrams
    # Mermaid reads the text of the element: no markup of the name survives in it.
    assert "<img" not in diagram and "<img" not in html.unescape(diagram)
    labels, _, marked = _parse(diagram)
    assert [labels[node_id] for node_id in marked] == [ASKS]


def test_chromium_draws_the_names_as_text(weird_config, as_rita):
    """Mermaid itself, in a browser, as the thread page runs it."""
    require(chromium_missing_reason())
    from playwright.sync_api import sync_playwright

    thread_id = start("weird", {})
    page_html = _thread_page(as_rita, thread_id)
    pre = re.search(r'<pre class="mermaid">.*?</pre>', page_html, re.S)[0]
    script = (ROOT / "static" / "vendor" / "mermaid-11.17.2.min.js").read_text()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            page = browser.new_page()
            page.set_content(f"<!doctype html><html><body>{pre}</body></html>")
            page.add_script_tag(content=script)
            page.evaluate(
                """async () => {
                    mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });
                    await mermaid.run({ querySelector: "pre.mermaid" });
                }"""
            )
            svg = page.locator("pre.mermaid svg")
            assert svg.count() == 1
            assert page.locator("img").count() == 0
            text = svg.text_content()
            assert "Syntax error" not in text
            for name in NAMES:
                assert name in text, name
            marked = page.locator("pre.mermaid svg g.node.next")
            assert marked.count() == 1 and marked.text_content().strip() == ASKS
        finally:
            browser.close()


def test_a_graph_is_drawn_once_and_marked_per_call():
    builder = StateGraph(Log)
    builder.add_node("first", _node("first"))
    builder.add_node("second", _node("second"))
    builder.add_edge(START, "first")
    builder.add_edge("first", "second")
    builder.add_edge("second", END)
    graph = builder.compile()
    drawn = []
    get_graph = graph.get_graph
    graph.get_graph = lambda *args, **kwargs: drawn.append(1) or get_graph(*args, **kwargs)
    one, two, none = mermaid(graph, ["first"]), mermaid(graph, ["second"]), mermaid(graph, [])
    assert len(drawn) == 1
    assert _parse(one)[2] == ["first"] and _parse(two)[2] == ["second"] and _parse(none)[2] == []
    assert one.replace("first next", "second next") == two  # the marks alone differ


def test_mermaid_is_loaded_only_where_a_diagram_is_drawn(weird_config, as_rita):
    thread_id = start("weird", {})
    assert pending(thread_id)
    assert "vendor/mermaid" in _thread_page(as_rita, thread_id)
    for url in (reverse("home"), reverse("queue"), reverse("thread_state", args=[thread_id])):
        assert "vendor/mermaid" not in as_rita.get(url).content.decode(), url
    with override_settings(HITL_GRAPHS_CONFIG=str(ROOT / "no-such" / "langgraph.json")):
        assert "vendor/mermaid" not in _thread_page(as_rita, thread_id)  # no graph, no diagram
