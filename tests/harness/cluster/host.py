"""Host-level chores of the cluster lab: bounded commands, polling, and what is on the host
(processes, mounts, links, namespaces), read from /proc and `ip`."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO

NETNS_DIR = Path("/run/netns")
COMMAND_S = 60.0
POLL_S = 0.2


class LabError(Exception):
    """Setting up, using or tearing down a cluster lab failed."""


def run(
    args: Sequence[str],
    *,
    timeout: float = COMMAND_S,
    check: bool = True,
    stdin: IO[bytes] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command, bounded in time; raise LabError with its stderr when it fails."""
    try:
        result = subprocess.run(
            list(args),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=stdin,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"{' '.join(args)}: {exc}") from None
    if check and result.returncode != 0:
        stderr = result.stderr.strip()[-2000:]
        raise LabError(f"{' '.join(args)}: exit {result.returncode}: {stderr}")
    return result


def in_netns(netns: str, *args: str, uts: Path | None = None) -> list[str]:
    """A command line that runs `args` in `netns` (and the UTS namespace bound at `uts`).

    nsenter, not `ip netns exec`: that also remounts /sys, and dockerd then fails with
    "Devices cgroup isn't mounted".
    """
    namespaces = [f"--net={NETNS_DIR / netns}"] + ([f"--uts={uts}"] if uts else [])
    return ["nsenter", *namespaces, *args]


def wait_for(
    what: str, ready: Callable[[], bool], timeout: float, interval: float = POLL_S
) -> None:
    """Poll `ready` until it holds; bounded in time and in attempts."""
    deadline = time.monotonic() + timeout
    for _attempt in range(int(timeout / interval) + 2):
        if ready():
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise LabError(f"{what}: not within {timeout:g} s")


def wait_ping(prefix: list[str], address: str, source: str) -> None:
    def answers() -> bool:
        ping = [*prefix, "ping", "-c", "1", "-W", "1", address]
        return run(ping, check=False, timeout=5).returncode == 0

    wait_for(f"ping {address} from {source}", answers, 10.0)


# -- processes ----------------------------------------------------------------------------------
def ns_inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None


def proc_table() -> dict[int, tuple[int, bytes, int | None]]:
    """pid -> (parent pid, command line, network namespace inode)."""
    table: dict[int, tuple[int, bytes, int | None]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
            try:
                net: int | None = (entry / "ns" / "net").stat().st_ino
            except OSError:
                net = None
        except OSError:  # gone meanwhile
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        table[int(entry.name)] = (parent, cmdline, net)
    return table


def with_descendants(found: set[int], table: dict[int, tuple[int, bytes, int | None]]) -> set[int]:
    found = set(found)
    for _round in range(64):  # bounded: process trees here are a few levels deep
        more = {pid for pid, (parent, _, _) in table.items() if parent in found} - found
        if not more:
            break
        found |= more
    return found


def cgroup_members(tops: Iterable[Path]) -> set[int]:
    """Processes in the cgroups at and below `tops`."""
    members: set[int] = set()
    for top in tops:
        for procs in top.rglob("cgroup.procs"):
            with contextlib.suppress(OSError, ValueError):
                members |= {int(line) for line in procs.read_text().split()}
    return members


def not_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def process_state(pid: int) -> str:
    """The one-letter state of `pid` (R, S, T for stopped, Z...), or "" once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return ""


# -- mounts, links, namespaces, addresses ----------------------------------------------------
def mounts_under(base: Path) -> list[str]:
    """Mount points at or below `base`, deepest first."""
    points: list[str] = []
    prefix = str(base)
    with Path("/proc/self/mountinfo").open(encoding="utf-8") as mountinfo:
        for line in mountinfo:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return sorted(set(points), key=len, reverse=True)


def links() -> set[str]:
    result = run(["ip", "-o", "link", "show"], check=False)
    return {line.split(":")[1].strip().split("@")[0] for line in result.stdout.splitlines()}


def netns_names() -> set[str]:
    result = run(["ip", "netns", "list"], check=False)
    return {line.split()[0] for line in result.stdout.splitlines() if line.strip()}


def addresses() -> str:
    return run(["ip", "-o", "-4", "addr", "show"], check=False).stdout
