"""One node of a lab: a dockerd in its own network and UTS namespace, and what can be done
to it alone (signals, iptables rules in its namespace)."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness.cluster.host import (
    LabError,
    in_netns,
    not_zombie,
    proc_table,
    process_state,
    run,
    wait_for,
)
from tests.harness.cluster.layout import NodeSpec, Slot

DAEMON_START_S = 60.0
DAEMON_STOP_S = 20.0  # after SIGTERM, then SIGKILL
FAULT_TAG = "phxlab-fault"  # iptables comment on every fault rule: clear_faults() finds them
RUNTIME = "phxlab-runc"  # every lab node's default runtime: runc, but starts can be made to fail
# runc for a lab node, except that a container start fails on purpose while the counter
# file holds a number above 0 (each failed `create` takes one off), only for containers
# whose OCI config contains the file's second word if it has one (a secret's ID: its mount
# source names it). dockerd then reports the task as Docker's own start failures are:
# "starting container failed: ...".
_RUNTIME_SCRIPT = """#!/bin/sh
counter={counter}
create= bundle= previous=
for arg do
  [ "$arg" = create ] && create=1
  [ "$previous" = --bundle ] && bundle=$arg
  previous=$arg
done
if [ -n "$create" ] && read -r left only 2>/dev/null < "$counter" && [ "${{left:-0}}" -gt 0 ]
then
  if [ -z "$only" ] || grep -qF -- "$only" "$bundle/config.json" 2>/dev/null; then
    echo "$((left - 1)) $only" > "$counter"
    echo "phoenix lab: container start failed on purpose" >&2
    exit 1
  fi
