"""promtool, the reference linter of the Prometheus text format and of alerting rules.

Debian's `prometheus` package provides it (provision.sh extracts it); without it the
checks are skipped, except under CI=true, where a missing tool is a failure.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.conftest import unavailable


def promtool(*args: str, stdin: str | None = None, cwd: Path | None = None) -> str:
    """Run promtool; fail the test with its output unless it exits 0. Returns stdout."""
    found = shutil.which("promtool")
    if found is None:
        unavailable("promtool is missing (apt-get install prometheus)")
    result = subprocess.run(
        [found, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )
    assert result.returncode == 0, f"promtool {' '.join(args)}: {result.stdout}{result.stderr}"
    return result.stdout


def check_metrics(text: str) -> None:
    """Fail the test if promtool finds any problem in the exposition `text`."""
    promtool("check", "metrics", stdin=text)
