from django.apps import AppConfig


class GraphsConfig(AppConfig):
    name = "graphs"
    verbose_name = "Graphs and checkpoints"

    def ready(self) -> None:
        from django.core import checks

        from graphs import events
        from graphs.checks import graphs_config
        from graphs.signals import run_queued

        run_queued.connect(
            lambda sender, run, **kwargs: events.wake_workers(),
            dispatch_uid="graphs.wake_workers",
            weak=False,
        )
        checks.register(graphs_config, "graphs")
