"""Shared by every benchmark: running a command and measuring it, statistics, output.

`run_measured` times one child process from fork to reap (`os.wait4`), which also gives
that child's own peak RSS, and timestamps each line it writes to stderr so that a run can
be broken down into phases afterwards.
"""

from __future__ import annotations

import compileall
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import phoenix_certbot

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PHOENIX_CERT = VENV_BIN / "phoenix-cert"


class BenchError(RuntimeError):
    """A benchmark could not produce a valid figure (setup failed, a run failed)."""


# -- running commands -------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    argv: tuple[str, ...]
    returncode: int
    wall_s: float
    max_rss_kib: int  # the child's own peak resident set (ru_maxrss, KiB on Linux)
    stdout: str
    stderr_lines: tuple[tuple[float, str], ...]  # (seconds since start, line)
    timed_out: bool = False
    started_epoch: float = 0.0  # time.time() when the command was forked
    load: tuple[float, float] = (0.0, 0.0)  # 1-min load average when it started and ended
    cpu_s: float = 0.0  # CPU time of the command and the children it waited for

    @property
    def load_text(self) -> str:
        return f"{self.load[0]:.2f}/{self.load[1]:.2f}"

    @property
    def stderr(self) -> str:
        return "\n".join(line for _, line in self.stderr_lines)

    def check(self, what: str) -> Run:
        if self.returncode != 0 or self.timed_out:
            # The outcome (stdout) says what failed; the last log lines say what came before.
            shown = [
                line
                for line in self.stderr.splitlines()
                if "WARNING" in line or "ERROR" in line or not line.startswith("phoenix-cert: INFO")
            ]
            tail = "\n".join([*shown[-15:], *self.stdout.splitlines()[-20:]])
            why = "timed out" if self.timed_out else f"exit {self.returncode}"
            raise BenchError(f"{what} failed ({why}): {' '.join(self.argv)}\n{tail}")
        return self


# The child's peak RSS must not include ours: on Linux a child's ru_maxrss starts at the
# RSS of the process it was forked from and survives exec, so a child of this (large) process
# would report at least our own size. A small launcher (python -S, ~8 MiB, below anything
# measured here) forks the command, times it from fork to reap and reports, on a pipe,
# [epoch at fork, wall seconds, wait status, ru_maxrss KiB, CPU seconds (user + system)].
_LAUNCHER = """
import json, os, sys, time
fd, argv = int(sys.argv[1]), sys.argv[2:]
epoch, t0 = time.time(), time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - t0
cpu = usage.ru_utime + usage.ru_stime
os.write(fd, json.dumps([epoch, wall, status, usage.ru_maxrss, cpu]).encode())
"""


