"""Debian's certbot package with phoenix-certbot installed as docs/operations.md says.

Debian 12's certbot (2.1, on /usr/bin/python3) renews; phoenix-cert, from a venv of
Debian's Python that also sees Debian's packages (`debian_venv`), rotates the stand-in
through `--deploy-hook`. The same venv's Python runs /usr/bin/certbot with the plugin
visible, while Debian's certbot on Debian's Python stays as it was.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, Installed
from tests.harness.certbot_runner import Certbot
from tests.hooks.conftest import DEBIAN12_PINS, DEBIAN_CERTBOT
from tests.rotation.lab import Lab, hook_rotates_at_issue_and_renewal

OPERATIONS = REPO_ROOT / "docs" / "operations.md"


def plugins(*command: str | Path, folder: Path) -> subprocess.CompletedProcess[str]:
    """`certbot plugins` with its folders under `folder` (no root-owned /etc/letsencrypt)."""
    return subprocess.run(
        [
            *map(str, command), "plugins",
            "--config-dir", str(folder / "config"),
            "--work-dir", str(folder / "work"),
            "--logs-dir", str(folder / "logs"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )  # fmt: skip


def test_debian_certbot_sees_the_plugin_only_through_the_venvs_python(
    debian_venv: Installed, debian_certbot: Certbot, tmp_path: Path
) -> None:
    print(f"\nvenv of Debian's Python + pip install: {debian_venv.seconds:.1f} s")
    # Debian's /usr/bin/certbot, run by the venv's Python: Debian's certbot code with the
    # venv's libraries, the plugin among its plugins.
    seen = plugins(debian_venv.python, DEBIAN_CERTBOT, folder=tmp_path / "venv")
    assert seen.returncode == 0, seen.stderr
    assert "* phoenix-swarm" in seen.stdout
    assert "Entry point: phoenix-swarm = phoenix_certbot.certbot_plugin:SwarmInstaller" in (
        seen.stdout
    )
    # The same program on Debian's Python is untouched by the install: it still works, and
    # it does not see the plugin.
    plain = plugins(DEBIAN_CERTBOT, folder=tmp_path / "plain")
    assert plain.returncode == 0, plain.stderr
    assert "* standalone" in plain.stdout
    assert "phoenix-swarm" not in plain.stdout


def test_the_documented_pins_are_the_tested_ones() -> None:
    text = OPERATIONS.read_text()
    for pin in DEBIAN12_PINS:
        assert f"'{pin}'" in text, f"docs/operations.md does not give {pin!r}"


@pytest.mark.docker
def test_debian_certbot_renewal_rotates_through_the_deploy_hook(
    lab: Lab, debian_venv: Installed, debian_certbot: Certbot
) -> None:
    hook = hook_rotates_at_issue_and_renewal(lab, debian_certbot, debian_venv.bin("phoenix-cert"))
    # It was Debian's certbot that issued and renewed (its version in its log), calling our
    # hook from the venv.
    log = (debian_certbot.logs_dir / "letsencrypt.log").read_text(errors="replace")
    assert "certbot version: 2." in log
    assert f"Running deploy-hook command: {hook}" in log
