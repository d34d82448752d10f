"""On PostgreSQL, channel values are stored as the saver sends them.

The saver compresses every value of 2 KB and more itself (zstd, see
graphs.checkpoint.COMPRESS_MIN), so TOAST's own pglz pass over the blob
column only spends server CPU finding the bytes incompressible: about 0.1 ms
per 20 KB value. EXTERNAL keeps TOAST's out-of-line storage without that
pass. Pending writes keep the default: those to LangGraph's own channels are
stored as serialized (the worker reads them), and the server still compresses
a large one.
"""

from django.db import migrations

UP = "ALTER TABLE graphs_checkpointblob ALTER COLUMN blob SET STORAGE EXTERNAL"
DOWN = "ALTER TABLE graphs_checkpointblob ALTER COLUMN blob SET STORAGE EXTENDED"


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("graphs", "0007_thread_row_on_first_checkpoint")]

    operations = [migrations.RunPython(_on_postgresql(UP), _on_postgresql(DOWN))]
