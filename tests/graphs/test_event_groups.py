"""Each thread has a group of its own: pages hear only the threads they show."""

from __future__ import annotations

import re

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from graphs import events
from graphs.events import thread_group
from graphs.models import Run
from hitl_site.asgi import application

ORIGIN = (b"origin", b"http://testserver")
# Channels' own rule for group names.
VALID = re.compile(r"^[a-zA-Z\d\-_.]{1,99}$")


def test_ids_that_differ_only_in_unsafe_characters_get_their_own_groups():
    ids = ["leak/x", "leak_x", "leak x", "leak.x", "léak_x", "a" * 300, "a" * 301, ""]
    groups = [thread_group(thread_id) for thread_id in ids]
    assert len(set(groups)) == len(ids)
    assert all(VALID.match(group) for group in groups)
    assert thread_group("leak/x") == thread_group("leak/x")


@sync_to_async
def _setup() -> tuple[bytes, Run, Run]:
    user = get_user_model().objects.create_user("rita", password="pw-rita-123")
    client = Client()
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    slash = Run.enqueue(graph_name="echo", kind=Run.Kind.START, thread_id="leak/x")
    underscore = Run.enqueue(graph_name="echo", kind=Run.Kind.START, thread_id="leak_x")
    return cookie, slash, underscore


async def test_a_page_does_not_hear_a_thread_whose_id_looks_like_its_own(transactional_db):
    cookie, slash, underscore = await _setup()
    communicator = WebsocketCommunicator(
        application, "/ws/reviews/?threads=leak_x", headers=[ORIGIN, (b"cookie", cookie)]
    )
    assert (await communicator.connect())[0]
    # The other thread's event goes first, through the same ordered outbox:
    # had it reached this page, it would be the first thing the page reads.
    events.publish_run(slash, "interrupted")
    events.publish_run(underscore, "interrupted")
    first = await communicator.receive_from(timeout=5)
    while "run-" not in first:  # a queue fragment, if any
        first = await communicator.receive_from(timeout=5)
    assert f'id="run-{underscore.pk}-status"' in first
    assert f'id="run-{slash.pk}-status"' not in first
    await communicator.disconnect()
