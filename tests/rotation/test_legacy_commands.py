"""Legacy post_renewal_commands: never through a shell, bounded, only when asked."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from phoenix_certbot.errors import OperationFailed
from phoenix_certbot.rotation.legacy_commands import run_legacy_command
from tests.rotation.lab import Lab, invoke, write_private
from tests.support import pki


def test_words_reach_the_program_literally(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "out"
    caplog.set_level(logging.INFO, logger="phoenix_certbot")
    # A shell would expand $HOME and run `rm` after the `;`; here they are plain words,
    # so touch creates a file with exactly that name.
    run_legacy_command("web", f"touch {out} '{tmp_path}/$HOME;rm'")
    assert out.exists() and (tmp_path / "$HOME;rm").exists()
    assert any("running legacy command" in r.message for r in caplog.records)


def test_output_is_logged_and_failure_is_an_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="phoenix_certbot")
    with pytest.raises(OperationFailed, match="exited 3"):
        run_legacy_command("web", "sh -c 'echo visible; exit 3'")
    assert any("stdout: visible" in r.getMessage() for r in caplog.records)


def test_timeout_and_missing_program() -> None:
    with pytest.raises(OperationFailed, match=r"timed out after 0\.5 s"):
        run_legacy_command("web", "sleep 5", timeout_s=0.5)
    with pytest.raises(OperationFailed, match="no-such-program-phx: not found"):
        run_legacy_command("web", "no-such-program-phx --flag")
    with pytest.raises(OperationFailed, match="cannot be split"):
        run_legacy_command("web", "echo 'unclosed")


@pytest.mark.docker
def test_rotate_runs_a_legacy_command_only_when_asked_and_once_per_certificate(lab: Lab) -> None:
    ran = lab.root / "ran"
    leaf = pki.issue(["legacy.test"], lab.ca)
    cert, key = lab.root / "legacy.crt", lab.root / "legacy.key"
    cert.write_bytes(leaf.cert_pem + lab.ca.cert_pem)
    key.write_bytes(leaf.key_pem)
    key.chmod(0o600)
    command = f"sh -c 'echo run >> {ran}'"
    manifest = write_private(
        lab.root / "legacy.json",
        json.dumps(
            [
                {
                    "common_name": "legacy.test",
                    "sans": ["legacy.test"],
                    "cert_path": str(cert),
                    "key_path": str(key),
                    "owner": "root:root",
                    "permissions": "600",
                    "post_renewal_command": command,
                }
            ]
        ),
    )
    # The legacy format has no settings: keep its state inside the test.
    env = {"PHOENIX_CERT_STATE_DIR": str(lab.state_dir)}

    skipped = invoke("rotate", "--manifest", manifest, "--all", env=env)
    assert skipped.exit_code == 0, skipped.output
    assert not ran.exists() and "--run-legacy-commands" in skipped.stderr

    first = invoke("rotate", "--manifest", manifest, "--all", "--run-legacy-commands", env=env)
    assert first.exit_code == 0, first.output
    assert ran.read_text() == "run\n"
    again = invoke("rotate", "--manifest", manifest, "--all", "--run-legacy-commands", env=env)
    assert again.exit_code == 0 and ran.read_text() == "run\n"  # same certificate: not again
