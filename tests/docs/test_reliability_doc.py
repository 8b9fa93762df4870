"""Every test of the fault matrix (tests/faults/) has its row in docs/reliability.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def matrix_tests() -> list[str]:
    """Test ids under tests/faults, as pytest collects them (parameters included)."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "tests/faults"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return [
        line.split("::", 1)[1]
        for line in result.stdout.splitlines()
        if line.startswith("tests/faults/") and "::" in line
    ]


def test_every_fault_test_is_in_the_reliability_table() -> None:
    tests = matrix_tests()
    assert len(tests) >= 15  # the matrix has at least 15 rows
    doc = (REPO / "docs" / "reliability.md").read_text()
    assert [t for t in tests if f"`{t}`" not in doc] == []
