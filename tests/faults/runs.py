"""The tool under test as its own process (`phoenix-cert ...`), finished or still running,
and a bounded poll for the conditions a fault row waits on."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pytest

from tests.rotation.lab import PHOENIX_CERT

RUN_TIMEOUT_S = 300.0
SIGKILLED = -9


@dataclass(frozen=True, repr=False)
class Run:
    """One `phoenix-cert` process, finished. `report` is what a failed assert shows (a str:
    pytest cuts the repr of any other message object short)."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    started: float  # wall clock
    seconds: float

    @property
    def ended(self) -> float:
        return self.started + self.seconds

    @property
    def report(self) -> str:
        return (
            f"phoenix-cert {' '.join(self.args)}: exit {self.returncode} after "
            f"{self.seconds:.1f} s\n--- stdout\n{self.stdout[-3000:]}\n--- stderr\n"
            f"{self.stderr[-5000:]}"
        )

    def __repr__(self) -> str:
        return f"<Run {' '.join(self.args[:1])}: exit {self.returncode}>"


class Running:
    """A `phoenix-cert` process still running (for faults injected while it runs)."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str]) -> None:
        self.args = tuple(args)
        self.started = time.time()
        self._began = time.monotonic()
        self.process = subprocess.Popen(
            [str(PHOENIX_CERT), *self.args],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait(self, timeout: float = RUN_TIMEOUT_S) -> Run:
        try:
            stdout, stderr = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            stdout, stderr = self.process.communicate(timeout=30)
            pytest.fail(
                f"phoenix-cert {' '.join(self.args)} still running after {timeout:g} s "
                f"(killed)\n{stderr[-5000:]}"
            )
        return Run(
            self.args,
            self.process.returncode,
            stdout,
            stderr,
            self.started,
            time.monotonic() - self._began,
        )


def poll(what: str, ready: Callable[[], bool], timeout: float, interval: float = 0.05) -> float:
    """Poll `ready` until it holds (bounded); returns the wall-clock time it did."""
    deadline = time.monotonic() + timeout
    for _attempt in range(int(timeout / interval) + 2):
        if ready():
            return time.time()
        if time.monotonic() > deadline:
            break
        time.sleep(interval)
    pytest.fail(f"{what}: not within {timeout:g} s")
