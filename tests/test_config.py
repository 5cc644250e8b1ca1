"""Settings: safe defaults, and invalid values fail at start-up naming the setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings

REPO = Path(__file__).resolve().parents[1]


def test_defaults_are_local_and_safe(tmp_path):
    s = Settings.from_env({}, env_file=tmp_path / "none.env")
    assert (s.host, s.port) == ("127.0.0.1", 8080)
    assert s.database_url.startswith("sqlite+aiosqlite:///") and s.database_url.endswith("var/bot.sqlite3")
    assert s.wechat_aes_key == "" and not s.safe_mode_enabled
    assert s.redis_url == "" and s.reply_budget == 4.0


def test_env_file_is_read_and_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("BOT_PORT=9001\nBOT_LOG_LEVEL=debug\n")
    s = Settings.from_env({"BOT_PORT": "9002"}, env_file=env_file)
    assert s.port == 9002 and s.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BOT_PORT", "eighty"),
        ("BOT_PORT", "70000"),
        ("BOT_DATABASE_URL", "mysql://root@localhost/db"),
        ("BOT_WECHAT_AES_KEY", "tooshort"),
        ("BOT_WECHAT_AES_KEY_PREVIOUS", "!" * 43),
        ("BOT_WECHAT_TOKEN", "a b"),
        ("BOT_WECHAT_API_BASE", "ftp://example.org"),
        ("BOT_REDIS_URL", "localhost:6379"),
        ("BOT_LOG_LEVEL", "LOUD"),
        ("BOT_REPLY_BUDGET", "9"),
        ("BOT_TIMESTAMP_WINDOW", "-1"),
        ("BOT_MAX_BODY_BYTES", "lots"),
    ],
)
def test_invalid_setting_is_named(name, value, tmp_path):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value}, env_file=tmp_path / "none.env")


def test_serve_fails_at_start_with_a_readable_message(tmp_path):
    env = {**os.environ, "BOT_PORT": "eighty", "BOT_DATA_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "serve"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "BOT_PORT" in proc.stderr and "Traceback" not in proc.stderr


def test_help_everywhere():
    for args in (["--help"], ["serve", "--help"], ["db", "--help"], ["db", "upgrade", "--help"]):
        proc = subprocess.run(
            [sys.executable, "-m", "bot", *args], cwd=REPO, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0 and "usage:" in proc.stdout, args


def test_db_upgrade_cli(tmp_path):
    env = {**os.environ, "BOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.sqlite3'}"}
    for _ in range(2):  # idempotent
        proc = subprocess.run(
            [sys.executable, "-m", "bot", "db", "upgrade"], cwd=REPO, env=env, capture_output=True, text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert "schema at" in proc.stdout


def test_serve_with_an_unreachable_database_says_so(tmp_path):
    env = {
        **os.environ,
        "BOT_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:9/nowhere",
        "BOT_DATA_DIR": str(tmp_path),
        "BOT_PORT": "0",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "serve"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1
    assert "cannot start" in proc.stderr and "database" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_plaintext_with_a_key_is_off_unless_allowed(tmp_path):
    key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
    none = tmp_path / "none.env"
    assert Settings.from_env({}, env_file=none).accepts_plaintext  # 明文模式: no key
    assert not Settings.from_env({"BOT_WECHAT_AES_KEY": key}, env_file=none).accepts_plaintext
    switching = Settings.from_env({"BOT_WECHAT_AES_KEY": key, "BOT_WECHAT_ALLOW_PLAINTEXT": "1"}, env_file=none)
    assert switching.accepts_plaintext
    with pytest.raises(ConfigError, match="BOT_WECHAT_ALLOW_PLAINTEXT"):
        Settings.from_env({"BOT_WECHAT_ALLOW_PLAINTEXT": "maybe"}, env_file=none)
