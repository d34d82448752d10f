"""Start-up checks that the services in the environment answer.

Tagged `services` and registered as deployment checks: `manage.py serve` and
`manage.py runworker` run them before they start (a server that starts
against an unreachable database or Redis only fails later, on the first
request or run), and so does `manage.py check --deploy`; commands that may
run before the services exist (collectstatic in an image build) do not.
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register
from django.db import connections

SERVICES = "services"


@register(SERVICES, deploy=True)
def database_reachable(app_configs=None, **kwargs) -> list[Error]:
    errors = []
    for alias in kwargs.get("databases") or ["default"]:
        connection = connections[alias]
        try:
            connection.ensure_connection()
        except Exception as exc:  # each driver raises its own kinds
            errors.append(
                Error(
                    f"The {alias!r} database cannot be reached: {_first_line(exc)}",
                    hint=f"Check DATABASE_URL ({_safe(connection)}) and that the server is running.",
                    id="hitl.E001",
                )
            )
        finally:
            connection.close()
    return errors


@register(SERVICES, deploy=True)
def redis_reachable(app_configs=None, **kwargs) -> list[Error]:
    url = getattr(settings, "REDIS_URL", None)
    if not url:
        return []
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
    try:
        client.ping()
    except Exception as exc:  # connection refused, timeout, auth, TLS
        return [
            Error(
                f"Redis cannot be reached: {_first_line(exc)}",
                hint="Check REDIS_URL and that the server is running.",
                id="hitl.E002",
            )
        ]
    finally:
        client.close()
    return []


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _safe(connection) -> str:
    """Where the database is, without its password."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return str(s.get("NAME"))
    return f"{connection.vendor} at {s.get('HOST') or 'local socket'}:{s.get('PORT') or 'default port'}, database {s.get('NAME')}"
