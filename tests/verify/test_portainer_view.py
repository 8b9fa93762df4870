"""`verify --portainer-*`: Portainer asked to reach the agent on every node (a Portainer
API double over real TLS on loopback; no Docker)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from phoenix_certbot.cli.main import cli
from tests.support import pki
from tests.support.portainer_api import API_KEY, Behaviour, FakePortainer
from tests.verify import builders as b


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def findings(self) -> list[dict[str, Any]]:
        return list(json.loads(self.stdout)["findings"])


@pytest.fixture
def ca(tmp_path: Path) -> pki.Issued:
    return pki.make_ca("portainer test CA")


@pytest.fixture
def portainer(tmp_path: Path, ca: pki.Issued) -> Iterator[FakePortainer]:
    with FakePortainer(tmp_path, ca, Behaviour(unreachable_agents={"node-1002"})) as server:
        yield server


def run(
    tmp_path: Path,
    server: FakePortainer,
    ca: pki.Issued,
    key: str,
    *extra: str,
    token_mode: int = 0o600,
) -> Outcome:
    _, live = b.lineage(tmp_path)
    manifest = b.write_manifest(tmp_path / "m.json", [b.entry("portainer", live)], tmp_path / "s")
    manifest.chmod(0o600)
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    token = tmp_path / "portainer.token"
    token.write_text(key + "\n")
    token.chmod(token_mode)
    args = [
        "-vv", "verify", "--json", "--no-swarm-checks", "--timeout", "5",
        "--manifest", str(manifest),
        "--portainer-url", server.base, "--portainer-server-name", "portainer.test",
        "--portainer-token-file", str(token), *extra,
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    return Outcome(result.exit_code, result.stdout, result.stderr)


def test_the_unreachable_agent_is_named(
    tmp_path: Path, portainer: FakePortainer, ca: pki.Issued
) -> None:
    outcome = run(tmp_path, portainer, ca, API_KEY, "--portainer-ca-file", str(tmp_path / "ca.pem"))
    assert outcome.code == 1
    assert [f["id"] for f in outcome.findings] == ["portainer.agent-unreachable"]
    assert "the agent on node node-1002" in outcome.findings[0]["message"]
    assert sorted(portainer.targets) == ["node-1001", "node-1002"]
    assert json.loads(outcome.stdout)["checked"]["agents"] == 2


def test_a_wrong_token_is_exit_2_and_never_shown(
    tmp_path: Path, ca: pki.Issued, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "ptr_wrong_" + "Z9" * 12
    with (
        caplog.at_level(logging.DEBUG),
        FakePortainer(tmp_path, ca, Behaviour(echo_key_in_errors=True)) as server,
    ):
        outcome = run(tmp_path, server, ca, wrong, "--portainer-ca-file", str(tmp_path / "ca.pem"))
    assert outcome.code == 2
    assert [f["id"] for f in outcome.findings] == ["portainer.auth"]
    assert wrong in server.requests[-1].decode()  # it was sent...
    for text in (outcome.stdout, outcome.stderr, caplog.text):  # ...and never shown
        assert wrong not in text


def test_an_untrusted_portainer_says_how_to_pass_its_ca(
    tmp_path: Path, portainer: FakePortainer, ca: pki.Issued
) -> None:
    outcome = run(tmp_path, portainer, ca, API_KEY)
    assert outcome.code == 1
    (finding,) = outcome.findings
    assert finding["id"] == "portainer.untrusted"
    assert "--portainer-ca-file" in finding["fix"]
    assert portainer.requests == []


def test_an_open_token_file_is_exit_2_naming_it(
    tmp_path: Path, portainer: FakePortainer, ca: pki.Issued, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    ca_file = str(tmp_path / "ca.pem")
    outcome = run(
        tmp_path, portainer, ca, API_KEY, "--portainer-ca-file", ca_file, token_mode=0o644
    )
    token = tmp_path / "portainer.token"
    assert outcome.code == 2
    (finding,) = outcome.findings
    assert (finding["id"], finding["file"]) == ("portainer.auth", str(token))
    assert "readable by group or others (mode 0644)" in finding["message"]
