"""Throwaway servers on loopback for tests and benchmarks.

Each server lives in a temporary directory on a free port and is removed when
stopped. Without the program, `missing_reason` says why; the caller skips
locally and fails under CI=true, where a missing program is a broken set-up.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require(reason: str | None) -> None:
    """Skip the test for a missing program, or fail under CI=true."""
    if reason is None:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI=true: .ci/run must install it)", pytrace=False)
    pytest.skip(reason)


def _pg_bindir() -> Path | None:
    on_path = shutil.which("initdb")
    if on_path:
        return Path(os.path.realpath(on_path)).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _demote():
    """initdb and postgres refuse to run as root: run them as `postgres`."""
    if os.geteuid() != 0:
        return None, None
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        user = pwd.getpwnam("nobody")

    def preexec() -> None:
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)

    return preexec, user


@dataclass
class PostgresServer:
    url: str
    stop_callbacks: list = field(default_factory=list)

    def stop(self) -> None:
        for callback in reversed(self.stop_callbacks):
            callback()
        self.stop_callbacks.clear()


def postgres_missing_reason() -> str | None:
    if os.environ.get("TEST_DATABASE_URL"):
        return None
    if _pg_bindir() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
    return None


def start_postgres() -> PostgresServer:
    """Start a throwaway cluster, or use TEST_DATABASE_URL when given."""
    if url := os.environ.get("TEST_DATABASE_URL"):
        return PostgresServer(url=url)
    bindir = _pg_bindir()
    assert bindir is not None, postgres_missing_reason()
    preexec, user = _demote()
    root = Path(tempfile.mkdtemp(prefix="hitl-pg-"))
    data = root / "data"
    if user is not None:
        os.chown(root, user.pw_uid, user.pw_gid)
    port = free_port()
    run = dict(check=True, capture_output=True, preexec_fn=preexec)
    subprocess.run(
        [
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        ],
        **run,
    )
    subprocess.run(
        [
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-w",
            "-t",
            "60",
            "-l",
            str(root / "log"),
            "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=200"
            " -c fsync=off -c full_page_writes=off",
            "start",
        ],
        **run,
    )
    server = PostgresServer(url=f"postgres://postgres@127.0.0.1:{port}/postgres")

    def stop() -> None:
        subprocess.run(
            [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            preexec_fn=preexec,
        )
        shutil.rmtree(root, ignore_errors=True)

    server.stop_callbacks.append(stop)
    return server


def create_database(server_url: str, name: str) -> str:
    """Create a fresh database on the server and return its URL."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{name}"


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def stop_all(processes: list[subprocess.Popen], timeout: float = 20) -> None:
    """Ask every process to stop, then wait for each (killing a stuck one)."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()


def redis_missing_reason() -> str | None:
    if shutil.which("redis-server") is None:
        return "redis-server is not installed"
    return None


CHROMIUM = "/usr/bin/chromium"


def chromium_missing_reason() -> str | None:
    """Debian's Chromium drives the browser tests; a browser is never downloaded."""
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is not installed (Debian package chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (make test installs the dev extras)"
    return None


@dataclass
class RedisServer:
    url: str
    process: subprocess.Popen

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_redis() -> RedisServer:
    port = free_port()
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port)
    return RedisServer(url=f"redis://127.0.0.1:{port}/0", process=process)
