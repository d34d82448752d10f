# The audit trail's hash chain, and on PostgreSQL a trigger that refuses to
# change or delete its rows.

from django.db import migrations, models

from reviews.audit_chain import GENESIS, row_hash

TRIGGER = """
CREATE FUNCTION reviews_auditevent_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are only ever added (% refused on reviews_auditevent)', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER reviews_auditevent_immutable
    BEFORE UPDATE OR DELETE ON reviews_auditevent
    FOR EACH ROW EXECUTE FUNCTION reviews_auditevent_immutable();
"""
DROP_TRIGGER = """
DROP TRIGGER IF EXISTS reviews_auditevent_immutable ON reviews_auditevent;
DROP FUNCTION IF EXISTS reviews_auditevent_immutable();
"""


def chain_existing_rows(apps, schema_editor):
    # Rows written before the chain existed join it in id order (raw SQL: the
    # model refuses updates, and so will the trigger created next).
    table = "reviews_auditevent"
    AuditEvent = apps.get_model("reviews", "AuditEvent")
    prev = GENESIS
    with schema_editor.connection.cursor() as cursor:
        for row in AuditEvent.objects.order_by("id").values():
            digest = row_hash(row, prev)
            cursor.execute(
                f"UPDATE {table} SET prev_hash = %s, hash = %s WHERE id = %s",
                [prev, digest, row["id"]],
            )
            prev = digest


def create_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TRIGGER, params=None)


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_TRIGGER, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("reviews", "0002_decisions_and_audit"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(default="", editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="prev_hash",
            field=models.CharField(default="", editable=False, max_length=64),
        ),
        migrations.RunPython(chain_existing_rows, migrations.RunPython.noop),
        migrations.RunPython(create_trigger, drop_trigger),
    ]
