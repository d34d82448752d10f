"""Print the audit chain's head, signed: kept elsewhere (cron ships it), it
lets `verify_audit --anchor` show rows removed from the trail's end."""

import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from reviews.audit_chain import anchor_line
from reviews.models import AuditEvent


class Command(BaseCommand):
    help = (
        "Check the audit chain, then print its head (last id, hash, row count) signed with "
        "AUDIT_KEY, for safe keeping outside the database."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--output", metavar="FILE", help="write the anchor to FILE too (replaced whole)"
        )

    def handle(self, *args, output: str | None, **options) -> None:
        # An anchor says the trail was whole up to its head: never sign one
        # over rows that already fail.
        verdict = AuditEvent.verify()
        if verdict.broken is not None:
            pk, why = verdict.broken
            raise CommandError(f"not anchoring: audit event {pk} does not verify: {why}.")
        line = anchor_line(AuditEvent.anchor(verdict))
        if output:
            path = Path(output)
            partial = path.with_name(path.name + ".partial")
            partial.write_text(line + "\n", encoding="utf-8")
            os.replace(partial, path)  # a reader never sees half an anchor
        self.stdout.write(line)
