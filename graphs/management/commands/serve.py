"""The embedded default: daphne and a worker in one process.

`make run` uses it with SQLite and the in-memory channel layer. The worker
wakes on runs queued in this process and sweeps the table every few seconds
for runs queued elsewhere (`startrun` from another shell) or left by a dead
worker. Its side duties (webhooks, deadlines) run as often, in a thread of
their own (graphs.duties).
"""

import logging
import threading

from channels.routing import get_default_application
from daphne.endpoints import build_endpoint_description_strings
from daphne.server import Server, twisted_loop
from django.core.management.base import BaseCommand
from django.db import connections
from twisted.web import http

from graphs import events
from graphs.duties import DutiesLoop
from graphs.signals import run_queued
from graphs.worker import new_worker_id, work
from hitl_site.checks import SERVICES

log = logging.getLogger(__name__)


class EmbeddedWorker(threading.Thread):
    def __init__(self, sweep_seconds: float):
        super().__init__(name="embedded-worker", daemon=True)
        self.sweep_seconds = sweep_seconds
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.worker_id = new_worker_id()

    def run(self) -> None:
        self.duties = DutiesLoop(self.worker_id, self.sweep_seconds)
        self.duties.start()
        run_queued.connect(self._on_queued, dispatch_uid="serve.embedded_worker", weak=False)
        try:
            while not self.stopping.is_set():
                try:
                    work(self.worker_id, stop=self.stopping.is_set)
                except Exception:  # keep serving; the run row records its own failure
                    log.exception("embedded worker loop failed; retrying after the next sweep")
                self.wake.wait(self.sweep_seconds)
                self.wake.clear()
        finally:
            run_queued.disconnect(dispatch_uid="serve.embedded_worker")
            self.duties.stop()
            connections.close_all()

    def _on_queued(self, sender, run, **kwargs) -> None:
        self.wake.set()
        self.duties.wake()


# Twisted drops, without a word, a connection whose request line or any
# header line passes HTTPChannel.MAX_LENGTH (16 KiB). Lines up to LINE_LIMIT
# are read, so the site answers a long address with a 414 that says why
# (hitl_site.middleware.request_guard); past it Twisted still drops them.
LINE_LIMIT = 256 * 1024


def read_long_lines() -> None:
    http.HTTPChannel.MAX_LENGTH = LINE_LIMIT
    http.HTTPChannel.totalHeadersSize = LINE_LIMIT + 16 * 1024  # the headers after it


class Command(BaseCommand):
    help = "Serve the dashboard (daphne) with a graph worker in the same process."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-worker", action="store_true", help="serve pages only")
        parser.add_argument("--sweep", type=float, default=2.0, help="seconds between queue sweeps")

    def handle(self, *args, host: str, port: int, no_worker: bool, sweep: float, **options) -> None:
        # An unreachable database or Redis stops start-up here, with a message
        # that names it, rather than failing on the first request.
        self.check(tags=[SERVICES], include_deployment_checks=True)
        read_long_lines()
        # Consumers wait on daphne's loop: the worker thread publishes there.
        events.serve_on(twisted_loop)
        worker = None
        if not no_worker:
            worker = EmbeddedWorker(sweep)
            worker.start()
        self.stdout.write(
            f"Serving http://{host}:{port}/ {'(pages only)' if no_worker else 'with a worker'}"
        )
        try:
            Server(
                application=get_default_application(),
                endpoints=build_endpoint_description_strings(host=host, port=port),
                signal_handlers=True,
            ).run()
        finally:
            if worker is not None:
                worker.stopping.set()
                worker.wake.set()
                worker.join(timeout=10)
