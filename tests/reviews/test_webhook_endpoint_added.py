"""Whether any webhook endpoint listens is asked at each stop, not remembered:
an endpoint another process adds hears the very next one."""

from __future__ import annotations

import json

from django.db import connections

from reviews.models import WebhookDelivery, WebhookEndpoint
from tests.reviews.conftest import pending, start

REFUND = {"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]}


def test_an_endpoint_added_through_another_connection_hears_the_next_stop(transactional_db):
    pending(start("support", REFUND))
    assert not WebhookDelivery.objects.exists()
    other = connections.create_connection("default")  # as another process holds its own
    try:
        table = other.ops.quote_name(WebhookEndpoint._meta.db_table)
        with other.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (name, url, secret, events, active)"
                " VALUES (%s, %s, %s, %s, %s)",
                ["bot", "http://127.0.0.1:9/", "s3cret", json.dumps(["task.created"]), True],
            )
    finally:
        other.close()
    (task,) = pending(start("support", REFUND))
    (delivery,) = WebhookDelivery.objects.all()
    assert (delivery.event, delivery.payload["id"]) == ("task.created", task.pk)
