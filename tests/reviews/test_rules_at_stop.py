"""A stop's tasks fall under the rules as the database holds them at that
stop: a rule added, changed or removed by any process, by any means (here a
bare UPDATE, as another process or a script would write it), counts for the
next stop at once."""

from __future__ import annotations

from datetime import timedelta

from reviews.models import ReviewRule
from tests.reviews.conftest import pending
from tests.reviews.rows import stopped

REFUND = {"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]}


def asked():
    (task,) = pending(stopped("support", REFUND))
    return task


def test_each_stop_reads_the_rules_as_they_are_now(transactional_db):
    rule = ReviewRule.objects.create(
        name="refunds", graph_name="support", tool_name="refund", deadline_minutes=60
    )
    first = asked()
    assert first.rule == rule
    assert timedelta(minutes=59) < first.due_at - first.created_at <= timedelta(minutes=61)

    ReviewRule.objects.filter(pk=rule.pk).update(tool_name="charge")
    second = asked()
    assert second.rule is None and second.due_at is None

    over_100 = {"properties": {"amount": {"exclusiveMinimum": 100}}, "required": ["amount"]}
    ReviewRule.objects.filter(pk=rule.pk).update(
        tool_name="refund", condition=over_100, deadline_minutes=5
    )
    third = asked()
    assert third.rule == rule
    assert timedelta(minutes=4) < third.due_at - third.created_at <= timedelta(minutes=6)

    ReviewRule.objects.filter(pk=rule.pk).update(
        condition={**over_100, "properties": {"amount": {"exclusiveMinimum": 500}}}
    )
    assert asked().rule is None

    earlier = ReviewRule.objects.create(name="all support", order=1, graph_name="support")
    ReviewRule.objects.filter(pk=rule.pk).update(condition=None)
    assert asked().rule == earlier

    ReviewRule.objects.filter(pk=earlier.pk).delete()
    assert asked().rule == rule
