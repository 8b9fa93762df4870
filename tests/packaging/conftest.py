"""Build the sdist and wheel once per session and install the wheel into a fresh venv.

The build runs on a copy of the source tree (what `git ls-files` would ship, roughly), so
it neither writes into the working tree nor picks up a stale egg-info or build/ folder.
The venv is a plain one: pip installs the dependencies from the package index this machine
is configured with (measured at about 5 s), which is the honest test of the metadata.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, unavailable

# Files and folders of a working tree that a release is not built from.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "*.egg-info", "build", "dist", "__pycache__", ".*_cache", "tests", "bench"
)


@dataclass(frozen=True)
class Built:
    wheel: Path
    sdist: Path
    seconds: float


@dataclass(frozen=True)
class Installed:
    venv: Path
    seconds: float

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name


def _run(command: list[str], what: str, timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        unavailable(f"{what}: {exc}")
    if result.returncode != 0:
        output = f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        pytest.fail(f"{what} failed ({result.returncode}):\n{output}")
    return result


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """`python -m build`: the sdist, then the wheel built from that sdist."""
    base = tmp_path_factory.mktemp("packaging")
    source = base / "source"
    shutil.copytree(REPO_ROOT, source, ignore=_NOT_SOURCE, symlinks=True)
    started = time.monotonic()
    _run(
        [sys.executable, "-m", "build", "--outdir", str(base / "dist"), str(source)],
        "python -m build",
        timeout=600,
    )
    seconds = time.monotonic() - started
    (wheel,) = (base / "dist").glob("*.whl")
    (sdist,) = (base / "dist").glob("*.tar.gz")
    return Built(wheel=wheel, sdist=sdist, seconds=seconds)


@pytest.fixture(scope="session")
def installed(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel in a new plain venv, dependencies from the configured index."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    started = time.monotonic()
    _run([sys.executable, "-m", "venv", str(venv)], "python -m venv", timeout=120)
    _run(
        [
            str(venv / "bin" / "python"), "-m", "pip", "install",
            "--disable-pip-version-check", "--no-input", str(built.wheel),
        ],
        "pip install of the wheel",
        timeout=600,
    )  # fmt: skip
    return Installed(venv=venv, seconds=time.monotonic() - started)
