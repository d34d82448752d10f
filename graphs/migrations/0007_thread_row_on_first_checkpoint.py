"""The thread row is made by a thread's first checkpoint only.

Every checkpoint after the first names its parent, whose insert already made
the row, so the trigger fires only for checkpoints without a parent (a
thread's first, a subgraph call's first). On PostgreSQL this saves a PL/pgSQL
call on every later step: about 190 us of server CPU per round trip of
bench/checkpointer.py's approval graph (six checkpoints).
"""

from django.db import migrations

SQLITE_UP = """
DROP TRIGGER IF EXISTS graphs_checkpoint_thread;
CREATE TRIGGER graphs_checkpoint_thread AFTER INSERT ON graphs_checkpoint
WHEN NEW.parent_checkpoint_id IS NULL
BEGIN
    INSERT OR IGNORE INTO graphs_thread (thread_id, graph_name, title, created_at)
    VALUES (NEW.thread_id, '', '', strftime('%Y-%m-%d %H:%M:%f', 'now'));
END;
"""
SQLITE_DOWN = """
DROP TRIGGER IF EXISTS graphs_checkpoint_thread;
CREATE TRIGGER graphs_checkpoint_thread AFTER INSERT ON graphs_checkpoint
BEGIN
    INSERT OR IGNORE INTO graphs_thread (thread_id, graph_name, title, created_at)
    VALUES (NEW.thread_id, '', '', strftime('%Y-%m-%d %H:%M:%f', 'now'));
END;
"""

POSTGRES_UP = """
DROP TRIGGER IF EXISTS graphs_checkpoint_thread ON graphs_checkpoint;
CREATE TRIGGER graphs_checkpoint_thread AFTER INSERT ON graphs_checkpoint
    FOR EACH ROW WHEN (NEW.parent_checkpoint_id IS NULL)
    EXECUTE FUNCTION graphs_checkpoint_thread();
"""
POSTGRES_DOWN = """
DROP TRIGGER IF EXISTS graphs_checkpoint_thread ON graphs_checkpoint;
CREATE TRIGGER graphs_checkpoint_thread AFTER INSERT ON graphs_checkpoint
    FOR EACH ROW EXECUTE FUNCTION graphs_checkpoint_thread();
"""


def _run(sql_by_vendor):
    def run(apps, schema_editor):
        sql = sql_by_vendor.get(schema_editor.connection.vendor)
        if sql is None:
            raise RuntimeError(f"no thread trigger for {schema_editor.connection.vendor}")
        if schema_editor.connection.vendor == "sqlite":
            # One statement per call on SQLite; a trigger body holds its own ";".
            drop, create = sql.strip().split(";\n", 1)
            schema_editor.execute(drop, params=None)
            schema_editor.execute(create, params=None)
        else:
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("graphs", "0006_run_kinds_without_fork")]

    operations = [
        migrations.RunPython(
            _run({"sqlite": SQLITE_UP, "postgresql": POSTGRES_UP}),
            _run({"sqlite": SQLITE_DOWN, "postgresql": POSTGRES_DOWN}),
        )
    ]
