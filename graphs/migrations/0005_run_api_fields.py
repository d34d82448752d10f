from django.db import migrations, models

import graphs.models


def give_runs_ids(apps, schema_editor):
    """Runs queued before this migration get an id of their own each."""
    Run = apps.get_model("graphs", "Run")
    db = schema_editor.connection.alias
    for pk in Run.objects.using(db).filter(run_id__isnull=True).values_list("pk", flat=True):
        Run.objects.using(db).filter(pk=pk).update(run_id=graphs.models.new_run_id())


class Migration(migrations.Migration):
    dependencies = [
        ("graphs", "0004_run_config_and_context"),
    ]

    operations = [
        migrations.AddField(
            model_name="thread",
            name="metadata",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="run",
            name="kind",
            field=models.CharField(
                choices=[
                    ("start", "start with input"),
                    ("resume", "resume an interrupt"),
                    ("continue", "continue after a breakpoint or edit"),
                    ("replay", "replay from a checkpoint"),
                    ("fork", "fork from a checkpoint"),
                    ("command", "a command (update, goto)"),
                ],
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="run",
            name="run_id",
            field=models.UUIDField(editable=False, null=True),
        ),
        migrations.RunPython(give_runs_ids, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="run",
            name="run_id",
            field=models.UUIDField(default=graphs.models.new_run_id, editable=False, unique=True),
        ),
        migrations.AddField(
            model_name="run",
            name="assistant_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="run",
            name="metadata",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="run",
            name="kwargs",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="run",
            name="multitask_strategy",
            field=models.CharField(blank=True, default="", max_length=16),
        ),
        migrations.AddField(
            model_name="run",
            name="stream_mode",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="run",
            name="stream_subgraphs",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="run",
            name="temporary",
            field=models.BooleanField(default=False),
        ),
    ]
