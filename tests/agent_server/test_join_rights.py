"""Joining a run's stream with `cancel_on_disconnect` lets the client stop the
run by leaving: only someone who may cancel the run may ask for that."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group, User
from django.test import AsyncClient

from graphs.models import Run
from reviews.models import ReviewRule
from reviews.tokens import ApiToken

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def a_viewer_and_a_queued_run() -> tuple[str, Run]:
    viewers = Group.objects.create(name="viewers")
    user = User.objects.create_user("vic")
    user.groups.add(viewers)
    rule = ReviewRule.objects.create(name="support viewers", graph_name="support")
    rule.view_groups.add(viewers)
    _, key = ApiToken.issue(user, "inbox")
    return key, Run.enqueue(graph_name="support", kind=Run.Kind.START, payload={})


async def test_a_viewer_may_follow_a_run_but_not_ask_to_cancel_it_by_leaving():
    key, run = await a_viewer_and_a_queued_run()
    client, key_header = AsyncClient(), {"headers": {"x-api-key": key}}
    base = f"/langgraph/threads/{run.thread_id}/runs/{run.run_id}"
    assert (await client.post(base + "/cancel", **key_header)).status_code == 403

    refused = await client.get(base + "/stream?cancel_on_disconnect=true", **key_header)
    assert refused.status_code == 403

    followed = await client.get(base + "/stream", **key_header)
    assert followed.status_code == 200
    events = followed.streaming_content.__aiter__()
    assert await events.__anext__()  # it is told the server follows the run
    await events.aclose()  # and leaves
    status = await sync_to_async(lambda: Run.objects.get(pk=run.pk).status)()
    assert status == Run.Status.QUEUED
