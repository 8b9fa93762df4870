"""A server that accepts and never speaks must not hold `verify` beyond --timeout."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from phoenix_certbot.cli.main import cli
from tests.harness.ports import free_port
from tests.support.tls_server import SilentListener
from tests.verify import builders as b

TIMEOUT_S = 2.0
SLACK_S = 1.5  # thread start, certificate reading, one last short attempt


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP listener on 127.0.0.1 that accepts connections and never sends a byte."""
    with SilentListener() as silent:
        yield silent.port


def _manifest(tmp_path: Path, port: int) -> Path:
    _, live = b.lineage(tmp_path)
    url = f"https://127.0.0.1:{port}/api/system/status"
    entry = b.entry("portainer", live, verify=[{"url": url, "server_name": "portainer.test"}])
    return b.write_manifest(tmp_path / "m.json", [entry], tmp_path / "state")


def _timed_verify(manifest: Path) -> tuple[float, int, list[str]]:
    args = ["verify", "--json", "--no-swarm-checks", "--timeout", str(TIMEOUT_S)]
    args += ["--manifest", str(manifest)]
    started = time.monotonic()
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    elapsed = time.monotonic() - started
    return elapsed, result.exit_code, [f["id"] for f in json.loads(result.stdout)["findings"]]


def test_silent_listener_is_bounded_by_the_timeout(tmp_path: Path, silent_port: int) -> None:
    elapsed, code, ids = _timed_verify(_manifest(tmp_path, silent_port))
    assert ids == ["live.tls"]
    assert code == 1
    assert elapsed <= TIMEOUT_S + SLACK_S, f"verify took {elapsed:.1f} s"


def test_closed_port_is_bounded_by_the_timeout(tmp_path: Path) -> None:
    elapsed, code, ids = _timed_verify(_manifest(tmp_path, free_port()))
    assert ids == ["live.connect"]
    assert code == 1
    assert elapsed <= TIMEOUT_S + SLACK_S, f"verify took {elapsed:.1f} s"
