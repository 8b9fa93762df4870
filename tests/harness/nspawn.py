"""A throwaway machine with a real systemd as PID 1 (systemd-nspawn), for testing the units.

The machine's root is a small folder made at each boot, not a copy of the host:

    ROOT/usr        the host's /usr, bound read-only (programs, libraries, systemd's units)
    ROOT/etc        a minimal /etc: os-release, a machine id, root in passwd/group, the
                    loader cache, alternatives; default.target = multi-user.target
    ROOT/bin ...    the merged-/usr symlinks

A machine id in /etc means this is not a "first boot", so systemd enables no preset units,
and the host's own enablement links (/etc/systemd/system/*.wants: docker, containerd...) and
SysV scripts are simply not there: only systemd's static units start (journald, dbus,
logind). Nothing of the host is writable inside except what `binds` names (the Docker
socket). The machine shares the host's network namespace so that a unit inside reaches a
port published on 127.0.0.1; nothing in it configures the network (no networkd or
ifupdown, and nspawn mounts /proc/sys read-only). Booting takes 0.5-1.3 s here.

`Machine.stop()` powers it off (SIGTERM to nspawn), kills what is left by pid, and removes
the root folder after checking that nothing is mounted under it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

NSPAWN = Path("/usr/bin/systemd-nspawn")
NSENTER = Path("/usr/bin/nsenter")
BOOT_S = 30.0
STOP_S = 15.0
COMMAND_S = 60.0
POLL_S = 0.1
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# Copied from the host's /etc: what programs (the loader, Python, systemd) need to start.
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "nsswitch.conf", "alternatives")
# Inside the machine: a clean environment, not the test process's.
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin", "LANG": "C.UTF-8"}


class MachineError(Exception):
    """Booting, reaching or stopping the machine failed."""


def prerequisites_problem() -> str | None:
    """Why a machine cannot be booted here, or None."""
    if os.geteuid() != 0:
        return "booting systemd under systemd-nspawn needs root"
    for tool in (NSPAWN, NSENTER):
        if not tool.is_file():
            return f"{tool} is missing (apt-get install systemd-container util-linux)"
    if not Path("/usr/lib/systemd/systemd").is_file():
        return "/usr/lib/systemd/systemd is missing (apt-get install systemd)"
    return None


@dataclass(frozen=True)
class Bind:
    """A host path made visible inside the machine at `inside` (default: the same path)."""

    host: Path
    inside: Path | None = None
    read_only: bool = True

    def option(self) -> str:
        kind = "--bind-ro" if self.read_only else "--bind"
        return f"{kind}={self.host}:{self.inside or self.host}"


def make_root(root: Path) -> None:
    """The minimal root folder described in the module docstring."""
    etc = root / "etc"
    (etc / "systemd" / "system").mkdir(parents=True)
    (root / "usr").mkdir()
    for name in ("bin", "sbin", "lib", "lib64"):
        (root / name).symlink_to(f"usr/{name}")
    for name in ETC_FILES:
        source = Path("/etc") / name
        if source.is_dir():
            shutil.copytree(source, etc / name, symlinks=True)
        elif source.exists():
            shutil.copy2(source, etc / name)
    # nspawn looks for os-release before it binds /usr: a copy, not the usual symlink.
    shutil.copy2("/usr/lib/os-release", etc / "os-release")
    (etc / "machine-id").write_text(uuid.uuid4().hex + "\n")
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (etc / "group").write_text("root:x:0:\n")
    (etc / "systemd" / "system" / "default.target").symlink_to(
        "/usr/lib/systemd/system/multi-user.target"
    )


def _power_off_with_parent() -> None:
    """In the child before exec: SIGTERM (nspawn then powers the machine off) when the
    test process dies, so that a killed test run leaves no machine running."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _mounted_under(path: Path) -> list[str]:
    """Mount points under `path` in this (the host's) mount namespace."""
    prefix = str(path).rstrip("/") + "/"
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == str(path) or point.startswith(prefix):
            found.append(point)
    return found


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Machine:
    """One booted machine; use `boot()` as a context manager."""

    def __init__(self, base: Path, binds: Sequence[Bind]) -> None:
        self.name = f"phx-{uuid.uuid4().hex[:8]}"
        self.base = base
        self.root = base / "root"
        self.log_path = base / "console.log"
        self.binds = tuple(binds)
        self.process: subprocess.Popen[bytes] | None = None
        self.leader: int | None = None  # the machine's PID 1 (systemd), as the host sees it
        self.boot_seconds = 0.0

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        make_root(self.root)
        command = [
            str(NSPAWN),
            "--quiet",
            f"--directory={self.root}",
            f"--machine={self.name}",
            "--boot",
            "--register=no",  # no systemd-machined on the host
            "--keep-unit",  # no host systemd to make a scope
            "--console=read-only",  # boot messages to our log, no terminal needed
            "--link-journal=no",
            "--resolv-conf=off",
            "--timezone=off",
            "--bind-ro=/usr",
            *(b.option() for b in self.binds),
        ]
        started = time.monotonic()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_power_off_with_parent,  # noqa: PLW1509 - only prctl, no locks
            )
        self.leader = self._wait_leader(started + BOOT_S)
        self._wait_running(started + BOOT_S)
        self.boot_seconds = time.monotonic() - started

    def _wait_leader(self, deadline: float) -> int:
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise MachineError(f"systemd-nspawn exited ({self.process.returncode})")
            for child in _children(self.process.pid):
                with contextlib.suppress(OSError):
                    if Path(f"/proc/{child}/comm").read_text().strip() == "systemd":
                        return child
            time.sleep(POLL_S)
        raise MachineError(f"no systemd under systemd-nspawn within {BOOT_S:g} s")

    def _wait_running(self, deadline: float) -> None:
        state = "(no answer)"
        while time.monotonic() < deadline:
            result = self.run("systemctl", "is-system-running", timeout=10, check=False)
            state = result.stdout.strip() or result.stderr.strip()
            if state in ("running", "degraded"):
                if state == "degraded":
                    failed = self.run("systemctl", "--failed", "--no-legend", check=False)
                    raise MachineError(f"booted degraded: {failed.stdout.strip()}")
                return
            time.sleep(POLL_S)
        raise MachineError(f"systemd did not finish booting within {BOOT_S:g} s: {state}")

    def stop(self) -> list[str]:
        """Power off, kill what is left, remove the root folder; returns what went wrong."""
        problems: list[str] = []
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # nspawn powers a booted machine off
            try:
                self.process.wait(STOP_S)
            except subprocess.TimeoutExpired:
                problems.append(f"{self.name} did not power off within {STOP_S:g} s: killed")
                self.process.kill()
                self.process.wait(STOP_S)
        # Killing PID 1 of a PID namespace kills every process in it.
        if self.leader is not None and _alive(self.leader):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.leader, signal.SIGKILL)
            deadline = time.monotonic() + STOP_S
            while _alive(self.leader) and time.monotonic() < deadline:
                time.sleep(POLL_S)
            if _alive(self.leader):
                problems.append(f"{self.name}: its systemd (pid {self.leader}) survived SIGKILL")
        mounted = _mounted_under(self.root)
        if mounted:
            # Never delete through a mount: ROOT/usr could be the host's /usr.
            problems.append(f"left {self.root} in place, still mounted: {', '.join(mounted)}")
        elif self.root.exists():
            shutil.rmtree(self.root)
        return problems

    # -- inside the machine -------------------------------------------------------------
    def command(self, *args: str | Path, env: Mapping[str, str] | None = None) -> list[str]:
        """`args` as run in the machine: in its mount, PID, IPC, UTS and cgroup namespaces,
        with a clean environment (ENV and `env`)."""
        if self.leader is None:
            raise MachineError("the machine is not running")
        variables = {**ENV, **(env or {})}
        return [
            str(NSENTER),
            f"--target={self.leader}",
            "--mount", "--uts", "--ipc", "--pid", "--cgroup", "--root", "--wd",
            "--", "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in variables.items()),
            *map(str, args),
        ]  # fmt: skip

    def run(
        self,
        *args: str | Path,
        timeout: float = COMMAND_S,
        check: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        try:
            result = subprocess.run(
                self.command(*args, env=env),
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise MachineError(f"{' '.join(map(str, args))}: no answer in {timeout:g} s") from exc
        if check and result.returncode != 0:
            raise MachineError(
                f"{' '.join(map(str, args))} exited {result.returncode}: "
                f"{result.stdout.strip()} {result.stderr.strip()}"
            )
        return result

    def path(self, inside: str | Path) -> Path:
        """Where a path of the machine's own root folder lies on the host (not for binds)."""
        return self.root / Path(inside).relative_to("/")

    def console(self) -> str:
        """The machine's console output so far (boot and shutdown messages)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextlib.contextmanager
def boot(base: Path, binds: Sequence[Bind]) -> Iterator[Machine]:
    """A booted machine in `base` (an empty folder), stopped and removed afterwards, also
    when the body fails (what the teardown could not do is then printed, not raised)."""
    machine = Machine(base, binds)
    try:
        machine.start()
        yield machine
    except BaseException as exc:
        problems = machine.stop()
        if problems:
            print(f"tearing {machine.name} down: {'; '.join(problems)}", file=sys.stderr)
        if isinstance(exc, MachineError):
            raise MachineError(f"{exc}\n--- console ---\n{machine.console()[-3000:]}") from None
        raise
    problems = machine.stop()
    if problems:
        raise MachineError(f"tearing {machine.name} down: {'; '.join(problems)}")
