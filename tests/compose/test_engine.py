"""`docker stack config` as a second opinion: the docker CLI's own parser, client-side.

Every corpus file goes through both it and our rules: they must agree on which files
`docker stack deploy` refuses. Where they did not, our rules were fixed
(compose.deploy-order-invalid came from such a disagreement).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from phoenix_certbot.compose.context import FORMAT_RULES
from phoenix_certbot.compose.engine import NO_DAEMON, engine_verdict
from phoenix_certbot.verify.run import VerifyOptions, run_verify
from tests.compose.builders import CORPUS
from tests.compose.test_corpus import CASES, _lint
from tests.conftest import unavailable


@pytest.fixture(scope="module")
def docker_cli() -> str:
    found = shutil.which("docker")
    if found is None or engine_verdict([CORPUS / "clean-anchors.yml"], environ={}) is None:
        unavailable("no docker CLI with `docker stack config` (Docker 23 or later) on PATH")
    assert found is not None
    return found


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_engine_and_our_rules_agree_on_what_it_refuses(docker_cli: str, name: str) -> None:
    case = CASES[name]
    verdict = engine_verdict([case.file], environ=dict(case.env))
    assert verdict is not None
    ours = sorted(f.id for f in _lint(case) if f.id in {r.value for r in FORMAT_RULES})
    assert verdict.accepted == (not ours), (verdict.message, ours)


def test_it_needs_no_daemon(docker_cli: str, tmp_path: Path) -> None:
    # DOCKER_HOST is always replaced by a socket that does not exist; whatever the caller's
    # environment says, the verdict comes from the client alone.
    file = CORPUS / "broken-ports-under-deploy.yml"
    for host in ("tcp://192.0.2.1:2375", NO_DAEMON):
        started = time.monotonic()
        verdict = engine_verdict([file], environ={"DOCKER_HOST": host})
        assert verdict is not None and not verdict.accepted
        assert (
            verdict.message == "services.portainer.deploy Additional property ports is not allowed"
        )
        assert time.monotonic() - started < 10


def test_its_warnings_are_not_reasons_and_a_missing_or_hung_cli_gives_no_verdict(
    docker_cli: str, tmp_path: Path
) -> None:
    # It warns (level=warning) about host IPs in ports but accepts the file.
    verdict = engine_verdict([CORPUS / "port-host-ip-ignored.yml"], environ={})
    assert verdict is not None and verdict.accepted
    assert engine_verdict([CORPUS / "clean-anchors.yml"], environ={}, docker="/nonexistent") is None
    if Path("/usr/bin/docker").is_file():  # Debian's 20.10 CLI: no `stack config`, no verdict
        assert engine_verdict(
            [CORPUS / "clean-anchors.yml"], environ={}, docker="/usr/bin/docker"
        ) in (
            None,
            engine_verdict([CORPUS / "clean-anchors.yml"], environ={}),
        )
    hung = tmp_path / "docker"
    hung.write_text("#!/bin/sh\nexec sleep 30\n")
    hung.chmod(0o755)
    started = time.monotonic()
    assert (
        engine_verdict([CORPUS / "clean-anchors.yml"], environ={}, docker=str(hung), timeout_s=1)
        is None
    )
    assert time.monotonic() - started < 5


def test_verify_reports_the_refusal_next_to_our_findings(docker_cli: str) -> None:
    file = CORPUS / "deploy-unknown-key.yml"
    report = run_verify(VerifyOptions(compose_files=(str(file),), offline=True))
    ids = [f.id for f in report.findings]
    assert ids.count("compose.deploy-unknown-key") == 2
    [engine] = [f for f in report.findings if f.id == "compose.engine-rejects"]
    assert engine.file == str(file) and engine.severity.value == "error"
    assert "services.web.deploy Additional property" in engine.message
