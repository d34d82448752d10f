"""Queue a run from the command line: manage.py startrun GRAPH --input JSON."""

import json

from django.core.management.base import BaseCommand, CommandError

from graphs.models import Run
from graphs.registry import GraphNotFound, get_registry
from graphs.worker import new_worker_id, work


class Command(BaseCommand):
    help = "Queue a run of a registered graph and print its thread id."

    def add_arguments(self, parser) -> None:
        parser.add_argument("graph", help="a graph name from the langgraph.json")
        parser.add_argument("--input", default="{}", help="the graph's input, as JSON")
        parser.add_argument("--thread", help="an existing or new thread id (default: a new one)")
        parser.add_argument("--title", default="", help="a title for a new thread")
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
        execute: bool,
        **options,
    ):
        try:
            get_registry().get(graph)
        except GraphNotFound as exc:
            raise CommandError(str(exc)) from exc
        try:
            payload = json.loads(input)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--input is not valid JSON: {exc}") from exc
        run = Run.enqueue(
            graph_name=graph, kind=Run.Kind.START, thread_id=thread, payload=payload, title=title
        )
        self.stdout.write(run.thread_id)
        if execute:
            work(new_worker_id())
            run.refresh_from_db()
            self.stderr.write(f"run {run.pk}: {run.status}{': ' + run.error if run.error else ''}")
