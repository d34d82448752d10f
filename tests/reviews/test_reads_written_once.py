"""The reads done on every request and every stop by a statement written once
(hitl_site.rows) make the instances the ORM makes: each field's value of
the same type (dates aware, JSON decoded, ids as UUIDs), on SQLite and on
PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from agent_server.assistants import stored
from agent_server.models import Assistant
from reviews.models import ApiToken, ReviewRule, current_rules


def fields(instance) -> dict:
    values = {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}
    return {name: (type(value), value) for name, value in values.items()}


def test_as_the_orm_reads_them(transactional_db):
    ann = get_user_model().objects.create_user("ann", "ann@example.com", first_name="Ann")
    ann.last_login = timezone.now()
    ann.save()
    token, key = ApiToken.issue(ann, "script", expires_in=timedelta(days=1))
    ApiToken.user_for(key)  # its last use written
    read = ApiToken._with_user(ApiToken._hash(key))
    orm = ApiToken.objects.select_related("user").get(pk=token.pk)
    assert fields(read) == fields(orm) and fields(read.user) == fields(orm.user)
    assert not read._state.adding and not read.user._state.adding
    assert ApiToken._with_user(ApiToken._hash("not a key")) is None

    assistant = Assistant.objects.create(
        graph_id="support", name="n", config={"configurable": {"tone": "dry"}}, metadata={"m": [1]}
    )
    assert fields(stored(assistant.pk)) == fields(Assistant.objects.get(pk=assistant.pk))
    assert stored(uuid.uuid4()) is None

    ReviewRule.objects.create(name="b", order=2, condition={"required": ["amount"]})
    ReviewRule.objects.create(name="a", order=1, tool_name="refund", deadline_minutes=5)
    assert [fields(r) for r in current_rules()] == [fields(r) for r in ReviewRule.objects.all()]
