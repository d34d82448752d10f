"""The start page: an example input, a sentence for a message list, and the
graph's own working state kept apart from what a person starts it with."""

from __future__ import annotations

from django.urls import reverse

from graphs.models import Run


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
