"""Every action lives in reviews/actions/ and leaves through `emit`: the
adapters (pages, the JSON API, the Agent Server API, the deadline sweep) only
parse, ask reviews/access.py and call an action."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Outside the actions, emit records only what is no person's action on a
# review: a run's own stops (the worker's transaction), and changes to who
# may do what, made in admin or by management commands.
EMITTERS_OUTSIDE_ACTIONS = {"reviews/receivers.py", "reviews/audited.py"}
ADAPTERS = ("reviews/views.py", "reviews/api.py", "reviews/escalation.py", "agent_server")


def _python(*roots: str):
    for root in roots:
        path = ROOT / root
        for file in [path] if path.suffix == ".py" else sorted(path.rglob("*.py")):
            if "/migrations/" not in str(file):
                yield str(file.relative_to(ROOT)), ast.parse(file.read_text())


def _calls(tree: ast.AST, name: str) -> list[int]:
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == name)
            or (isinstance(node.func, ast.Attribute) and node.func.attr == name)
        )
    ]


def _imports(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_only_actions_emit():
    emitting = {
        name
        for name, tree in _python("reviews", "graphs", "agent_server", "hitl_site")
        if _calls(tree, "emit") and not name.startswith(("reviews/actions/", "reviews/emit.py"))
    }
    assert emitting == EMITTERS_OUTSIDE_ACTIONS


def test_adapters_queue_no_run_and_write_no_task_themselves():
    """Queueing a run or changing a task's status is an action's write."""
    found = {}
    for name, tree in _python(*ADAPTERS):
        lines = _calls(tree, "enqueue")
        source = (ROOT / name).read_text()
        if "status=ReviewTask.Status." in source and ".update(" in source:
            lines.append(0)
        if lines:
            found[name] = lines
    assert found == {}


def test_adapters_do_not_import_each_other():
    assert "reviews.views" not in _imports(dict(_python("reviews/api.py"))["reviews/api.py"])
    escalation = _imports(dict(_python("reviews/escalation.py"))["reviews/escalation.py"])
    assert not {m for m in escalation if m.endswith(("_form", "_forms", "views", "api"))}
