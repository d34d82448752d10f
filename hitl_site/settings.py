"""Settings, read from the environment. The defaults run a fresh checkout:
SQLite under var/ and an in-memory channel layer, nothing else to install."""

from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from hitl_site.env import (
    env_bool,
    env_file,
    env_int,
    env_list,
    env_networks,
    env_str,
    secret_key_file,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("HITL_VAR_DIR", str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

# Off unless asked for: a debug page shows settings, SQL and every URL to
# whoever makes a request fail.
DEBUG = env_bool("DEBUG", False)

# Unset, a key is made once under VAR_DIR and kept (owner-only), so a fresh
# checkout runs and no two installations share a published key.
SECRET_KEY = env_str("SECRET_KEY") or secret_key_file(VAR_DIR / "secret_key")
# The audit chain's HMAC key: kept out of the database and its backups.
AUDIT_KEY = env_str("AUDIT_KEY") or None

LOCAL_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", LOCAL_HOSTS)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Behind a reverse proxy: the addresses it connects from. Only a request whose
# direct peer is one of them has its X-Forwarded-For / X-Forwarded-Proto
# believed (hitl_site.middleware.trusted_proxies).
HITL_TRUSTED_PROXIES = env_networks("HITL_TRUSTED_PROXIES")
if HITL_TRUSTED_PROXIES:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# HTTPS. Cookies are Secure as soon as the site has a name of its own; the
# redirect and HSTS are asked for, since either one breaks a site served over
# plain HTTP (`manage.py check --deploy` lists what is still off).
SECURE_COOKIES = env_bool("SECURE_COOKIES", not set(ALLOWED_HOSTS) <= set(LOCAL_HOSTS))
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "axes",
    "csp",
    # Serves the API docs' Swagger UI from static files rather than a CDN.
    "ninja",
    "hitl_site.apps.HitlSiteConfig",
    # graphs before channels: its `runworker` extends Channels' own.
    "graphs",
    "channels",
    "django_htmx",
    "template_partials",
    "reviews",
    "corsheaders",
    "agent_server",
]

MIDDLEWARE = [
    # First: what the rest see as the client's address and scheme.
    "hitl_site.middleware.trusted_proxies",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before anything reads the body: too large, NUL-bearing or unreadable
    # input is answered here with a 4xx.
    "hitl_site.middleware.request_guard",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Before CommonMiddleware, as django-cors-headers asks; /langgraph/ only.
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks (of those that do something).
    "axes.middleware.AxesMiddleware",
    # Sync only, so the whole stack runs in one pass in the request's thread.
    "hitl_site.sync_stack.sync_stack",
]

ROOT_URLCONF = "hitl_site.urls"
ASGI_APPLICATION = "hitl_site.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "reviews.context_processors.queue",
            ],
        },
    },
]


def _database(url: str) -> dict:
    try:
        config = dj_database_url.parse(url, conn_max_age=0)
    except Exception as exc:  # dj-database-url raises several types for a bad URL
        raise ImproperlyConfigured(f"DATABASE_URL is not a usable database URL: {exc}") from exc
    engine = config.get("ENGINE", "")
    if engine == "django.db.backends.sqlite3":
        # WAL lets pages read while the worker writes; IMMEDIATE takes the write
        # lock at BEGIN so two writers queue on the busy timeout instead of
        # failing with "database is locked" when a read upgrades to a write.
        config["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": env_int("SQLITE_BUSY_TIMEOUT", 20, minimum=1),
        }
        # A file, not memory, so tests see WAL and the threads LangGraph saves
        # from; the suite puts it in a temporary directory per session.
        config["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
        # Kept open for good: requests run on a few long-lived threads
        # (hitl_site.request_threads), each with its own connection, and
        # opening one per request cost more than many a page's queries.
        config["CONN_MAX_AGE"] = None
        config["CONN_HEALTH_CHECKS"] = True
    elif engine == "django.db.backends.postgresql":
        # A server that does not answer stops start-up (hitl_site.checks)
        # in seconds, not after the system's TCP timeout.
        options = config.setdefault("OPTIONS", {})
        options.setdefault("connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT", 10, minimum=1))
        # Parameters travel apart from the statement, and a statement run a
        # few times on a connection is prepared once: planning cost the
        # server more than running most of ours (a quarter of its CPU per
        # run). Like the saver's own prepared statements, this needs a
        # connection pooler that keeps them (PgBouncer 1.21 or later).
        options.setdefault("server_side_binding", True)
        options.setdefault("prepare_threshold", 5)
        # Each process keeps its connections open and lends them out:
        # requests run on threads of their own, and a new connection per
        # request (authentication, TLS, backend start) cost more than a run.
        pool_size = env_int("DATABASE_POOL_SIZE", 20, minimum=0)
        if pool_size:
            options["pool"] = {"min_size": min(2, pool_size), "max_size": pool_size}
    else:
        raise ImproperlyConfigured(
            f"DATABASE_URL must be a sqlite:// or postgres:// URL, got engine {engine!r}"
        )
    return config


