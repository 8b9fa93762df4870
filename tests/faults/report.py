"""The "measured" column of docs/reliability.md from a real run of the matrix.

    PHOENIX_FAULTS_REPORT=/tmp/faults.jsonl .venv/bin/pytest tests/faults
    .venv/bin/python -m tests.faults.report /tmp/faults.jsonl

prints one line per test: its id and what it measured (exit codes, the longest time
without a valid leaf, the faulted run's seconds, the recovery time).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

MAIN = (
    "exit", "next_exit", "longest_without_valid_s", "run_s", "recovery_s", "probes", "result",
    "invariant",
)  # fmt: skip


def measured(line: dict[str, object]) -> str:
    parts = [
        f"invariant {line.get('invariant', 'held')}",
        f"exit {line['exit']}, next {line['next_exit']}",
        f"no valid leaf ≤ {line['longest_without_valid_s']} s",
        f"run {line['run_s']} s",
        f"recovered in {line['recovery_s']} s",
    ]
    extra = {k: v for k, v in line.items() if k not in (*MAIN, "row", "test")}
    parts += [f"{k.replace('_', ' ')} {v}" for k, v in extra.items()]
    verdict = "**FAILED**: " if line.get("result") == "FAILED" else ""
    return verdict + "; ".join(parts) + f" ({line['probes']} probes)"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    for text in Path(argv[0]).read_text(encoding="utf-8").splitlines():
        line = json.loads(text)
        print(f"`{line['test']}` | {measured(line)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
