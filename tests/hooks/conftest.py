"""phoenix-certbot installed on Debian's own Python, as docs/operations.md tells an operator
with Debian's certbot package to install it.

One venv per session, made by Debian's /usr/bin/python3 with `--system-site-packages` (so
Debian's certbot code is importable from it) and the session's wheel. It lives under
/var/lib, not under /tmp, /root or /home: the hardened units hide those (PrivateTmp=,
ProtectHome=), and the systemd test runs this phoenix-cert through them.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    PROVISION_HINT,
    Built,
    Installed,
    certbot_for,
    run_step,
    unavailable,
)
from tests.harness.certbot_runner import Certbot
from tests.harness.pebble import Pebble

SYSTEM_PYTHON = Path("/usr/bin/python3")
DEBIAN_CERTBOT = Path("/usr/bin/certbot")
VENV_PARENT = Path("/var/lib/phoenix-certbot-test")
STALE_S = 24 * 3600.0  # older than any test session
# Debian 12's certbot 2.1 imports pyOpenSSL; pyOpenSSL < 24 breaks on cryptography >= 41
# and pyOpenSSL >= 25 lacks the X509Req that Debian's josepy and acme use. phoenix-certbot
# needs cryptography >= 42. These bounds are the overlap (docs/operations.md gives them).
DEBIAN12_PINS = ("cryptography>=42,<45", "pyOpenSSL>=24.2,<25")


@pytest.fixture(scope="session")
def debian_venv(built: Built) -> Iterator[Installed]:
    """The wheel in a venv of /usr/bin/python3 that also sees Debian's packages."""
    if not SYSTEM_PYTHON.is_file():
        unavailable(f"{SYSTEM_PYTHON} is missing (apt-get install python3 python3-venv)")
    # The recipe is for a host with Debian's certbot: the venv takes certbot from it.
    if not DEBIAN_CERTBOT.is_file():
        unavailable(f"{DEBIAN_CERTBOT} is missing (apt-get install certbot); {PROVISION_HINT}")
    VENV_PARENT.mkdir(parents=True, exist_ok=True)
    for old in VENV_PARENT.glob("system-venv-*"):  # left by a test run that was killed
        if time.time() - old.stat().st_mtime > STALE_S:
            shutil.rmtree(old, ignore_errors=True)
    base = Path(tempfile.mkdtemp(prefix="system-venv-", dir=VENV_PARENT))
    base.chmod(0o755)
    venv = base / "phoenix-certbot"
    started = time.monotonic()
    try:
        run_step(
            [str(SYSTEM_PYTHON), "-m", "venv", "--system-site-packages", str(venv)],
            f"{SYSTEM_PYTHON} -m venv",
            timeout=120,
        )
        run_step(
            [
                str(venv / "bin" / "python"), "-m", "pip", "install",
                "--disable-pip-version-check", "--no-input", str(built.wheel), *DEBIAN12_PINS,
            ],
            "pip install of the wheel on Debian's Python",
            timeout=600,
        )  # fmt: skip
        yield Installed(venv=venv, seconds=time.monotonic() - started)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def debian_certbot(pebble: Pebble, tmp_path: Path) -> Certbot:
    """Debian's certbot package (/usr/bin/certbot on /usr/bin/python3) aimed at the
    session's Pebble, with its folders under tmp_path."""
    if not DEBIAN_CERTBOT.is_file():
        unavailable(f"{DEBIAN_CERTBOT} is missing (apt-get install certbot); {PROVISION_HINT}")
    return certbot_for(pebble, tmp_path / "debian-certbot", DEBIAN_CERTBOT)
