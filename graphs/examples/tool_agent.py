"""A langchain v1 `create_agent` with `HumanInTheLoopMiddleware`, batched.

A scripted chat model stands in for an LLM: asked about a trip, it calls three
tools in one turn (search flights, book a flight, charge a card). The two that
spend money wait for a person; the middleware raises one interrupt listing
both calls, resumed with `{"decisions": [...]}` in the same order.

Input: {"messages": [{"role": "user", "content": "Book me a flight to Lisbon for 2 people"}]}
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool


@tool
def search_flights(destination: str, passengers: int = 1) -> str:
    """Find flights to a destination."""
    return f"3 flights to {destination} for {passengers}; cheapest FL-204 at 180.00 each"


@tool
def book_flight(flight: str, passengers: int) -> str:
    """Book seats on a flight."""
    return f"Booked {passengers} seat(s) on {flight}"


@tool
def charge_card(amount: float, currency: str = "EUR") -> str:
    """Charge the customer's card on file."""
    return f"Charged {amount:.2f} {currency}"


class ScriptedChatModel(BaseChatModel):
    """Answers from the conversation alone, so every thread replays the same way."""

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChatModel:
        return self

    def _generate(
        self, messages: list[BaseMessage], stop=None, run_manager=None, **kwargs
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._reply(messages))])

    def _reply(self, messages: list[BaseMessage]) -> AIMessage:
        if messages and isinstance(messages[-1], ToolMessage):
            results = [m for m in messages if isinstance(m, ToolMessage)]
            summary = "; ".join(str(m.content) for m in results[-3:])
            return AIMessage(content=f"All set. {summary}")
        humans = [m for m in messages if isinstance(m, HumanMessage)]
        text = str(humans[-1].content) if humans else ""
        place = re.search(r"\bto ([A-Z][a-z]+)", text)
        count = re.search(r"(\d+) (?:people|passengers|seats)", text)
        destination = place.group(1) if place else "Lisbon"
        passengers = int(count.group(1)) if count else 1

        def call(name: str, args: dict[str, Any]) -> dict[str, Any]:
            return {
                "name": name,
                "args": args,
                "id": f"call_{uuid.uuid4().hex[:12]}",
                "type": "tool_call",
            }

        return AIMessage(
            content="Searching, booking and paying in one go.",
            tool_calls=[
                call("search_flights", {"destination": destination, "passengers": passengers}),
                call("book_flight", {"flight": "FL-204", "passengers": passengers}),
                call("charge_card", {"amount": 180.0 * passengers, "currency": "EUR"}),
            ],
        )


graph = create_agent(
    model=ScriptedChatModel(),
    tools=[search_flights, book_flight, charge_card],
    system_prompt="You are a travel agent.",
    middleware=[
        HumanInTheLoopMiddleware(
            interrupt_on={
                "book_flight": {"allowed_decisions": ["approve", "edit", "reject"]},
                "charge_card": True,
                "search_flights": False,
            },
            description_prefix="Spending the customer's money",
        )
    ],
)
