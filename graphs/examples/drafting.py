"""Drafts a post, asks a person for feedback, and stops before publishing.

The feedback node calls `interrupt(question, response_schema=...)`: the
dashboard builds a typed form from the schema and LangGraph checks the answer
against it. A static breakpoint (`interrupt_before=["publish"]`) gives the
reviewer a last look, or a chance to edit the state, before anything goes out.

Input: {"topic": "Our new refund policy"}
"""

from __future__ import annotations

from typing import Annotated, Any

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict  # pydantic reads its schema on Python 3.11

FEEDBACK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Feedback on the draft",
    "properties": {
        "approved": {"type": "boolean", "title": "Good to publish as is"},
        "tone": {"type": "string", "enum": ["formal", "friendly", "playful"], "title": "Tone"},
        "max_words": {"type": "integer", "minimum": 10, "maximum": 500, "title": "Word limit"},
        "notes": {"type": "string", "title": "Notes for the writer"},
    },
    "required": ["approved", "tone"],
    "additionalProperties": False,
}


def _append(left: list[str], right: list[str]) -> list[str]:
    return [*left, *right]


class DraftState(TypedDict, total=False):
    topic: str
    draft: str
    feedback: dict[str, Any]
    revisions: Annotated[list[str], _append]
    published: str


def write_draft(state: DraftState) -> DraftState:
    topic = state.get("topic") or "an announcement"
    return {"draft": f"Announcing: {topic}. Here is what changes and why it matters to you."}


def ask_feedback(state: DraftState) -> DraftState:
    answer = interrupt(
        {
            "question": "How should this draft change before it is published?",
            "draft": state["draft"],
        },
        response_schema=FEEDBACK_SCHEMA,
    )
    return {"feedback": answer}


def revise(state: DraftState) -> DraftState:
    feedback = state.get("feedback") or {}
    draft = state["draft"]
    if not feedback.get("approved"):
        tone = feedback.get("tone", "formal")
        opener = {"friendly": "Hi all!", "playful": "Guess what?"}.get(tone, "Notice:")
        draft = f"{opener} {draft}"
        if notes := feedback.get("notes"):
            draft = f"{draft} ({notes})"
    if limit := feedback.get("max_words"):
        draft = " ".join(draft.split()[:limit])
    return {"draft": draft, "revisions": [draft]}


def publish(state: DraftState) -> DraftState:
    return {"published": state["draft"]}


builder = StateGraph(DraftState)
builder.add_node("write_draft", write_draft)
builder.add_node("ask_feedback", ask_feedback)
builder.add_node("revise", revise)
builder.add_node("publish", publish)
builder.add_edge(START, "write_draft")
builder.add_edge("write_draft", "ask_feedback")
builder.add_edge("ask_feedback", "revise")
builder.add_edge("revise", "publish")
builder.add_edge("publish", END)
graph = builder.compile(interrupt_before=["publish"])
