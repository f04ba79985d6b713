"""The ``gateway`` command (gateway.cli) and the key resolution it relies on (gateway.keys).

``gateway serve`` is run as a real subprocess with a data directory of its own, so it starts
its own embedded PostgreSQL; the other tests call ``main`` or the helpers in-process.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import httpx
import psutil
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey

from gateway import cli, keys, settings
from gateway.auth import anon_key
from gateway.settings import Settings

KEY_ENV = ("DATABASE_URL", "JWT_SECRET", "API_KEY", "GATEWAY_DATA_DIR", "GATEWAY_HOST", "GATEWAY_PORT",
           "GATEWAY_WORKERS", "GATEWAY_URL", "GATEWAY_LOG_LEVEL")
SECRET = "s" * 40
API_KEY = "ik_" + "a" * 64


def _claims(token: str, secret: str | None) -> dict[str, object]:
    assert secret is not None
    return dict(jwt.decode(token, OctKey.import_key(secret)).claims)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: as root, the embedded postgres runs as another OS user that must be
    # able to reach the directory, and pytest keeps its own base directory private (mode 0700).
    path = Path(tempfile.mkdtemp(prefix="gateway-cli-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> pytest.MonkeyPatch:
    """An environment with no keys and no database set, and the data dir pointing at ``data_dir``."""
    for name in KEY_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(data_dir))
    return monkeypatch


@pytest.fixture
def served(env: pytest.MonkeyPatch, data_dir: Path) -> pytest.MonkeyPatch:
    """``env`` over a data dir a gateway has started on: its keys are stored there."""
    keys.ensure_keys(Settings(data_dir=str(data_dir)))
    return env


# --- keys ----------------------------------------------------------------------------------------

def test_keys_are_generated_once_and_kept_in_the_data_dir(data_dir: Path) -> None:
    first = keys.ensure_keys(Settings(data_dir=str(data_dir)))
    again = keys.ensure_keys(Settings(data_dir=str(data_dir)))
    assert (first.jwt_secret, first.api_key) == (again.jwt_secret, again.api_key)
    assert first.jwt_secret is not None and len(first.jwt_secret) >= 32
    assert first.api_key is not None and re.fullmatch(r"ik_[0-9a-f]{64}", first.api_key)
    path = data_dir / "keys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"jwt_secret": first.jwt_secret, "api_key": first.api_key,
                                            "authenticator_password": first.authenticator_password}
    assert first.authenticator_password is not None and len(first.authenticator_password) >= 32
    assert again.authenticator_password == first.authenticator_password


@pytest.mark.parametrize(("given", "kept"), [
    ({"jwt_secret": SECRET}, {"jwt_secret": SECRET}),
    ({"api_key": API_KEY}, {"api_key": API_KEY}),
    ({"jwt_secret": SECRET, "api_key": API_KEY}, {"jwt_secret": SECRET, "api_key": API_KEY}),
])
def test_keys_from_the_environment_win_over_the_data_dir(data_dir: Path, given: dict[str, str],
                                                         kept: dict[str, str]) -> None:
    stored = keys.ensure_keys(Settings(data_dir=str(data_dir / "stored")))
    resolved = keys.ensure_keys(Settings(data_dir=str(data_dir / "stored")).with_overrides(**given))
    for field in ("jwt_secret", "api_key"):
        assert getattr(resolved, field) == kept.get(field, getattr(stored, field))


def test_nothing_is_written_when_the_environment_sets_every_secret(data_dir: Path) -> None:
    keys.ensure_keys(Settings(data_dir=str(data_dir), jwt_secret=SECRET, api_key=API_KEY,
                              authenticator_password="p" * 40))
    keys.ensure_keys(Settings(data_dir=str(data_dir), jwt_secret=SECRET, api_key=API_KEY,
                              authenticator_url="postgresql://gateway_authenticator:pw@db/app"))
    assert not (data_dir / "keys.json").exists()


def test_the_login_password_is_generated_when_the_gateway_manages_its_login_role(data_dir: Path) -> None:
    resolved = keys.ensure_keys(Settings(data_dir=str(data_dir), jwt_secret=SECRET, api_key=API_KEY))
    assert resolved.authenticator_password is not None
    assert json.loads((data_dir / "keys.json").read_text())["authenticator_password"] == \
        resolved.authenticator_password


def test_a_short_jwt_secret_is_refused(data_dir: Path) -> None:
    with pytest.raises(ValueError, match="at least 32"):
        keys.ensure_keys(Settings(data_dir=str(data_dir), jwt_secret="short"))


def test_an_unusable_stored_key_is_replaced_and_the_other_kept(data_dir: Path) -> None:
    (data_dir / "keys.json").write_text(json.dumps({"jwt_secret": SECRET, "api_key": "not-a-key"}))
    resolved = keys.ensure_keys(Settings(data_dir=str(data_dir)))
    assert resolved.jwt_secret == SECRET
    assert resolved.api_key is not None and resolved.api_key.startswith("ik_")
    assert json.loads((data_dir / "keys.json").read_text())["api_key"] == resolved.api_key


def test_a_damaged_keys_file_stops_the_command_with_a_message(env: pytest.MonkeyPatch, data_dir: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    (data_dir / "keys.json").write_text("{not json")
    assert cli.main(["token", "--sub", str(uuid.uuid4())]) == cli.Exit.CONFIG
    assert re.fullmatch(r"gateway: \S+keys\.json is not a readable keys file: .*\n", capsys.readouterr().err)


def _resolve_keys(data_dir: str) -> tuple[str | None, str | None]:
    resolved = keys.ensure_keys(Settings(data_dir=data_dir))
    return resolved.jwt_secret, resolved.api_key


def test_processes_starting_together_agree_on_the_generated_keys(data_dir: Path) -> None:
    with ProcessPoolExecutor(max_workers=4) as pool:
        results = set(pool.map(_resolve_keys, [str(data_dir)] * 16))
    assert len(results) == 1


# --- token ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("argv", "expected"), [
    (["--sub", "123e4567-e89b-12d3-a456-426614174000"],
     {"sub": "123e4567-e89b-12d3-a456-426614174000", "role": "authenticated"}),
    (["--role", "project_admin", "--sub", "local:admin", "--email", "admin@example.com"],
     {"sub": "local:admin", "role": "project_admin", "email": "admin@example.com"}),
    (["--role", "anon", "--sub", "visitor"], {"sub": "visitor", "role": "anon"}),
])
def test_token_prints_a_jwt_signed_with_the_resolved_secret(served: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str],
                                                            argv: list[str], expected: dict[str, str]) -> None:
    assert cli.main(["token", *argv, "--ttl", "600"]) == 0
    token = capsys.readouterr().out.strip()
    claims = _claims(token, cli.resolved_settings().jwt_secret)
    jwt.JWTClaimsRegistry().validate(claims)  # not expired, not used before it was issued
    assert {k: claims[k] for k in expected} == expected
    assert claims["exp"] == claims["iat"] + 600  # type: ignore[operator]


def test_token_with_ttl_zero_does_not_expire(served: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    cli.main(["token", "--sub", "x", "--ttl", "0"])
    assert "exp" not in _claims(capsys.readouterr().out.strip(), cli.resolved_settings().jwt_secret)


def test_token_never_creates_a_secret_and_says_where_it_looked(env: pytest.MonkeyPatch, data_dir: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["token", "--sub", "x"]) == cli.Exit.NO_SERVER
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(data_dir / "keys.json") in err
    assert not (data_dir / "keys.json").exists()


def test_the_admin_commands_never_start_a_new_database_in_a_data_dir_without_one(
        env: pytest.MonkeyPatch, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["export", "--data-dir", str(data_dir / "typo")]) == cli.Exit.NO_SERVER
    assert "no database in" in capsys.readouterr().err
    assert not (data_dir / "typo").exists()


def test_token_uses_jwt_secret_from_the_environment(env: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    env.setenv("JWT_SECRET", SECRET)
    cli.main(["token", "--sub", "x"])
    assert _claims(capsys.readouterr().out.strip(), SECRET)["sub"] == "x"


@pytest.mark.parametrize("argv", [[], ["token"], ["token", "--sub", "x", "--role", "postgres"],
                                  ["serve", "--port", "eighty"], ["unknown"]])
def test_bad_command_lines_exit_with_usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    assert "usage: gateway" in capsys.readouterr().err


@pytest.mark.parametrize("command", [c.name for c in cli.COMMANDS])
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([command, "--help"])
    assert exited.value.code == 0
    assert f"usage: gateway {command}" in capsys.readouterr().out


# --- serve ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("environ", "overrides", "expected"), [
    ({}, {}, ("127.0.0.1", 7130, 1)),
    ({"GATEWAY_PORT": "8000", "GATEWAY_HOST": "0.0.0.0"}, {}, ("0.0.0.0", 8000, 1)),
    ({"GATEWAY_PORT": "8000"}, {"port": 9000, "workers": 3}, ("127.0.0.1", 9000, 3)),
    ({"GATEWAY_WORKERS": "4"}, {"host": "::1", "port": None}, ("::1", 7130, 4)),
])
def test_serve_flags_override_the_environment(env: pytest.MonkeyPatch, environ: dict[str, str],
                                              overrides: dict[str, object],
                                              expected: tuple[str, int, int]) -> None:
    for name, value in environ.items():
        env.setenv(name, value)
    resolved = cli.resolved_settings(**overrides)
    assert (resolved.host, resolved.port, resolved.workers) == expected


def test_the_worker_environment_reproduces_the_resolved_settings(env: pytest.MonkeyPatch) -> None:
    resolved = replace(cli.resolved_settings(port=9100, workers=2),
                       database_url="postgresql://postgres@/postgres?host=/tmp/x%20y")
    in_worker = settings.load(cli.worker_environment(resolved))
    assert in_worker == resolved


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for_health(proc: subprocess.Popen[str], url: str) -> httpx.Response:
    """Poll ``url`` until it answers 200 (or the server exits, which fails the test)."""
    deadline = time.monotonic() + 180  # a generous bound on a first start (initdb), not a measurement
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"gateway serve exited with {proc.returncode}"
        try:
            response = httpx.get(url, timeout=5)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("gateway serve did not become healthy")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_answers_health_and_stops_the_embedded_postgres_on_sigterm(data_dir: Path, workers: int) -> None:
    port = _free_port()
    environ = {k: v for k, v in os.environ.items() if k not in KEY_ENV}
    environ["GATEWAY_DATA_DIR"] = str(data_dir)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port), "--workers", str(workers)],
        env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        health = _wait_for_health(proc, f"http://127.0.0.1:{port}/health")
        assert health.json()["status"] == "ok"
        postmaster = int((data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
        assert not _gone(postmaster)

        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, output
    assert _gone(postmaster)
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()  # a clean shutdown removes it

    stored = json.loads((data_dir / "keys.json").read_text())
    for line in (f"http://127.0.0.1:{port}/api/database/records/", f"http://127.0.0.1:{port}/graphql",
                 stored["api_key"], anon_key(stored["jwt_secret"])):
        assert line in output


@pytest.mark.parametrize("env, offered", [({}, False), ({"GATEWAY_WS_COMPRESSION": "true"}, True)])
def test_websocket_compression_is_offered_only_when_the_setting_turns_it_on(env: dict[str, str],
                                                                             offered: bool) -> None:
    chosen = settings.load(env)
    assert cli.uvicorn_config(chosen).ws_per_message_deflate is offered
