"""Tearing a lab down, whatever state it reached (also a dead run's, known only by its slot's
record), and finding what is left of it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tests.harness.cluster.host import (
    NETNS_DIR,
    LabError,
    addresses,
    cgroup_members,
    links,
    mounts_under,
    netns_names,
    not_zombie,
    ns_inode,
    proc_table,
    run,
    wait_for,
    with_descendants,
)

if TYPE_CHECKING:
    from tests.harness.cluster.lab import ClusterLab
    from tests.harness.cluster.node import Node


def teardown(lab: ClusterLab) -> list[str]:
    """Every step runs, each failure is noted; `lab.teardown_timings` gets each step's
    seconds and `lab.timings["teardown"]` the total."""
    problems: list[str] = []
    started = time.monotonic()
    for client in lab.clients:
        client.close()
    lab.clients.clear()
    steps: list[tuple[str, Callable[[ClusterLab], None]]] = [
        ("thaw", _thaw),
        ("remove services", _remove_services),
        ("stop the daemons", _stop_daemons),
        ("kill what is left", _kill_leftover_processes),
        ("unmount", lambda lab: _unmount(lab.base)),
        ("delete namespaces and links", _delete_network),
        ("remove cgroups", _remove_cgroups),
        ("remove the folder", lambda lab: _remove_folder(lab.base)),
    ]
    for what, step in steps:
        begun = time.monotonic()
        try:
            step(lab)
        except (LabError, OSError) as exc:
            problems.append(f"{what}: {exc}")
        lab.teardown_timings[what] = time.monotonic() - begun
    lab.timings["teardown"] = time.monotonic() - started
    return problems


def leftovers(lab: ClusterLab) -> list[str]:
    found: list[str] = []
    names = netns_names() & set(lab.namespaces)
    if names:
        found.append(f"network namespaces {sorted(names)}")
    ours = {link for link in links() if link.startswith(f"{lab.slot.prefix}-")}
    if ours:
        found.append(f"links {sorted(ours)}")
    if lab.slot.address_prefix in addresses():
        found.append(f"host addresses in {lab.slot.subnet}")
    pids = [p for p in our_processes(lab) if not_zombie(p)]
    if pids:
        found.append(f"processes {pids}")
    points = mounts_under(lab.base)
    if points:
        found.append(f"mounts {points}")
    if lab.base.exists():
        found.append(f"folder {lab.base}")
    cgroups = _cgroup_dirs(lab.nodes)
    if cgroups:
        found.append(f"cgroups {[str(c) for c in cgroups]}")
    return found


def our_processes(lab: ClusterLab) -> list[int]:
    """Processes the lab started, by what ties them to it: a command line naming its folder,
    a network namespace of the lab, a cgroup under a node's cgroup parent (the containers,
    whatever became of their parents); and all their descendants."""
    table = proc_table()
    inodes = {ns_inode(NETNS_DIR / ns) for ns in lab.namespaces} - {None}
    marker = str(lab.base).encode()
    found = {
        pid
        for pid, (_, cmdline, net) in table.items()
        if marker in cmdline or (net is not None and net in inodes)
    }
    found |= cgroup_members(_cgroup_dirs(lab.nodes)) & set(table)
    found = with_descendants(found, table)
    found.discard(os.getpid())
    return sorted(found)


def _thaw(lab: ClusterLab) -> None:  # a stopped dockerd would not handle SIGTERM
    for node in lab.nodes:
        node.thaw()


def _remove_services(lab: ClusterLab) -> None:
    # Tasks stopped first make the daemons' shutdown short; skipped without a quorum.
    mgr = next((node for node in lab.managers if node.answers()), None)
    if mgr is None or not lab.node_states():
        return
    ids = mgr.docker("service", "ls", "-q", check=False, timeout=20).split()
    if ids:
        mgr.docker("service", "rm", *ids, check=False, timeout=20)
    for node in lab.nodes:
        if node.answers():
            with contextlib.suppress(LabError):
                wait_for(f"containers gone on {node.name}", _no_containers(node), 20.0)


def _no_containers(node: Node) -> Callable[[], bool]:
    def ready() -> bool:
        return not node.docker("ps", "-aq", check=False, timeout=10).split()

    return ready


def _stop_daemons(lab: ClusterLab) -> None:
    for node in lab.nodes:  # all at once: each takes up to its shutdown timeout
        pid = node.daemon_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    for node in lab.nodes:
        node.end(signal.SIGTERM)


def _kill_leftover_processes(lab: ClusterLab) -> None:
    pids = our_processes(lab)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if pids:
        wait_for(
            f"processes {pids} gone",
            lambda: not [p for p in pids if Path(f"/proc/{p}").exists() and not_zombie(p)],
            10.0,
        )


def _unmount(base: Path) -> None:
    for _round in range(3):
        points = mounts_under(base)
        if not points:
            return
        for point in points:
            if run(["umount", point], check=False).returncode != 0:
                run(["umount", "-l", point], check=False)
    left = mounts_under(base)
    if left:
        raise LabError(f"still mounted: {left}")


def _delete_network(lab: ClusterLab) -> None:
    failed: list[str] = []
    present = netns_names()
    for netns in lab.namespaces:
        if netns in present:
            result = run(["ip", "netns", "delete", netns], check=False)
            failed += [f"{netns}: {result.stderr.strip()}"] if result.returncode else []
    host_link = lab.slot.host_link
    if host_link in links():  # gone with the switch namespace, normally
        result = run(["ip", "link", "delete", host_link], check=False)
        failed += [f"{host_link}: {result.stderr.strip()}"] if result.returncode else []
    # `ip netns add` made /run/netns a mount point if it was not there: put it back.
    if not lab.netns_dir_was_there and NETNS_DIR.is_dir() and not any(NETNS_DIR.iterdir()):
        run(["umount", str(NETNS_DIR)], check=False)
        with contextlib.suppress(OSError):
            NETNS_DIR.rmdir()
    if failed:
        raise LabError("; ".join(failed))


def _cgroup_dirs(nodes: tuple[Node, ...]) -> list[Path]:
    root = Path("/sys/fs/cgroup")
    found: list[Path] = []
    for node in nodes:  # the cgroup parent is named like the node's namespace
        found += [p for p in root.glob(f"*/{node.netns}") if p.is_dir()]
        found += [p for p in root.glob(node.netns) if p.is_dir()]  # cgroup v2
    return found


def _remove_cgroups(lab: ClusterLab) -> None:
    for top in _cgroup_dirs(lab.nodes):
        inner = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for directory in inner:
            directory.rmdir()
        top.rmdir()


def _remove_folder(base: Path) -> None:
    if not base.exists():
        return
    if mounts_under(base):
        raise LabError(f"not removing {base}: something is still mounted there")
    shutil.rmtree(base)
