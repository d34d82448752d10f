"""Channels' `runworker`, which on `graph-runs` also looks at the queue as it starts.

Wake-ups are sent to workers that are listening: runs queued while none was
(or left by a worker that died) would otherwise wait for the next wake-up.
As it stops, the side duties finish what they have in flight (a webhook
attempt within its timeout) rather than being cut off or draining a backlog.
"""

from __future__ import annotations

from channels.management.commands import runworker
from channels.worker import Worker

from graphs import duties
from graphs.events import RUNS_CHANNEL
from hitl_site.checks import SERVICES


class GraphWorker(Worker):
    async def handle(self) -> None:
        if RUNS_CHANNEL in self.channels:
            scope = {"type": "channel", "channel": RUNS_CHANNEL}
            instance = self.get_or_create_application_instance(RUNS_CHANNEL, scope)
            await instance.put({"type": "runs.wake"})
        await super().handle()

    def run(self) -> None:
        try:
            super().run()
        finally:
            duties.stop()


class Command(runworker.Command):
    worker_class = GraphWorker

    def handle(self, *args, **options):
        # A worker that starts against an unreachable database or Redis
        # would wait for wake-ups that never come.
        self.check(tags=[SERVICES], include_deployment_checks=True)
        return super().handle(*args, **options)
