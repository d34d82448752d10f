"""The embedded default's channel layer."""

from __future__ import annotations

import time

from channels.layers import InMemoryChannelLayer


class EmbeddedChannelLayer(InMemoryChannelLayer):
    """Channels' in-memory layer, with its expiry sweep run at most once a second.

    The stock layer walks every channel and group membership on each receive,
    so one event fanned out to N open pages costs N x N steps: at 200 pages the
    sweep, not the delivery, set the latency. Messages expire after a minute
    and memberships after a day, so a second's lateness changes nothing.
    """

    sweep_interval = 1.0
    _last_sweep = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < self.sweep_interval:
            return
        self._last_sweep = now
        super()._clean_expired()
