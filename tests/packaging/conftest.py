"""Install the session's wheel (built once, `built` in tests/conftest.py) into a fresh venv.

The venv is a plain one: pip installs the dependencies from the package index this machine
is configured with (measured at about 5 s), which is the honest test of the metadata.
"""

from __future__ import annotations

import sys
import time

import pytest

from tests.conftest import Built, Installed, run_step

__all__ = ["Built", "Installed"]


@pytest.fixture(scope="session")
def installed(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel in a new plain venv, dependencies from the configured index."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    started = time.monotonic()
    run_step([sys.executable, "-m", "venv", str(venv)], "python -m venv", timeout=120)
    run_step(
        [
            str(venv / "bin" / "python"), "-m", "pip", "install",
            "--disable-pip-version-check", "--no-input", str(built.wheel),
        ],
        "pip install of the wheel",
        timeout=600,
    )  # fmt: skip
    return Installed(venv=venv, seconds=time.monotonic() - started)