def run_measured(
    argv: Sequence[str | Path],
    *,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Run:
    """Run `argv` (stdin from /dev/null), wait at most `timeout_s`, and measure it."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    args = tuple(str(a) for a in argv)
    load_at_start = os.getloadavg()[0]
    stderr_lines: list[tuple[float, str]] = []  # (epoch, line)
    stdout_chunks: list[bytes] = []
    report_r, report_w = os.pipe()
    try:
        proc = subprocess.Popen(
            (sys.executable, "-S", "-c", _LAUNCHER, str(report_w), *args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full_env,
            cwd=cwd,
            pass_fds=(report_w,),
            start_new_session=True,  # one process group: a timeout kills the command too
        )
    finally:
        os.close(report_w)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout, proc.stderr

    def read_stdout() -> None:
        stdout_chunks.append(out.read())

    def read_stderr() -> None:
        for raw in iter(err.readline, b""):
            stderr_lines.append((time.time(), raw.decode(errors="replace").rstrip("\n")))

    readers = [threading.Thread(target=f, daemon=True) for f in (read_stdout, read_stderr)]
    for thread in readers:
        thread.start()
    timed_out = False
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        if proc.returncode is None or timed_out:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        for thread in readers:
            thread.join(10)
        out.close()
        err.close()
        with os.fdopen(report_r, "rb") as report:
            raw_report = report.read()
    try:
        epoch, wall, status, rss, cpu = json.loads(raw_report)
        returncode = os.waitstatus_to_exitcode(int(status))
    except ValueError:  # killed before it could report
        epoch, wall, rss, cpu, returncode = time.time(), float(timeout_s), 0, 0.0, -9
    return Run(
        argv=args,
        returncode=returncode,
        wall_s=float(wall),
        max_rss_kib=int(rss),
        cpu_s=float(cpu),
        stdout=b"".join(stdout_chunks).decode(errors="replace"),
        stderr_lines=tuple((t - float(epoch), line) for t, line in stderr_lines),
        timed_out=timed_out,
        started_epoch=float(epoch),
        load=(load_at_start, os.getloadavg()[0]),
    )


# The shell baselines' first lines: `mark EVENT` writes `@@ <epoch> EVENT` on stderr (the
# benchmark times phases from it), and `check PORT SERVER-NAME SHA256` waits, bounded, until
# the leaf served on 127.0.0.1:PORT is the expected one, as an operator's script would.
SHELL_PREAMBLE = (
    "set -euo pipefail",
    'mark() { printf \'@@ %s %s\\n\' "$(date +%s.%N)" "$*" >&2; }',
    "check() {  # port server-name expected-sha256",
    "  for attempt in $(seq 1 40); do",
    '    got=$(timeout 10 openssl s_client -connect "127.0.0.1:$1" -servername "$2" '
    "</dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 2>/dev/null "
    "| cut -d= -f2 | tr -d ':' | tr 'A-F' 'a-f') || true",
    '    if [ "$got" = "$3" ]; then mark "checked $1 attempts=$attempt"; return 0; fi',
    "    sleep 0.5",
    "  done",
    '  echo "127.0.0.1:$1 does not serve $3" >&2; return 1',
    "}",
    "mark begin",
)


# -- statistics -------------------------------------------------------------------------
@dataclass(frozen=True)
class Stats:
    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def minimum(self) -> float:
        return min(self.values)

    @property
    def maximum(self) -> float:
        return max(self.values)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def secs(seconds: float) -> str:
    return f"{seconds:.2f} s"


# -- output -----------------------------------------------------------------------------
@dataclass
class Section:
    """What one benchmark printed, kept for `--record`."""

    name: str
    lines: list[str] = field(default_factory=list)


@dataclass
class Output:
    sections: list[Section] = field(default_factory=list)

    def begin(self, name: str, title: str) -> None:
        self.sections.append(Section(name))
        self.line("")
        self.line(f"== {name}: {title}")
        self.line(f"(load average, 1 min, at start: {load_average()})")

    def line(self, text: str = "") -> None:
        print(text, flush=True)
        if self.sections:
            self.sections[-1].lines.append(text)

    def note(self, text: str) -> None:
        """Progress while setting up: printed on stderr, not recorded."""
        print(f"   .. {text}", file=sys.stderr, flush=True)

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]

        def fmt(cells: Sequence[str]) -> str:
            return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=False)).rstrip()

        self.line(fmt(headers))
        self.line(fmt(["-" * w for w in widths]))
        for row in rows:
            self.line(fmt(row))

    def ratio(self, name: str, value: float, goal: float, what: str = "ours/baseline") -> None:
        verdict = "MET" if value <= goal else "NOT MET"
        self.line(f"RATIO {name} {what} = {value:.2f} (goal <= {goal:g}) {verdict}")

    def record(self, path: Path, environment: Mapping[str, str], argv: Sequence[str]) -> None:
        parts = ["# phoenix-cert benchmark run", ""]
        parts += [f"- {k}: {v}" for k, v in environment.items()]
        parts += [f"- command: `python -m bench {' '.join(argv)}`".replace("  ", " "), ""]
        for section in self.sections:
            parts += [f"## {section.name}", "", "```", *section.lines[1:], "```", ""]
        path.write_text("\n".join(parts))


# -- the machine ------------------------------------------------------------------------
def environment(engine_version: str) -> dict[str, str]:
    load = os.getloadavg()
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, {platform.platform()}",
        "python": platform.python_version(),
        "engine": engine_version,
        "load average at start": f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
    }


def compile_tool() -> str:
    """Compile phoenix-cert's bytecode before anything is timed, as pip does when it
    installs a package. An editable install has none until a run writes it, and with
    PYTHONDONTWRITEBYTECODE set (it is, on the shared machine) none ever does: every timed
    run would compile some 40 modules from source, about 80 ms that no operator pays."""
    package = Path(phoenix_certbot.__file__).parent
    ok = compileall.compile_dir(package, quiet=1)
    where = "PYTHONDONTWRITEBYTECODE set" if os.environ.get("PYTHONDONTWRITEBYTECODE") else "unset"
    return f"{package} compiled ahead ({where})" if ok else f"{package}: compileall failed"


def load_average() -> str:
    return f"{os.getloadavg()[0]:.2f}"


# -- polling ----------------------------------------------------------------------------
def poll_until(
    what: str, check: Callable[[], bool], timeout_s: float, interval_s: float = 0.2
) -> None:
    """Call `check` until it is true; bounded in time and in attempts."""
    deadline = time.monotonic() + timeout_s
    for _ in range(int(timeout_s / interval_s) + 2):
        if check():
            return
        if time.monotonic() > deadline:
            break
        time.sleep(interval_s)
    raise BenchError(f"{what}: not within {timeout_s:g} s")


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """Let a cleanup finish even if Ctrl-C is pressed again (it is bounded in time)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
