"""Queue a run from the command line: manage.py startrun GRAPH --input JSON."""

import json

from django.core.management.base import BaseCommand, CommandError

from graphs.models import Run
from graphs.registry import GraphNotFound, get_registry
from graphs.run_settings import config_problems, context_problems
from graphs.worker import compiled_graph, new_worker_id, work


class Command(BaseCommand):
    help = "Queue a run of a registered graph and print its thread id."

    def add_arguments(self, parser) -> None:
        parser.add_argument("graph", help="a graph name from the langgraph.json")
        parser.add_argument("--input", default="{}", help="the graph's input, as JSON")
        parser.add_argument("--thread", help="an existing or new thread id (default: a new one)")
        parser.add_argument("--title", default="", help="a title for a new thread")
        parser.add_argument(
            "--config",
            default="{}",
            help="LangGraph config as JSON: configurable, recursion_limit, tags, metadata",
        )
        parser.add_argument("--context", help="the runtime context as JSON (a context_schema's)")
        parser.add_argument(
            "--execute",
            action="store_true",
            help="run it in this process instead of waiting for a worker",
        )

    def handle(
        self,
        *args,
        graph: str,
        input: str,
        thread: str | None,
        title: str,
        config: str,
        context: str | None,
        execute: bool,
        **options,
    ):
        try:
            get_registry().get(graph)
        except GraphNotFound as exc:
            raise CommandError(str(exc)) from exc
        payload, run_config, run_context = (
            _json("--input", input),
            _json("--config", config),
            _json("--context", context) if context is not None else None,
        )
        problems = config_problems(run_config) + context_problems(
            compiled_graph(graph), run_context
        )
        if problems:
            raise CommandError(" ".join(problems))
        run = Run.enqueue(
            graph_name=graph,
            kind=Run.Kind.START,
            thread_id=thread,
            payload=payload,
            title=title,
            config=run_config,
            context=run_context,
        )
        self.stdout.write(run.thread_id)
        if execute:
            work(new_worker_id())
            run.refresh_from_db()
            self.stderr.write(f"run {run.pk}: {run.status}{': ' + run.error if run.error else ''}")


def _json(option: str, text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{option} is not valid JSON: {exc}") from exc
