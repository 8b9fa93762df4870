"""`phoenix-cert wait-ready` against real TLS servers on loopback: its bound, its exit
codes, its output (a Portainer API double; the swarm checks on real swarms are in
tests/verify/test_two_nodes.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from phoenix_certbot.cli.main import cli
from tests.support import pki
from tests.support.portainer_api import API_KEY, Behaviour, FakePortainer
from tests.support.tls_server import SilentListener

PHOENIX_CERT = [str(Path(sys.executable).parent / "phoenix-cert")]
GRACE_S = 0.5  # threads and judgement after the last request's timeout
PROCESS_SLACK_S = 5.0  # interpreter start and imports, on a 2-core machine busy with other runs


@pytest.fixture
def ca() -> pki.Issued:
    return pki.make_ca("portainer test CA")


@pytest.fixture
def files(tmp_path: Path, ca: pki.Issued) -> dict[str, Path]:
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(ca.cert_pem)
    token = tmp_path / "portainer.token"
    token.write_text(API_KEY + "\n")
    token.chmod(0o600)
    return {"ca": bundle, "token": token}


def wait_ready(server: FakePortainer, files: dict[str, Path], *extra: str) -> Result:
    args = [
        "wait-ready", "--portainer-url", server.base, "--portainer-server-name",
        "portainer.test", "--portainer-ca-file", str(files["ca"]), "--no-swarm-checks", *extra,
    ]  # fmt: skip
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def test_a_listener_that_never_answers_is_bounded(tmp_path: Path) -> None:
    """--timeout 5: the last attempt may start just before 5 s and last one request timeout."""
    with SilentListener() as silent:
        started = time.monotonic()
        done = subprocess.run(
            [
                *PHOENIX_CERT,
                "wait-ready",
                "--portainer-url",
                f"https://127.0.0.1:{silent.port}",
                "--timeout",
                "5",
                "--request-timeout",
                "2",
                "--no-swarm-checks",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    assert [f["id"] for f in document["findings"]] == ["portainer.unreachable"]
    assert re.search(
        r"TLS handshake .* failed: no answer within (1\.\d|2) s$",
        document["findings"][0]["message"],
    )
    assert document["attempts"] == 3  # at 0, 2 and 4 s
    # The bound, as wait-ready measures itself; the process adds its start and imports,
    # which on a machine busy with other test runs took up to 3 s.
    assert document["elapsed_s"] <= 5 + 2 + GRACE_S, document["elapsed_s"]
    assert elapsed <= 5 + 2 + PROCESS_SLACK_S, f"wait-ready took {elapsed:.1f} s"
    lines = done.stderr.splitlines()  # not a terminal: one line per attempt
    assert [line.split(" at ")[0] for line in lines] == [
        f"wait-ready: attempt {n}" for n in (1, 2, 3)
    ]
    print(
        f"\nwait-ready --timeout 5 --request-timeout 2, silent listener: {elapsed:.2f} s "
        f"(process), {document['elapsed_s']} s (its own measure)"
    )


def test_ready_once_the_agent_answers(
    tmp_path: Path, ca: pki.Issued, files: dict[str, Path]
) -> None:
    behaviour = Behaviour(unreachable_agents={"node-1002"})
    with FakePortainer(tmp_path, ca, behaviour) as server:
        repaired = threading.Timer(1.0, behaviour.unreachable_agents.clear)
        repaired.start()
        try:
            started = time.monotonic()
            result = wait_ready(
                server, files, "--portainer-token-file", str(files["token"]), "--interval", "0.5"
            )
            elapsed = time.monotonic() - started
        finally:
            repaired.cancel()
    assert result.exit_code == 0, result.output
    attempts = result.stderr.splitlines()
    assert "not ready: [portainer.agent-unreachable]" in attempts[0]
    assert "the agent on node node-1002" in attempts[0]
    assert attempts[-1].endswith(": ready")
    assert result.stdout.startswith(f"wait-ready: ready after {len(attempts)} attempt(s)")
    assert elapsed < 1.0 + 2 * 0.5 + 1.0


def test_a_wrong_token_is_exit_2_at_once_and_never_shown(
    tmp_path: Path, ca: pki.Issued, files: dict[str, Path]
) -> None:
    wrong = "ptr_wrong_" + "Q7" * 12
    files["token"].write_text(wrong)
    with FakePortainer(tmp_path, ca, Behaviour(echo_key_in_errors=True)) as server:
        result = wait_ready(server, files, "--portainer-token-file", str(files["token"]), "--json")
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert [f["id"] for f in document["findings"]] == ["portainer.auth"]
    assert document["attempts"] == 1
    assert wrong in server.requests[-1].decode()
    assert wrong not in result.stdout and wrong not in result.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--manifest", "/nonexistent/m.json"], "/nonexistent/m.json: file not found"),
        (["--portainer-url", "http://127.0.0.1:9000"], "give https://HOST:PORT"),
        (
            ["--portainer-url", "https://127.0.0.1:9443", "--portainer-ca-file", "/nonexistent"],
            "/nonexistent: cannot use as CA bundle",
        ),
    ],
)
def test_bad_input_is_exit_2_before_any_request(args: list[str], words: str) -> None:
    result = CliRunner().invoke(cli, ["wait-ready", *args], catch_exceptions=False)
    assert result.exit_code == 2
    assert words in result.stderr


def test_docker_unreachable_is_exit_3_with_the_swarm_checks_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    args = ["wait-ready", "--portainer-url", "https://127.0.0.1:9443"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 3
    assert "cannot reach Docker at /nonexistent/docker.sock" in result.stderr


def test_progress_on_a_terminal_rewrites_one_line() -> None:
    from phoenix_certbot.cli.wait_ready_cmd import _progress
    from phoenix_certbot.verify.model import Checked, VerifyReport
    from phoenix_certbot.verify.wait import Attempt

    runner = CliRunner()
    with runner.isolation() as (_out, err, *_):
        show = _progress(tty=True)
        show(Attempt(1, 0.1, VerifyReport((), Checked())))
        show(Attempt(2, 2.1, VerifyReport((), Checked())))
        written = err.getvalue().decode()  # type: ignore[union-attr]
    assert written == (
        "\r\x1b[Kwait-ready: attempt 1 at 0.1 s: ready\r\x1b[Kwait-ready: attempt 2 at 2.1 s: ready"
    )
