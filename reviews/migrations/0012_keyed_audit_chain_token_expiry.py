# The audit chain is keyed (HMAC-SHA256 with AUDIT_KEY) from here on; API
# tokens may expire; webhook secrets say how deliveries are signed now.

from django.db import migrations, models
from django.utils import timezone

from reviews.audit_chain import GENESIS, KEYED, audit_key, keyed_row_hash

AUDIT_CHAIN_LOCK = 7_240_001  # as reviews.audit_log


def seal_unkeyed_rows(apps, schema_editor):
    """After the rows hashed without a key, one keyed row that links to the
    last of them. verify_audit refuses a trail with no keyed row after its
    unkeyed ones, so rewriting every row with the plain hash can't pass."""
    AuditEvent = apps.get_model("reviews", "AuditEvent")
    events = AuditEvent.objects.using(schema_editor.connection.alias)
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [AUDIT_CHAIN_LOCK])
    head = events.order_by("-id").values("id", "hash").first()
    if head is None:
        return  # a new trail: every row will be keyed
    seal = AuditEvent(
        created_at=timezone.now(),
        action="audit.keyed",
        after={"unkeyed_rows": events.count(), "last_unkeyed": head["id"]},
        prev_hash=head["hash"] or GENESIS,
        hash_version=KEYED,
    )
    seal.hash = keyed_row_hash(seal.__dict__, seal.prev_hash, audit_key())
    seal.save(using=schema_editor.connection.alias, force_insert=True)


class Migration(migrations.Migration):
    dependencies = [
        ("reviews", "0011_queue_indexes"),
    ]

    operations = [
        # Existing rows were hashed without a key (version 1); new ones are keyed.
        migrations.AddField(
            model_name="auditevent",
            name="hash_version",
            field=models.PositiveSmallIntegerField(default=1, editable=False),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="hash_version",
            field=models.PositiveSmallIntegerField(default=2, editable=False),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="expires_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="webhookendpoint",
            name="secret",
            field=models.CharField(
                help_text=(
                    "Signs each delivery as Standard Webhooks does. Headers: webhook-id (the "
                    "delivery's id, the same on every retry), webhook-timestamp (Unix seconds "
                    'of this attempt) and webhook-signature: "v1," then the base64 '
                    'HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}" under a key: '
                    "the secret's UTF-8 bytes, or for a secret starting whsec_ the base64 "
                    "bytes after it. A receiver recomputes the signature over the raw body, "
                    "compares it in constant time, refuses a timestamp more than 5 minutes "
                    "from its clock and an id it has already seen. X-HITL-Signature: "
                    "sha256=HMAC(secret, body) is still sent for older receivers; it signs "
                    "the body only, so a captured request can be replayed."
                ),
                max_length=200,
            ),
        ),
        migrations.RunPython(seal_unkeyed_rows, migrations.RunPython.noop),
    ]
