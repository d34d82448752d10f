"""A served dashboard (`manage.py serve`, as `make run` starts it) and Debian's
Chromium driven by Playwright, for tests that click through real pages."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import CHROMIUM, chromium_missing_reason, free_port, require, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
LOGINS = {"reviewer": "review-demo-1", "reviewer2": "review-demo-2", "admin": "admin-demo-1"}


@dataclass
class Served:
    url: str
    env: dict[str, str]

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def query(self, code: str):
        """Run Python against the served database; `code` sets `result`."""
        out = self.manage("shell", "-c", f"import json\n{code}\nprint(json.dumps(result))")
        return json.loads(out.strip().splitlines()[-1])


@contextlib.contextmanager
def serving(
    directory: Path,
    graphs: str | Path | None = None,
    *,
    env: dict[str, str] | None = None,
    rules: bool = True,
    site_type: type[Served] = Served,
) -> Iterator[Served]:
    """`make run` in `directory`: migrated, seeded, served on a free port with
    its worker; the demo graphs, or the langgraph.json `graphs`. `env` adds
    to the environment (another DATABASE_URL); `rules=False` leaves out the
    demo review rules."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{directory / 'browser.sqlite3'}",
        "HITL_VAR_DIR": str(directory),
        "DJANGO_SETTINGS_MODULE": "hitl_site.settings",
        **({"HITL_GRAPHS_CONFIG": str(graphs)} if graphs else {}),
        **(env or {}),
    }
    env.pop("REDIS_URL", None)
    site = site_type(url="", env=env)
    site.manage("migrate", "--noinput")
    site.manage("seed_demo")
    if rules:
        site.manage("seed_demo_rules")  # as make run does
    port = free_port()
    log = open(directory / "serve.log", "w")  # noqa: SIM115
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port), "--sweep", "0.3"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, timeout=120)  # a busy two-core machine starts it slowly
        site.url = f"http://127.0.0.1:{port}"
        yield site
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture
def served(tmp_path, request):
    """The demo graphs, or the langgraph.json given by indirect parametrization."""
    require(chromium_missing_reason())
    with serving(tmp_path, getattr(request, "param", None)) as site:
        yield site


@pytest.fixture
def browser():
    require(chromium_missing_reason())
    from playwright.sync_api import expect, sync_playwright

    # Runs go through a worker that sweeps the queue: on a busy two-core CI
    # machine that can take longer than Playwright's default of 5 seconds.
    expect.set_options(timeout=20_000)

    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield chromium
        chromium.close()


def signed_in(browser, served: Served, username: str):
    """A fresh browser context signed in as one of the demo accounts."""
    context = browser.new_context(base_url=served.url)
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto("/accounts/login/?next=/queue/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", LOGINS[username])
    page.click("button[type=submit]")
    page.wait_for_url("**/queue/")
    page.wait_for_selector("#live-state.on")  # the websocket is open
    return page
