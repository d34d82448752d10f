"""Walk the audit trail's hash chain and name the first row that doesn't match;
against saved anchors, show rows removed from its end."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from reviews.audit_chain import AnchorInvalid, anchor_problem, audit_key, check_anchor, read_anchor
from reviews.models import AuditEvent


class Command(BaseCommand):
    help = (
        "Check that no audit event was changed or removed after it was written; with "
        "--anchor, also that none up to the anchor's head was removed from the end."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--anchor",
            action="append",
            default=[],
            metavar="FILE",
            help="an anchor from `manage.py audit_anchor`, or a saved CSV or JSON Lines "
            "export (its last line); may be given more than once",
        )

    def handle(self, *args, anchor: list[str], **options) -> None:
        anchors = [(path, _load(path)) for path in anchor]
        verdict = AuditEvent.verify(marks={saved["last_id"] for _, saved in anchors})
        if verdict.broken is not None:
            pk, why = verdict.broken
            raise CommandError(f"audit event {pk} does not verify: {why}.")
        for path, saved in anchors:
            problem = anchor_problem(saved, verdict)
            if problem:
                raise CommandError(f"the audit trail does not match the anchor {path}: {problem}.")
        self.stdout.write(f"The audit trail verifies: {verdict.count} event(s), chain intact.")
        for path, saved in anchors:
            self.stdout.write(
                f"No event up to {saved['last_id']} was removed or changed since the anchor "
                f"{path} ({saved['count']} event(s), {saved['at']})."
            )


def _load(path: str) -> dict:
    try:
        saved = read_anchor(Path(path).read_text(encoding="utf-8"))
        check_anchor(saved, audit_key())
    except OSError as exc:
        raise CommandError(f"can't read the anchor {path}: {exc.strerror}") from None
    except AnchorInvalid as exc:
        raise CommandError(f"the anchor {path} is not usable: {exc}.") from None
    return saved
