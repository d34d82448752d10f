"""The database creates the Thread row for a checkpoint's thread_id.

Every checkpoint insert needs its thread row; a trigger does it in the same
statement, so the saver spends no extra statement per step and the rule holds
for every process that writes checkpoints.
"""

from django.db import migrations

SQLITE_UP = """
CREATE TRIGGER graphs_checkpoint_thread AFTER INSERT ON graphs_checkpoint
BEGIN
    INSERT OR IGNORE INTO graphs_thread (thread_id, graph_name, title, created_at)
    VALUES (NEW.thread_id, '', '', strftime('%Y-%m-%d %H:%M:%f', 'now'));
END;
"""
SQLITE_DOWN = "DROP TRIGGER IF EXISTS graphs_checkpoint_thread;"

POSTGRES_UP = """
CREATE FUNCTION graphs_checkpoint_thread() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO graphs_thread (thread_id, graph_name, title, created_at)
    VALUES (NEW.thread_id, '', '', now())
    ON CONFLICT (thread_id) DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER graphs_checkpoint_thread AFTER INSERT ON graphs_checkpoint
    FOR EACH ROW EXECUTE FUNCTION graphs_checkpoint_thread();
"""
POSTGRES_DOWN = """
DROP TRIGGER IF EXISTS graphs_checkpoint_thread ON graphs_checkpoint;
DROP FUNCTION IF EXISTS graphs_checkpoint_thread();
"""


def _run(sql_by_vendor):
    def run(apps, schema_editor):
        sql = sql_by_vendor.get(schema_editor.connection.vendor)
        if sql is None:
            raise RuntimeError(f"no thread trigger for {schema_editor.connection.vendor}")
        schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("graphs", "0001_checkpoints")]

    operations = [
        migrations.RunPython(
            _run({"sqlite": SQLITE_UP, "postgresql": POSTGRES_UP}),
            _run({"sqlite": SQLITE_DOWN, "postgresql": POSTGRES_DOWN}),
        )
    ]
