import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hitl_site.settings")

# Django must be set up before anything imports models.
django.setup(set_prefix=False)

from hitl_site.request_threads import PooledThreadsASGIHandler  # noqa: E402

# Django's ASGIHandler, but sync views run on a few long-lived threads that
# keep their database connections (hitl_site.request_threads).
django_asgi_app = PooledThreadsASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from graphs.consumers import GraphRunsConsumer  # noqa: E402
from graphs.events import RUNS_CHANNEL  # noqa: E402
from reviews.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Signed-in reviewers only (the consumer refuses anonymous users), and
        # only from pages served by an allowed host.
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
        # `manage.py runworker graph-runs` serves this.
        "channel": ChannelNameRouter({RUNS_CHANNEL: GraphRunsConsumer.as_asgi()}),
    }
)

# What start-up made lives as long as the process. Frozen, it is out of the
# cyclic collector's reach: a full collection no longer walks Django's,
# LangGraph's and LangChain's module objects, a walk that stalled every open
# websocket for ~100 ms at a time.
gc.freeze()
