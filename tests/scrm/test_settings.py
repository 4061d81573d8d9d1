"""Settings from the environment: production refuses to start without its variables and passes check --deploy."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": "x" * 20 + "-a-long-random-production-secret-key-" + "y" * 20,
    "DATABASE_URL": "postgres://scrm:secret@db.internal:5432/scrm",
    "REDIS_URL": "redis://cache.internal:6379/0",
    "ALLOWED_HOSTS": "scrm.example.com",
}


def manage(*args, **env):
    clean = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ENV and k != "DEBUG"}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_check_deploy_has_no_warnings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


@pytest.mark.parametrize("missing", ["SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS"])
def test_production_without_a_required_variable_stops_naming_it(missing):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}
    result = manage("check", **env)
    assert result.returncode != 0
    assert f"needs the environment variable {missing}" in result.stderr


def test_development_defaults_need_nothing():
    result = manage("diffsettings", "--all")
    assert result.returncode == 0, result.stderr
    assert "TIME_ZONE = 'Asia/Shanghai'" in result.stdout
    assert "LANGUAGE_CODE = 'zh-hans'" in result.stdout
