"""`promtool check metrics`, the reference linter of the Prometheus text format.

Debian's `prometheus` package provides it; without it the check is skipped, except under
CI=true, where a missing tool is a failure.
"""

from __future__ import annotations

import shutil
import subprocess

from tests.conftest import unavailable


def check_metrics(text: str) -> None:
    """Fail the test if promtool finds any problem in `text`."""
    promtool = shutil.which("promtool")
    if promtool is None:
        unavailable("promtool is missing (apt-get install prometheus)")
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, f"promtool: {result.stdout}{result.stderr}\n---\n{text}"
