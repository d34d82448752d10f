"""`manage.py serve` and `runworker` as they start: an unreachable database or
Redis stops them at once, and a served site with the defaults (DEBUG off)
loads its styles and scripts and throttles sign-ins."""

from __future__ import annotations

import contextlib
import http.cookiejar
import os
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent


def environ(tmp_path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DEBUG")}
    return {
        **env,
        "HITL_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        **extra,
    }


@contextlib.contextmanager
def serving(env: dict[str, str]) -> Iterator[str]:
    """`manage.py serve` without its worker; yields the base URL."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port), "--no-worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=20)


def closed_port() -> int:
    """A loopback port nothing listens on (free_port's socket is closed again)."""
    return free_port()


@pytest.mark.parametrize(
    "command", [["serve", "--port", "0"], ["runworker", "graph-runs"]], ids=["serve", "runworker"]
)
@pytest.mark.parametrize(
    ("variable", "url", "says"),
    [
        (
            "DATABASE_URL",
            "postgres://hitl:pw@127.0.0.1:{port}/hitl",
            "The 'default' database cannot be reached",
        ),
        ("REDIS_URL", "redis://127.0.0.1:{port}/0", "Redis cannot be reached"),
    ],
    ids=["database", "redis"],
)
def test_an_unreachable_service_stops_start_up(tmp_path, command, variable, url, says):
    env = environ(tmp_path, **{variable: url.format(port=closed_port())})
    result = subprocess.run(
        [sys.executable, "manage.py", *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert says in result.stderr, result.stderr
    assert "Serving http" not in result.stdout


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_served_with_the_defaults(tmp_path):
    env = environ(tmp_path, HITL_LOGIN_FAILURE_LIMIT="2")
    made = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "--no-imports",
            "-c",
            "from django.core.management import call_command; call_command('migrate', verbosity=0); "
            "from django.contrib.auth.models import User; User.objects.create_user('rita', password='pw-rita-123')",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    with serving(env) as base:
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
        page = opener.open(f"{base}/accounts/login/")
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        html = page.read().decode()
        # DEBUG is off and nothing was collected: the files are still served.
        assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', html)
        assert any(a.endswith(".css") for a in assets) and any(a.endswith(".js") for a in assets)
        for asset in assets:
            assert opener.open(base + asset).status == 200, asset

        try:
            opener.open(f"{base}/no-such-page/")
            raise AssertionError("expected a 404")
        except urllib.error.HTTPError as exc:
            assert exc.code == 404
            body = exc.read().decode()
            assert "Not found (404)" in body and "URLconf" not in body

        # A 100 kB request line: answered, not dropped.
        with socket.create_connection(
            ("127.0.0.1", int(base.rsplit(":", 1)[1])), timeout=30
        ) as raw:
            raw.sendall(
                b"GET /queue/?q=" + b"x" * 100_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            )
            answer = raw.recv(65536)
        assert answer.startswith(b"HTTP/1.1 414"), answer[:200]
        assert b"Address too long" in answer or b"Content-Length" in answer

        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)

        def sign_in(password: str) -> int:
            data = urllib.parse.urlencode(
                {"username": "rita", "password": password, "csrfmiddlewaretoken": token}
            ).encode()
            request = urllib.request.Request(
                f"{base}/accounts/login/", data, headers={"Referer": f"{base}/accounts/login/"}
            )
            try:
                return opener.open(request).status
            except urllib.error.HTTPError as exc:
                return exc.code

        assert sign_in("guess") == 200
        assert sign_in("guess") == 429
        assert sign_in("pw-rita-123") == 429


def test_collected_static_files_have_hashed_names_compressed_and_a_years_cache(tmp_path):
    env = environ(tmp_path)
    for command in (["migrate", "--noinput"], ["collectstatic", "--noinput", "-v0"]):
        done = subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
    with serving(env) as base:
        html = urllib.request.urlopen(f"{base}/accounts/login/").read().decode()
        assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', html)
        assert assets and all(re.search(r"\.[0-9a-f]{12}\.\w+$", a) for a in assets), assets
        for asset in assets:
            request = urllib.request.Request(base + asset, headers={"Accept-Encoding": "gzip"})
            with urllib.request.urlopen(request) as answer:
                assert answer.headers["Content-Encoding"] == "gzip", asset
                assert "immutable" in answer.headers["Cache-Control"], answer.headers
