"""Bad environment values stop start-up with a message naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from hitl_site.env import env_bool, env_file, env_int, env_list, env_networks

ROOT = Path(__file__).resolve().parent.parent


def check(*args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    return subprocess.run(
        [sys.executable, "manage.py", *(args or ["check"])],
        cwd=ROOT,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DATABASE_URL": "mysql2://nobody@host/db"}, "DATABASE_URL"),
        ({"DEBUG": "maybe"}, "DEBUG must be a boolean"),
        ({"HITL_TRUSTED_PROXIES": "10.0.0.0/8, proxy.local"}, "HITL_TRUSTED_PROXIES must list"),
        ({"REDIS_URL": "http://localhost"}, "REDIS_URL must be a redis:// URL"),
        ({"HITL_GRAPHS_CONFIG": "/nonexistent/langgraph.json"}, "HITL_GRAPHS_CONFIG points to"),
        ({"SQLITE_BUSY_TIMEOUT": "soon"}, "SQLITE_BUSY_TIMEOUT must be an integer"),
    ],
)
def test_bad_values_stop_start_up(env, message):
    result = check(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


def test_defaults_start_a_fresh_checkout():
    result = check()
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_env_helpers(monkeypatch, tmp_path):
    monkeypatch.setenv("FLAG", "Yes")
    assert env_bool("FLAG", False) is True
    monkeypatch.setenv("HOSTS", " a.example , b.example ,")
    assert env_list("HOSTS", []) == ["a.example", "b.example"]
    monkeypatch.setenv("HOSTS", " , ")
    with pytest.raises(ImproperlyConfigured, match="HOSTS is set but lists nothing"):
        env_list("HOSTS", [])
    monkeypatch.setenv("N", "-1")
    with pytest.raises(ImproperlyConfigured, match="N must be at least 1"):
        env_int("N", 5, minimum=1)
    monkeypatch.delenv("CONFIG", raising=False)
    target = tmp_path / "langgraph.json"
    target.write_text("{}")
    assert env_file("CONFIG", target) == target
    monkeypatch.setenv("PROXIES", "10.0.0.1, 2001:db8::/32,")
    assert [str(n) for n in env_networks("PROXIES")] == ["10.0.0.1/32", "2001:db8::/32"]
    monkeypatch.delenv("PROXIES")
    assert env_networks("PROXIES") == []


def setting(name: str, **env: str) -> str:
    result = check(
        "shell", "-c", f"from django.conf import settings; print(settings.{name})", **env
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_debug_is_off_unless_asked_for(tmp_path, monkeypatch):
    monkeypatch.delenv("DEBUG", raising=False)
    assert setting("DEBUG", HITL_VAR_DIR=str(tmp_path)) == "False"
    assert setting("DEBUG", HITL_VAR_DIR=str(tmp_path), DEBUG="true") == "True"


def test_an_unset_secret_key_is_made_once_and_kept_from_others(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    first = setting("SECRET_KEY", HITL_VAR_DIR=str(tmp_path))
    kept = tmp_path / "secret_key"
    assert kept.read_text().strip() == first and len(first) >= 50
    assert kept.stat().st_mode & 0o777 == 0o600
    assert setting("SECRET_KEY", HITL_VAR_DIR=str(tmp_path)) == first
    assert setting("SECRET_KEY", HITL_VAR_DIR=str(tmp_path / "elsewhere")) != first
    assert setting("SECRET_KEY", HITL_VAR_DIR=str(tmp_path), SECRET_KEY="x" * 60) == "x" * 60

    kept.chmod(0o644)
    result = check(HITL_VAR_DIR=str(tmp_path))
    assert result.returncode != 0 and f"chmod 600 {kept}" in result.stderr


def production(tmp_path) -> dict[str, str]:
    """What README's Security section asks a deployment behind HTTPS to set."""
    return {
        "DEBUG": "false",
        "SECRET_KEY": "k" * 20 + "-production-secret-key-" + "q" * 20,
        "AUDIT_KEY": "a" * 40,
        "ALLOWED_HOSTS": "review.example.com",
        "SECURE_SSL_REDIRECT": "true",
        "SECURE_HSTS_SECONDS": "31536000",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
        "SECURE_HSTS_PRELOAD": "true",
        "HITL_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }


def test_deploy_check_is_clean_in_production(tmp_path):
    result = check("check", "--deploy", "--fail-level", "WARNING", **production(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    # Cookies are Secure once the site has a name: nobody has to remember to.
    env = {k: v for k, v in production(tmp_path).items() if k != "SECURE_SSL_REDIRECT"}
    assert setting("SESSION_COOKIE_SECURE", **env) == "True"
    assert setting("CSRF_COOKIE_SECURE", **env) == "True"


def test_deploy_check_names_what_production_still_lacks(tmp_path):
    env = {**production(tmp_path), "SECURE_SSL_REDIRECT": "false", "SECURE_HSTS_SECONDS": "0"}
    result = check("check", "--deploy", "--fail-level", "WARNING", **env)
    assert result.returncode != 0
    assert "security.W004" in result.stderr and "security.W008" in result.stderr
