"""A demo team rule, so `make run` shows rules, quorum and deadlines at work."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from reviews.audited import changed, rule_summary, user_summary
from reviews.models import ReviewRule

RULE = "Refunds over 1000: two of finance, within the hour"


class Command(BaseCommand):
    help = "Create the demo finance group and its rule for large refunds (once)."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        finance, _ = Group.objects.get_or_create(name="finance")
        # Who may approve changes here as in admin: in the trail.
        for user in get_user_model().objects.filter(username__in=["reviewer", "reviewer2"]):
            if user.groups.filter(pk=finance.pk).exists():
                continue
            before = user_summary(user)
            user.groups.add(finance)
            changed("user.changed", before, user_summary(user))
        rule, created = ReviewRule.objects.get_or_create(
            name=RULE,
            defaults={
                "order": 10,
                "graph_name": "support",
                "tool_name": "refund",
                "condition": {
                    "properties": {"amount": {"exclusiveMinimum": 1000}},
                    "required": ["amount"],
                },
                "required_approvals": 2,
                "deadline_minutes": 60,
            },
        )
        if created:
            rule.review_groups.add(finance)
            changed("rule.changed", None, rule_summary(rule), graph_name="support")
        self.stdout.write(
            f"Demo rule: {RULE!r} (group finance: reviewer, reviewer2; try "
            "'Please refund order A-1002, $2400' on the support graph)."
        )