# Long-lived threads that serve requests' sync code, each lent to one request
# at a time; requests beyond them get a thread of their own, as in Django.
HITL_REQUEST_THREADS = env_int("HITL_REQUEST_THREADS", 6, minimum=0)

DATABASES = {"default": _database(env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(f"REDIS_URL must be a redis:// URL, got {REDIS_URL!r}")
    # Pub/sub: one Redis message per event and process, fanned out to that
    # process's pages in memory. Events are liveness only (the database holds
    # the truth), so pub/sub's at-most-once delivery is what they need.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "hitl_site.layers.RedisPubSubLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
    # Counters that every process must share (failed API tokens).
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "hitl",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "hitl_site.layers.EmbeddedChannelLayer",
            # A run hands a step's stream events over at once (hundreds when a
            # model streams tokens); the in-memory layer drops what a channel
            # can't hold (100 by default). Redis pub/sub has no such limit.
            "CONFIG": {"channel_capacity": {"langgraph-run.*": 100_000}},
        }
    }

# The graphs the dashboard can run, in LangGraph CLI format.
HITL_GRAPHS_CONFIG = env_file(
    "HITL_GRAPHS_CONFIG", BASE_DIR / "graphs" / "examples" / "langgraph.json"
)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns about a missing directory
# Collected (make run): hashed, compressed names with a year's cache. Not
# collected: the apps' and static/'s own files, served by whitenoise from
# where they are, so a fresh checkout needs no collectstatic to run.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "hitl_site.static_storage.StaticFiles"},
}
WHITENOISE_USE_FINDERS = True

# Sessions are read from a cache and written through to the database: a
# page no longer waits on a session query. A session ended anywhere (logout,
# a new login) must end for every process at once, so the cache is one they
# all share: Redis with REDIS_URL; without it the one serving process's
# memory (the in-memory channel layer serves a single process too). A
# PostgreSQL database without Redis may have several processes and no cache
# they share: sessions stay in the database there.
if REDIS_URL or DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    SESSION_CACHE_ALIAS = "sessions"
    CACHES["sessions"] = (
        {**CACHES["default"], "KEY_PREFIX": "hitl-session"}
        if REDIS_URL
        # Enough for every signed-in reviewer: one culled re-reads the database.
        else {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "sessions",
            "OPTIONS": {"MAX_ENTRIES": 10_000},
        }
    )
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES

# Scripts only from our own static files: no inline script, no eval (htmx's
# hx-on is not used for that reason). Styles may be inline: Mermaid's
# diagrams carry their own <style>, and the timeline places lanes with a
# style attribute.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],  # same-origin ws:/wss: too, for the live updates
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Webhook deliveries: the threads that send them in each worker process, and
# the seconds an attempt waits on each step (connect, send, answer).
HITL_WEBHOOK_THREADS = env_int("HITL_WEBHOOK_THREADS", 4, minimum=1)
HITL_WEBHOOK_TIMEOUT = env_int("HITL_WEBHOOK_TIMEOUT", 5, minimum=1)

# How long /langgraph/ keeps a resumable stream's events once its run ended,
# for clients that reconnect with Last-Event-ID (LangGraph's servers: 120 s).
RESUMABLE_STREAM_TTL_SECONDS = env_int("RESUMABLE_STREAM_TTL_SECONDS", 120, minimum=1)

# Sign-in throttling (django-axes): after HITL_LOGIN_FAILURE_LIMIT wrong
# passwords for one username from one address, that pair waits
# HITL_LOGIN_COOLOFF_MINUTES. By pair, so a stranger cannot lock a colleague
# out from elsewhere.
AUTHENTICATION_BACKENDS = [
    "hitl_site.auth.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("HITL_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("HITL_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
AXES_CLIENT_IP_CALLABLE = "hitl_site.auth.client_address"

# Failed /api/ bearer tokens per client address (reviews.api_auth).
HITL_TOKEN_FAILURE_LIMIT = env_int("HITL_TOKEN_FAILURE_LIMIT", 50, minimum=1)
HITL_TOKEN_FAILURE_WINDOW = env_int("HITL_TOKEN_FAILURE_WINDOW_SECONDS", 600, minimum=1)

# Browser apps on other origins (Agent Inbox, Agent Chat UI) that may call
# /langgraph/ with an API key: "https://inbox.example.com,http://localhost:3000".
# None by default; the key travels in a header, never a cookie.
CORS_ALLOWED_ORIGINS = env_list("HITL_CORS_ALLOWED_ORIGINS", [])
CORS_URLS_REGEX = r"^/langgraph/.*$"
CORS_ALLOW_HEADERS = ("accept", "authorization", "content-type", "x-api-key", "x-request-id")
# As LangGraph's server exposes them: the SDK reads these from the response.
CORS_EXPOSE_HEADERS = ("x-pagination-total", "x-pagination-next", "content-location")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# Mail for assignments and deadlines: printed to the console unless configured.
EMAIL_BACKEND = env_str("EMAIL_BACKEND") or "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL") or "hitl-review@localhost"
