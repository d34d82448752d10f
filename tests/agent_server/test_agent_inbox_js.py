"""Agent Inbox against /langgraph/, through the calls it makes with LangGraph's
JS SDK (tests/agent_server/js/inbox.mjs, `@langchain/langgraph-sdk` at the
version Agent Inbox resolves): its inbox lists the interrupted `support`
threads with their requests, and accept, edit, response (streamed with
streamMode "events"), Ignore (a resume) and Mark as Resolved (update_state
with no values as "__end__") each leave the thread and its review tasks as
the inbox and the pages expect.

What the script reads is compared with what it reads from LangGraph's own
dev server, recorded in agent_inbox_langgraph_dev.json by

    python -m tests.agent_server.test_agent_inbox_js PATH-TO-langgraph

(`langgraph dev` of langgraph-cli[inmem], langgraph-api 0.16.7, on
graphs/examples/support.py); with a `langgraph` program at hand (LANGGRAPH_CLI
or on PATH), a test records it again and checks the file still holds."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.agent_server.conftest import ALLOWED_ORIGIN, ROOT
from tests.servers import free_port, require, stop_all, wait_for_port

JS = Path(__file__).parent / "js"
RECORDED = Path(__file__).parent / "agent_inbox_langgraph_dev.json"
SUPPORT = ROOT / "graphs" / "examples" / "support.py"
CASES = ("accept", "edit", "response", "resolve", "ignore")


def js_missing_reason() -> str | None:
    for program in ("node", "npm"):
        if shutil.which(program) is None:
            return f"{program} is not installed (Debian packages nodejs and npm)"
    return None


def installed_sdk() -> str | None:
    manifest = JS / "node_modules" / "@langchain" / "langgraph-sdk" / "package.json"
    return json.loads(manifest.read_text())["version"] if manifest.exists() else None


@pytest.fixture(scope="session")
def js_sdk() -> Path:
    """tests/agent_server/js with its locked node_modules (npm ci once, and
    again only when package.json pins another SDK)."""
    require(js_missing_reason())
    pinned = json.loads((JS / "package.json").read_text())["dependencies"]
    if installed_sdk() != pinned["@langchain/langgraph-sdk"]:
        done = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=JS,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            require(f"npm ci failed (is the npm registry reachable?): {done.stderr[-1500:]}")
    return JS


def run_inbox(url: str, key: str | None) -> dict:
    """The inbox script's JSON against this server."""
    # As the inbox's page in a browser, from an origin the server allows.
    env = {**os.environ, "LANGGRAPH_URL": url, "INBOX_ORIGIN": ALLOWED_ORIGIN}
    for name in ("LANGGRAPH_API_KEY", "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY"):
        env.pop(name, None)  # the SDK would send one of these when no key is given
    if key:
        env["LANGGRAPH_API_KEY"] = key
    done = subprocess.run(
        ["node", "inbox.mjs"], cwd=JS, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def comparable(out: dict) -> dict:
    """What the inbox reads: the answers without thread ids, the /info check
    (its own test) and checkpoint metadata (run bookkeeping of each server
    that the inbox never shows)."""
    out = copy.deepcopy(out)
    out.pop("ids", None)
    out.pop("adding", None)
    for state in [*out["inbox"]["state"].values()] + [a["state"] for a in out["actions"].values()]:
        state.pop("metadata")
    return out


# The inbox's key is a reviewer's, not the admin's: decisions must be theirs.
REVIEWER = "inbox-reviewer"


@pytest.fixture(scope="module")
def inbox(js_sdk, served) -> dict:
    return run_inbox(served.api_url, served.key(served.user(REVIEWER)))


def reviews(served, ids: dict[str, str]) -> dict[str, dict]:
    """Each case's review tasks (tool, status, decided by, decision) and its
    audit trail after the run and its interrupt (action, actor)."""
    return served.query(
        "from reviews.models import AuditEvent, ReviewTask\n"
        "result = {}\n"
        f"for case, thread_id in {ids!r}.items():\n"
        "    tasks = ReviewTask.objects.filter(thread_id=thread_id).order_by('pk')\n"
        "    trail = AuditEvent.objects.filter(thread_id=thread_id).exclude(\n"
        "        action__in=['run.started', 'interrupt.raised']).order_by('pk')\n"
        "    result[case] = {\n"
        "        'tasks': [[t.tool_name, t.status, t.decided_by.username if t.decided_by"
        " else None, t.decision] for t in tasks],\n"
        "        'audit': [list(e) for e in trail.values_list('action', 'actor_name')]}\n"
    )


def test_the_inbox_lists_each_interrupted_thread_with_its_request(inbox):
    listed = {entry["thread"]["thread_id"]: entry for entry in inbox["inbox"]["interrupted"]}
    assert sorted(listed) == sorted(f"<thread:{case}>" for case in CASES)
    for case in CASES:
        entry = listed[f"<thread:{case}>"]
        assert entry["thread"]["status"] == "interrupted"
        assert entry["thread"]["metadata"]["graph_id"] == "support"
        [request] = entry["interrupts"]
        action = "send_email" if case == "ignore" else "refund"
        assert request["action_request"]["action"] == action
        assert request["config"]["allow_ignore"] is (case == "ignore")
        # Read from the thread itself: the inbox needs no state to show it.
        assert inbox["inbox"]["single"][case]["fromState"] is False
        assert inbox["inbox"]["single"][case]["interrupts"] == [request]
    assert inbox["inbox"]["all"] == [[f"<thread:{c}>", "interrupted"] for c in reversed(CASES)]
    # An inbox set up with the assistant's id instead of the graph's name.
    assert inbox["by_assistant_id"] == sorted(f"<thread:{c}>" for c in CASES)


def test_a_browser_page_may_read_every_answer(inbox):
    assert inbox["withheld"] == []


def test_each_answer_leaves_the_thread_done_and_out_of_the_inbox(inbox):
    actions = inbox["actions"]
    for case in CASES:
        assert actions[case]["thread"]["status"] == "idle", case
        assert actions[case]["thread"]["interrupts"] == {}, case
        assert actions[case].get("interrupts") is None, case
    for case in ("accept", "edit", "response"):
        streamed = actions[case]["streamed"]
        assert streamed["errors"] == []
        assert streamed["events"][0] == ["metadata", 1]
        assert [node for node, _ in streamed["nodes"]] == ["tools", "agent"]
    executed = {case: actions[case]["state"]["values"]["executed"] for case in CASES}
    assert executed["accept"][0]["result"] == "Refunded 1450.00 on order A-1002 (customer request)"
    assert executed["edit"][0]["result"] == "Refunded 99.00 on order A-1002 (partial refund)"
    assert executed["response"] == executed["ignore"] == executed["resolve"] == []
    last = {c: actions[c]["state"]["values"]["messages"][-1]["content"] for c in CASES}
    assert last["response"] == (
        "Done. A reviewer declined and said: Please send a photo of the parcel first."
    )
    assert last["ignore"] == "Done. A reviewer chose to skip this action."
    # Resolved where it stood: the refund was never run, nothing comes next.
    assert last["resolve"] == "This needs a person's approval."
    assert actions["resolve"]["state"]["next"] == []
    assert inbox["still_interrupted"] == []
    assert inbox["all_after"] == sorted([f"<thread:{c}>", "idle"] for c in CASES)
    assert inbox["idle_after"] == sorted(f"<thread:{c}>" for c in CASES)


def test_each_answer_decides_or_closes_the_review_task_as_the_keys_user(inbox, served):
    found = reviews(served, inbox["ids"])
    refund = {"order_id": "A-1002", "amount": 99, "reason": "partial refund"}
    message = "Please send a photo of the parcel first."
    assert found["accept"]["tasks"] == [["refund", "decided", REVIEWER, {"type": "accept"}]]
    assert found["edit"]["tasks"] == [
        ["refund", "decided", REVIEWER, {"type": "edit", "name": "refund", "args": refund}]
    ]
    assert found["response"]["tasks"] == [
        ["refund", "decided", REVIEWER, {"type": "response", "message": message}]
    ]
    assert found["ignore"]["tasks"] == [["send_email", "decided", REVIEWER, {"type": "ignore"}]]
    for case in ("accept", "edit", "response", "ignore"):
        assert found[case]["audit"] == [["task.decided", REVIEWER]], case
    # Mark as Resolved closes the review: no decision, the edit is audited.
    assert found["resolve"]["tasks"] == [["refund", "superseded", None, None]]
    assert found["resolve"]["audit"] == [["state.edited", REVIEWER]]


@pytest.mark.parametrize("case", ["accept", "edit"])
def test_the_inbox_decision_ends_as_the_same_resume_through_the_python_sdk(inbox, sdk, case):
    thread_id = str(uuid.uuid4())
    request = {"messages": [{"role": "user", "content": inbox_request_text(inbox)}]}
    sdk.runs.wait(thread_id, "support", input=request, if_not_exists="create")
    output = sdk.runs.wait(
        thread_id, "support", command={"resume": [inbox["actions"][case]["sent"]]}
    )
    values = inbox["actions"][case]["state"]["values"]
    assert output["executed"] == values["executed"]
    assert [(m["type"], m["content"]) for m in output["messages"]] == [
        (m["type"], m["content"]) for m in values["messages"]
    ]


def inbox_request_text(inbox: dict) -> str:
    return inbox["actions"]["accept"]["state"]["values"]["messages"][0]["content"]


def test_the_inbox_reads_what_it_reads_from_langgraph_dev(inbox):
    assert comparable(inbox) == json.loads(RECORDED.read_text())


def test_adding_the_inbox_finds_the_server_as_on_langgraph_dev(inbox):
    assert inbox["adding"] == {
        "reachable": True,
        "status": 200,
        "host": {"project_id": None, "tenant_id": None},
    }


def langgraph_program() -> str | None:
    return os.environ.get("LANGGRAPH_CLI") or shutil.which("langgraph")


def record(program: str) -> dict:
    """The script against `langgraph dev` serving the support graph alone
    (the dev server resolves graphs against its working directory, and
    writes its state there)."""
    with tempfile.TemporaryDirectory(prefix="hitl-inbox-dev-") as tmp:
        place = Path(tmp)
        shutil.copy(SUPPORT, place / "support.py")
        (place / "langgraph.json").write_text(
            '{"dependencies": ["."], "graphs": {"support": "./support.py:graph"}}'
        )
        port = free_port()
        env = {**os.environ, "LANGGRAPH_CLI_NO_ANALYTICS": "1"}
        with (place / "dev.log").open("w") as log:
            server = subprocess.Popen(
                [program, "dev", "--no-browser", "--no-reload", "--port", str(port)],
                cwd=place,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_port(port, timeout=120)
            out = run_inbox(f"http://127.0.0.1:{port}", None)
        finally:
            stop_all([server])
    assert out["adding"]["reachable"], out["adding"]
    return comparable(out)


def test_the_recording_is_what_langgraph_dev_answers_today(js_sdk):
    program = langgraph_program()
    if program is None:
        pytest.skip("no `langgraph` program (pip install 'langgraph-cli[inmem]', or LANGGRAPH_CLI)")
    assert record(program) == json.loads(RECORDED.read_text())


if __name__ == "__main__":
    # Record agent_inbox_langgraph_dev.json from `langgraph dev` (node_modules installed).
    program = sys.argv[1] if len(sys.argv) > 1 else langgraph_program()
    if program is None:
        raise SystemExit(
            "usage: python -m tests.agent_server.test_agent_inbox_js PATH-TO-langgraph"
        )
    RECORDED.write_text(json.dumps(record(program), indent=1, sort_keys=True) + "\n")
    print(f"wrote {RECORDED}")
