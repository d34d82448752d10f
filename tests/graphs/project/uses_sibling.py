import os
from typing import TypedDict

from helpers import shout  # the module beside this one
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt


class Said(TypedDict, total=False):
    text: str
    said: str


def speak(state: Said) -> Said:
    answer = interrupt({"question": "say it?", "text": state["text"]})
    return {"said": f"{shout(state['text'])} {answer} ({os.environ['HITL_PROJECT_GREETING']})"}


_builder = StateGraph(Said)
_builder.add_node("speak", speak)
_builder.add_edge(START, "speak")
_builder.add_edge("speak", END)
graph = _builder.compile()