fi
exec {runc} "$@"
"""


@dataclass
class Node:
    spec: NodeSpec
    index: int
    slot: Slot
    root: Path
    process: subprocess.Popen[bytes] | None = None
    node_id: str = ""
    frozen: list[int] = field(default_factory=list)  # pids stopped by freeze()
    faults: dict[str, list[list[str]]] = field(default_factory=dict)  # iptables rules by fault

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def role(self) -> str:
        return self.spec.role

    @property
    def netns(self) -> str:  # also its bridge port, hostname and cgroup parent
        return f"{self.slot.prefix}-{self.spec.name}"

    @property
    def hostname(self) -> str:
        return self.netns

    @property
    def address(self) -> str:
        return self.slot.node_address(self.index)

    @property
    def uts(self) -> Path:
        """The bind mount keeping the node's UTS namespace (its hostname) across restarts."""
        return self.root / "uts"

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def host(self) -> str:
        """What DOCKER_HOST (or `docker -H`) takes to reach this node's daemon."""
        return f"unix://{self.socket}"

    @property
    def log(self) -> Path:
        return self.root / "dockerd.log"

    @property
    def pidfile(self) -> Path:
        return self.root / "docker.pid"

    @property
    def start_failures(self) -> Path:
        return self.root / "fail-starts"

    def configure(self) -> None:
        """daemon.json, with the runtime a test can make fail (`fail_starts`) as default."""
        runc = shutil.which("runc")
        if runc is None:
            raise LabError("runc not found: the lab's runtime wraps it")
        script = self.root / RUNTIME
        script.write_text(
            _RUNTIME_SCRIPT.format(counter=shlex.quote(str(self.start_failures)), runc=runc)
        )
        script.chmod(0o755)
        config = {"runtimes": {RUNTIME: {"path": str(script)}}, "default-runtime": RUNTIME}
        (self.root / "daemon.json").write_text(json.dumps(config) + "\n")

    def fail_starts(self, count: int, only: str = "") -> None:
        """The next `count` container starts on this node fail, as an engine fault would;
        with `only`, the starts of containers whose OCI config contains it (a secret ID)."""
        self.start_failures.write_text(f"{count} {only}\n")

    def starts_to_fail(self) -> int:
        """How many of the starts `fail_starts` asked for have not been failed yet."""
        try:
            return int(self.start_failures.read_text().split()[0])
        except (FileNotFoundError, IndexError):
            return 0

    def dockerd_args(self) -> list[str]:
        return [
            "dockerd",
            f"--data-root={self.root / 'data'}",
            f"--exec-root={self.root / 'exec'}",
            f"--pidfile={self.pidfile}",
            f"--host={self.host}",
            f"--config-file={self.root / 'daemon.json'}",
            f"--cgroup-parent={self.netns}",
            f"--bip={self.slot.bip(self.index)}",
            "--storage-driver=overlay2",
            "--iptables=true",
            "--ip-forward=true",
            "--userland-proxy=false",
            "--shutdown-timeout=5",
            "--log-level=info",
        ]

    def docker(self, *args: str, timeout: float = 60.0, check: bool = True) -> str:
        return run(["docker", "-H", self.host, *args], timeout=timeout, check=check).stdout

    def answers(self) -> bool:
        """Whether this node's dockerd answers its API now (not stopped, not frozen)."""
        if self.frozen or not self.socket.exists() or self.daemon_pid() is None:
            return False
        try:  # a restarting manager holds its API back until it has found the swarm
            probe = run(["docker", "-H", self.host, "version"], check=False, timeout=5)
        except LabError:
            return False
        return probe.returncode == 0

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- the daemon ----------------------------------------------------------------------------
    def daemon_pid(self) -> int | None:
        if self.process is not None:
            return self.process.pid if self.process.poll() is None else None
        try:  # a stale run: only the pidfile is left
            pid = int(self.pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if str(self.root).encode() in cmdline else None

    def containerd_pids(self) -> list[int]:
        """The containerd that this node's dockerd supervises (its child)."""
        pid = self.daemon_pid()
        return [
            child
            for child, (parent, cmdline, _) in proc_table().items()
            if pid is not None and parent == pid and cmdline.startswith(b"containerd\0")
        ]

    def spawn(self) -> None:
        """Start dockerd in the node's namespaces, in the background."""
        # dockerd refuses to start while its pidfile names a live process.
        if self.daemon_pid() is None:
            self.pidfile.unlink(missing_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                in_netns(self.netns, *self.dockerd_args(), uts=self.uts),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_answering(self) -> None:
        def exited() -> bool:
            return self.process is not None and self.process.poll() is not None

        try:
            wait_for(f"dockerd of {self.name}", lambda: exited() or self.answers(), DAEMON_START_S)
        except LabError as exc:
            raise LabError(f"{exc}\n{self.log_tail()}") from None
        if exited():
            raise LabError(f"dockerd of {self.name} exited:\n{self.log_tail()}")

    def end(self, sig: signal.Signals) -> None:
        """Send `sig` to dockerd and wait until it and its containerd are gone (SIGKILL
        after DAEMON_STOP_S). The containers' shims, and so the containers, are not ours to
        wait for: a SIGKILLed dockerd leaves them running."""
        self.thaw()
        pid = self.daemon_pid()
        if pid is None:
            return
        family = [pid, *self.containerd_pids()]
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if self.process is not None:
            try:
                self.process.wait(timeout=DAEMON_STOP_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        # containerd dies with dockerd (a parent-death signal); a new dockerd that still sees
        # it would wait for it and fail with "timeout waiting for containerd to start".
        try:
            wait_for(
                f"dockerd and containerd of {self.name} gone",
                lambda: not any(not_zombie(p) for p in family),
                DAEMON_STOP_S,
            )
        except LabError:
            for each in family:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(each, signal.SIGKILL)
        wait_for(
            f"{family} reaped", lambda: not any(Path(f"/proc/{p}").exists() for p in family), 10
        )

    def freeze(self) -> None:
        """SIGSTOP dockerd and its containerd; the containers keep running."""
        if self.frozen:
            return
        pid = self.daemon_pid()
        if pid is None:
            raise LabError(f"freeze {self.name}: its dockerd is not running")
        pids = [pid, *self.containerd_pids()]
        self.frozen = pids
        for each in pids:
            os.kill(each, signal.SIGSTOP)
        wait_for(
            f"{self.name} stopped", lambda: all(process_state(p) in {"T", ""} for p in pids), 5.0
        )

    def thaw(self) -> None:
        for pid in self.frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self.frozen = []

    # -- iptables in the node's namespace -----------------------------------------------------
    def iptables(self, *args: str) -> str:
        return run(in_netns(self.netns, "iptables", "-w", "5", *args)).stdout

    def add_fault(self, fault: str, rules: list[list[str]]) -> None:
        """Insert `rules` (each: chain, then match and target) at the top of their chains."""
        if fault in self.faults:
            raise LabError(f"{self.name}: {fault} is already in place")
        self.faults[fault] = []
        for chain, *spec in rules:
            tagged = [*spec, "-m", "comment", "--comment", FAULT_TAG]
            self.iptables("-I", chain, "1", *tagged)
            self.faults[fault].append([chain, *tagged])

    def remove_fault(self, fault: str) -> None:
        for rule in self.faults.pop(fault, []):
            self.iptables("-D", *rule)

    def clear_faults(self) -> None:
        """Remove every fault rule in the node's namespace, whoever put it there."""
        self.faults.clear()
        for line in self.iptables("-S").splitlines():
            if FAULT_TAG in line and line.startswith("-A "):
                self.iptables("-D", *shlex.split(line)[1:])
