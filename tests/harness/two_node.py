"""A two-node Docker Swarm on one machine: two extra dockerd, each in a network namespace.

The machine's own dockerd (and its one-node swarm on 127.0.0.1) is never touched. Layout:

    host  phx2n-h 10.213.0.1/24 ──veth── [netns phx2n-sw: bridge phx2n-br]
                                              ├──veth── [netns phx2n-mgr: eth0 10.213.0.2/24]
                                              └──veth── [netns phx2n-wkr: eth0 10.213.0.3/24]

The bridge sits in its own namespace on purpose: bridged frames pass br_netfilter, and the
host's FORWARD chain (policy DROP, set by the main dockerd) would drop node-to-node traffic
on a bridge in the host namespace. The host only ever sends to and receives from phx2n-h.

Each node runs `nsenter --net=/run/netns/NODE dockerd` with its own data-root, exec-root
(hence its own supervised containerd), pidfile, unix socket, config file, cgroup parent and
docker0 address, all under one temporary folder. The manager inits the swarm on its veth
address, the worker joins it; the stand-in image is copied in with `docker save | load`.

`TwoNodeSwarm.teardown()` removes everything even after a half-done setup, and
`leftovers()` says what is still there. A run killed hard leaves its folder's name in
LOCK_FILE: the next setup finds it and cleans up first (`python -m tests.harness.two_node
cleanup` does the same by hand).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import docker

PREFIX = "phx2n"
SUBNET = "10.213.0.0/24"
HOST_ADDRESS = "10.213.0.1"
HOST_LINK = f"{PREFIX}-h"  # the host's end; its peer sits in the switch namespace
SWITCH_NS = f"{PREFIX}-sw"
BRIDGE = f"{PREFIX}-br"
NETNS_DIR = Path("/run/netns")
LOCK_FILE = Path("/run/lock") / f"{PREFIX}.lock"
TOOLS = ("ip", "nsenter", "dockerd", "docker", "iptables", "umount")

DAEMON_START_S = 60.0
DAEMON_STOP_S = 20.0  # after SIGTERM, then SIGKILL
COMMAND_S = 60.0
POLL_S = 0.2


class TwoNodeError(Exception):
    """Setting up or using the two-node swarm failed."""


class Busy(TwoNodeError):
    """Another run holds the two-node swarm's names (the lock file)."""


@dataclass(frozen=True)
class NodeSpec:
    name: str  # "mgr" or "wkr": the node label phx2n.node, and part of every other name
    address: str
    bip: str
    role: str

    @property
    def netns(self) -> str:
        return f"{PREFIX}-{self.name}"

    @property
    def switch_port(self) -> str:  # the veth end on the bridge, in the switch namespace
        return f"{PREFIX}-{self.name}"

    @property
    def cgroup_parent(self) -> str:
        return f"{PREFIX}-{self.name}"


MANAGER = NodeSpec("mgr", "10.213.0.2", "10.214.2.1/24", "manager")
WORKER = NodeSpec("wkr", "10.213.0.3", "10.214.3.1/24", "worker")
NODES = (MANAGER, WORKER)
NAMESPACES = (MANAGER.netns, WORKER.netns, SWITCH_NS)
NODE_LABEL = f"{PREFIX}.node"


def prerequisites_problem() -> str | None:
    """Why this machine cannot run the two-node swarm, or None."""
    if os.geteuid() != 0:
        return "the two-node swarm needs root (network namespaces, a second dockerd)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"the two-node swarm needs {', '.join(missing)} on PATH"
    return None


def run(
    args: Sequence[str],
    *,
    timeout: float = COMMAND_S,
    check: bool = True,
    stdin: IO[bytes] | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command, bounded in time; raise TwoNodeError with its stderr when it fails."""
    try:
        result = subprocess.run(
            list(args),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=stdin,
            env=env,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TwoNodeError(f"{' '.join(args)}: {exc}") from None
    if check and result.returncode != 0:
        raise TwoNodeError(
            f"{' '.join(args)}: exit {result.returncode}: {result.stderr.strip()[-2000:]}"
        )
    return result


def in_netns(netns: str, *args: str) -> list[str]:
    """A command line that runs `args` in `netns` (network namespace only, unlike
    `ip netns exec`, which also remounts /sys and breaks dockerd)."""
    return ["nsenter", f"--net={NETNS_DIR / netns}", *args]


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
    raise TwoNodeError(f"{what}: not within {timeout:g} s")


# -- processes, mounts, namespaces on this host ---------------------------------------------
def _netns_inode(netns: str) -> int | None:
    try:
        return (NETNS_DIR / netns).stat().st_ino
    except OSError:
        return None


def _proc_table() -> dict[int, tuple[int, bytes, int | None]]:
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


def our_processes(base: Path) -> list[int]:
    """Processes this harness started, by what ties them to us: a command line naming the
    temporary folder, or a network namespace we created; and all their descendants."""
    table = _proc_table()
    inodes = {i for i in (_netns_inode(ns) for ns in NAMESPACES) if i is not None}
    marker = str(base).encode()
    found = {
        pid
        for pid, (_, cmdline, net) in table.items()
        if marker in cmdline or (net is not None and net in inodes)
    }
    found |= _cgroup_members() & set(table)  # containers, whatever became of their parents
    for _round in range(64):  # descendants: containers under the shims
        more = {pid for pid, (parent, _, _) in table.items() if parent in found} - found
        if not more:
            break
        found |= more
    found.discard(os.getpid())
    return sorted(found)


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


def _links() -> set[str]:
    result = run(["ip", "-o", "link", "show"], check=False)
    return {line.split(":")[1].strip().split("@")[0] for line in result.stdout.splitlines()}


def _netns_names() -> set[str]:
    result = run(["ip", "netns", "list"], check=False)
    return {line.split()[0] for line in result.stdout.splitlines() if line.strip()}


def _addresses() -> str:
    return run(["ip", "-o", "-4", "addr", "show"], check=False).stdout


def _cgroup_dirs() -> list[Path]:
    root = Path("/sys/fs/cgroup")
    found: list[Path] = []
    for spec in NODES:
        found += [p for p in root.glob(f"*/{spec.cgroup_parent}") if p.is_dir()]
        found += [p for p in root.glob(spec.cgroup_parent) if p.is_dir()]  # cgroup v2
    return found


# -- a node ------------------------------------------------------------------------------------
@dataclass
class Node:
    spec: NodeSpec
    root: Path
    process: subprocess.Popen[bytes] | None = None
    node_id: str = ""

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
    def address(self) -> str:
        return self.spec.address

    def dockerd_args(self) -> list[str]:
        config = self.root / "daemon.json"
        return [
            "dockerd",
            f"--data-root={self.root / 'data'}",
            f"--exec-root={self.root / 'exec'}",
            f"--pidfile={self.root / 'docker.pid'}",
            f"--host={self.host}",
            f"--config-file={config}",
            f"--cgroup-parent={self.spec.cgroup_parent}",
            f"--bip={self.spec.bip}",
            "--storage-driver=overlay2",
            "--iptables=true",
            "--ip-forward=true",
            "--userland-proxy=false",
            "--shutdown-timeout=5",
            "--log-level=info",
        ]

    def docker(self, *args: str, timeout: float = COMMAND_S, check: bool = True) -> str:
        return run(["docker", "-H", self.host, *args], timeout=timeout, check=check).stdout

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


# -- the cluster ----------------------------------------------------------------------------------
@dataclass
class TwoNodeSwarm:
    base: Path
    image: str = ""
    manager: Node = field(init=False)
    worker: Node = field(init=False)
    timings: dict[str, float] = field(default_factory=dict)
    teardown_timings: dict[str, float] = field(default_factory=dict)
    _clients: list[docker.DockerClient] = field(default_factory=list)
    # `ip netns add` makes /run/netns a mount point if it is not there; teardown undoes that.
    netns_dir_was_there: bool = True

    def __post_init__(self) -> None:
        self.manager = Node(MANAGER, self.base / MANAGER.name)
        self.worker = Node(WORKER, self.base / WORKER.name)

    @property
    def nodes(self) -> tuple[Node, Node]:
        return (self.manager, self.worker)

    def client(self) -> docker.DockerClient:
        """An SDK client for the manager (closed at teardown)."""
        client = docker.DockerClient(base_url=self.manager.host, timeout=60)
        self._clients.append(client)
        return client

    def iptables(self, node: Node, *args: str) -> str:
        return run(in_netns(node.spec.netns, "iptables", "-w", "5", *args)).stdout

    @contextlib.contextmanager
    def port_blocked(self, node: Node, port: int, action: str = "REJECT") -> Iterator[None]:
        """Refuse (REJECT: a TCP reset) or swallow (DROP) new TCP connections to `port` on
        `node` only, from anywhere.

        Host-mode publishing DNATs the port in nat/PREROUTING to the task's container, so
        the packets never reach INPUT: they are forwarded, and FORWARD runs DOCKER-USER
        first. The rule matches the port as it was before the DNAT (conntrack's original
        destination), so it blocks exactly the published port.
        """
        if action not in {"REJECT", "DROP"}:
            raise ValueError(f"action {action!r}: REJECT or DROP")
        rule = [
            "DOCKER-USER", "-p", "tcp", "-m", "conntrack", "--ctdir", "ORIGINAL",
            "--ctorigdstport", str(port), "-j", action,
        ]  # fmt: skip
        if action == "REJECT":
            rule += ["--reject-with", "tcp-reset"]
        self.iptables(node, "-I", *rule)
        try:
            yield
        finally:
            self.iptables(node, "-D", *rule)

    # -- setup -------------------------------------------------------------------------------
    def setup(self, image: str) -> None:
        """Network, daemons, swarm, image; `timings` gets each step's seconds and the total."""
        self.image = image
        started = time.monotonic()
        steps: list[tuple[str, Callable[[], None]]] = [
            ("network", self._network),
            ("daemons", self._start_daemons),
            ("swarm", self._swarm),
            ("image", lambda: self._load_image(image)),
        ]
        for name, step in steps:
            begun = time.monotonic()
            step()
            self.timings[name] = time.monotonic() - begun
        self.timings["setup"] = time.monotonic() - started

    def describe_timings(self) -> str:
        def listed(timings: dict[str, float]) -> str:
            return ", ".join(f"{name} {seconds:.2f} s" for name, seconds in timings.items())

        return f"{listed(self.timings)} ({listed(self.teardown_timings)})"

    def _network(self) -> None:
        taken = self._names_taken()
        if taken:
            raise TwoNodeError(f"already in use on this host: {taken}")
        for netns in NAMESPACES:
            run(["ip", "netns", "add", netns])
        sw = SWITCH_NS
        run(["ip", "-n", sw, "link", "add", BRIDGE, "type", "bridge"])
        run(["ip", "-n", sw, "link", "set", BRIDGE, "up"])
        run(["ip", "-n", sw, "link", "set", "lo", "up"])
        # The host's end, created in the host namespace with its peer moved to the switch.
        run(["ip", "link", "add", HOST_LINK, "type", "veth", "peer", "name", "host", "netns", sw])
        run(["ip", "addr", "add", f"{HOST_ADDRESS}/24", "dev", HOST_LINK])
        run(["ip", "link", "set", HOST_LINK, "up"])
        run(["ip", "-n", sw, "link", "set", "host", "master", BRIDGE, "up"])
        for spec in NODES:
            run(
                [
                    "ip", "-n", sw, "link", "add", spec.switch_port, "type", "veth",
                    "peer", "name", "eth0", "netns", spec.netns,
                ]
            )  # fmt: skip
            run(["ip", "-n", sw, "link", "set", spec.switch_port, "master", BRIDGE, "up"])
            run(["ip", "-n", spec.netns, "addr", "add", f"{spec.address}/24", "dev", "eth0"])
            run(["ip", "-n", spec.netns, "link", "set", "eth0", "up"])
            run(["ip", "-n", spec.netns, "link", "set", "lo", "up"])
        if shutil.which("ping") is not None:  # else the swarm join is the first test
            for spec in NODES:
                _wait_ping([], spec.address, "the host")
            _wait_ping(in_netns(MANAGER.netns), WORKER.address, "the manager")

    def _names_taken(self) -> list[str]:
        taken = sorted(_netns_names() & set(NAMESPACES))
        if HOST_LINK in _links():
            taken.append(f"link {HOST_LINK}")
        if "10.213.0." in _addresses():
            taken.append(f"addresses in {SUBNET}")
        return taken

    def _start_daemons(self) -> None:
        for node in self.nodes:
            node.root.mkdir(parents=True)
            (node.root / "daemon.json").write_text("{}\n")
            with node.log.open("wb") as log:
                node.process = subprocess.Popen(
                    in_netns(node.spec.netns, *node.dockerd_args()),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        for node in self.nodes:
            self._wait_daemon(node)

    def _wait_daemon(self, node: Node) -> None:
        def exited() -> bool:
            return node.process is not None and node.process.poll() is not None

        def answers() -> bool:
            if exited():
                return True  # no use waiting; reported below
            if not node.socket.exists():
                return False
            return (
                run(["docker", "-H", node.host, "version"], check=False, timeout=10).returncode == 0
            )

        try:
            wait_for(f"dockerd of {node.spec.name}", answers, DAEMON_START_S)
        except TwoNodeError as exc:
            raise TwoNodeError(f"{exc}\n{node.log_tail()}") from None
        if exited():
            raise TwoNodeError(f"dockerd of {node.spec.name} exited:\n{node.log_tail()}")

    def _swarm(self) -> None:
        mgr, wkr = self.manager, self.worker
        mgr.docker(
            "swarm", "init",
            f"--advertise-addr={mgr.address}",
            f"--listen-addr={mgr.address}:2377",
        )  # fmt: skip
        token = mgr.docker("swarm", "join-token", "-q", "worker").strip()
        wkr.docker(
            "swarm", "join",
            f"--token={token}",
            f"--advertise-addr={wkr.address}",
            f"--listen-addr={wkr.address}:2377",
            f"{mgr.address}:2377",
        )  # fmt: skip
        mgr.node_id = mgr.docker("info", "--format", "{{.Swarm.NodeID}}").strip()
        wkr.node_id = wkr.docker("info", "--format", "{{.Swarm.NodeID}}").strip()

        def both_ready() -> bool:
            out = mgr.docker("node", "ls", "--format", "{{.ID}} {{.Status}}", check=False)
            ready = {line.split()[0] for line in out.splitlines() if line.endswith(" Ready")}
            return {mgr.node_id, wkr.node_id} <= ready

        wait_for("both nodes Ready", both_ready, 60.0)
        for node in self.nodes:  # both report the same hostname: tell them apart by label
            label = f"{NODE_LABEL}={node.spec.name}"
            mgr.docker("node", "update", "--label-add", label, node.node_id)

    def _load_image(self, image: str) -> None:
        archive = self.base / "image.tar"
        run(["docker", "save", "-o", str(archive), image], timeout=120)
        loads = []
        for node in self.nodes:
            with archive.open("rb") as data:
                loads.append(
                    subprocess.Popen(
                        ["docker", "-H", node.host, "load", "-q"],
                        stdin=data,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE,
                    )
                )
        problems = []
        for node, load in zip(self.nodes, loads, strict=True):
            try:
                _, err = load.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                load.kill()
                load.communicate()
                err = b"timed out"
            if load.returncode != 0:
                problems.append(f"{node.spec.name}: {err.decode(errors='replace').strip()}")
        archive.unlink()
        if problems:
            raise TwoNodeError("docker load: " + "; ".join(problems))

    def node_addresses(self) -> dict[str, str]:
        """Node id -> the address the swarm reports for it (what verify will use)."""
        raw = self.manager.docker("node", "inspect", self.manager.node_id, self.worker.node_id)
        return {n["ID"]: n["Status"]["Addr"] for n in json.loads(raw)}

    # -- teardown ----------------------------------------------------------------------------
    def teardown(self) -> list[str]:
        """Remove everything, whatever state setup reached; returns what went wrong."""
        problems: list[str] = []
        started = time.monotonic()
        for client in self._clients:
            client.close()
        self._clients.clear()
        steps: list[tuple[str, Callable[[], None]]] = [
            ("remove services", self._remove_services),
            ("leave the swarm", self._leave_swarm),
            ("stop the daemons", self._stop_daemons),
            ("kill what is left", self._kill_leftover_processes),
            ("unmount", self._unmount),
            ("delete namespaces and links", self._delete_network),
            ("remove cgroups", self._remove_cgroups),
            ("remove the folder", self._remove_folder),
        ]
        for what, step in steps:
            begun = time.monotonic()
            try:
                step()
            except (TwoNodeError, OSError) as exc:
                problems.append(f"{what}: {exc}")
            self.teardown_timings[what] = time.monotonic() - begun
        self.timings["teardown"] = time.monotonic() - started
        return problems

    def _alive(self, node: Node) -> bool:
        return (
            node.socket.exists()
            and (node.process is None or node.process.poll() is None)
            and run(["docker", "-H", node.host, "version"], check=False, timeout=10).returncode == 0
        )

    def _remove_services(self) -> None:
        mgr = self.manager
        if not self._alive(mgr):
            return
        ids = mgr.docker("service", "ls", "-q", check=False).split()
        if ids:
            mgr.docker("service", "rm", *ids, check=False)
        for node in self.nodes:
            if self._alive(node):
                with contextlib.suppress(TwoNodeError):
                    wait_for(f"containers gone on {node.spec.name}", _no_containers(node), 20.0)

    def _leave_swarm(self) -> None:
        for node in (self.worker, self.manager):
            if self._alive(node):
                node.docker("swarm", "leave", "--force", check=False, timeout=30)

    def _stop_daemons(self) -> None:
        for node in self.nodes:
            self._signal(node, signal.SIGTERM)
        for node in self.nodes:
            self._reap(node)

    @staticmethod
    def _daemon_pid(node: Node) -> int | None:
        if node.process is not None:
            return node.process.pid if node.process.poll() is None else None
        try:  # a stale run: only the pidfile is left
            pid = int((node.root / "docker.pid").read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if str(node.root).encode() in cmdline else None

    def _signal(self, node: Node, sig: signal.Signals) -> None:
        pid = self._daemon_pid(node)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def _reap(self, node: Node) -> None:
        if node.process is not None:
            try:
                node.process.wait(timeout=DAEMON_STOP_S)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait(timeout=10)
            return
        pid = self._daemon_pid(node)
        if pid is None:
            return
        with contextlib.suppress(TwoNodeError):
            wait_for(f"dockerd {pid} gone", lambda: not _not_zombie(pid), DAEMON_STOP_S)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def _kill_leftover_processes(self) -> None:
        pids = our_processes(self.base)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if pids:
            wait_for(
                f"processes {pids} gone",
                lambda: not [p for p in pids if Path(f"/proc/{p}").exists() and _not_zombie(p)],
                10.0,
            )

    def _unmount(self) -> None:
        for _round in range(3):
            points = mounts_under(self.base)
            if not points:
                return
            for point in points:
                if run(["umount", point], check=False).returncode != 0:
                    run(["umount", "-l", point], check=False)
        left = mounts_under(self.base)
        if left:
            raise TwoNodeError(f"still mounted: {left}")

    def _delete_network(self) -> None:
        failed: list[str] = []
        for netns in NAMESPACES:
            if netns in _netns_names():
                result = run(["ip", "netns", "delete", netns], check=False)
                failed += [f"{netns}: {result.stderr.strip()}"] if result.returncode else []
        if HOST_LINK in _links():  # gone with the switch namespace, normally
            result = run(["ip", "link", "delete", HOST_LINK], check=False)
            failed += [f"{HOST_LINK}: {result.stderr.strip()}"] if result.returncode else []
        # `ip netns add` made /run/netns a mount point if it was not there: put it back.
        if not self.netns_dir_was_there and NETNS_DIR.is_dir() and not any(NETNS_DIR.iterdir()):
            run(["umount", str(NETNS_DIR)], check=False)
            with contextlib.suppress(OSError):
                NETNS_DIR.rmdir()
        if failed:
            raise TwoNodeError("; ".join(failed))

    def _remove_cgroups(self) -> None:
        for top in _cgroup_dirs():
            for directory in sorted(
                (p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
            ):
                directory.rmdir()
            top.rmdir()

    def _remove_folder(self) -> None:
        if not self.base.exists():
            return
        if mounts_under(self.base):
            raise TwoNodeError(f"not removing {self.base}: something is still mounted there")
        shutil.rmtree(self.base)

    # -- what is left ------------------------------------------------------------------------
    def leftovers(self) -> list[str]:
        """Everything of ours still on this host; empty after a clean teardown."""
        found: list[str] = []
        names = _netns_names() & set(NAMESPACES)
        if names:
            found.append(f"network namespaces {sorted(names)}")
        links = {link for link in _links() if link.startswith(PREFIX)}
        if links:
            found.append(f"links {sorted(links)}")
        if "10.213.0." in _addresses():
            found.append(f"host addresses in {SUBNET}")
        pids = [p for p in our_processes(self.base) if _not_zombie(p)]
        if pids:
            found.append(f"processes {pids}")
        points = mounts_under(self.base)
        if points:
            found.append(f"mounts {points}")
        if self.base.exists():
            found.append(f"folder {self.base}")
        cgroups = _cgroup_dirs()
        if cgroups:
            found.append(f"cgroups {[str(c) for c in cgroups]}")
        return found


def _wait_ping(prefix: list[str], address: str, source: str) -> None:
    def answers() -> bool:
        ping = [*prefix, "ping", "-c", "1", "-W", "1", address]
        return run(ping, check=False, timeout=5).returncode == 0

    wait_for(f"ping {address} from {source}", answers, 10.0)


def _no_containers(node: Node) -> Callable[[], bool]:
    def ready() -> bool:
        return not node.docker("ps", "-aq", check=False).split()

    return ready


def _cgroup_members() -> set[int]:
    """Processes in the cgroups under our --cgroup-parent (the nodes' containers)."""
    members: set[int] = set()
    for top in _cgroup_dirs():
        for procs in top.rglob("cgroup.procs"):
            with contextlib.suppress(OSError, ValueError):
                members |= {int(line) for line in procs.read_text().split()}
    return members


def _not_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


# -- one run at a time; a crashed run is cleaned up by the next --------------------------------
@contextlib.contextmanager
def exclusive() -> Iterator[None]:
    """Hold LOCK_FILE; clean up after a run that died without its teardown."""
    LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    with LOCK_FILE.open("a+", encoding="utf-8") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy(f"another two-node swarm run holds {LOCK_FILE}") from None
        lock.seek(0)
        stale = _recalled(lock.read())
        if stale is not None:
            problems = stale.teardown()
            if problems:
                raise TwoNodeError(f"cleaning up the stale run in {stale.base}: {problems}")
        lock.seek(0)
        lock.truncate()
        lock.flush()
        try:
            yield
        finally:
            lock.seek(0)
            lock.truncate()
            lock.flush()


def remember(cluster: TwoNodeSwarm) -> None:
    """Write what teardown needs into LOCK_FILE (held by `exclusive`) before creating anything."""
    record = {"base": str(cluster.base), "netns_dir_was_there": cluster.netns_dir_was_there}
    LOCK_FILE.write_text(json.dumps(record) + "\n", encoding="utf-8")


def _recalled(text: str) -> TwoNodeSwarm | None:
    """The cluster of a run that died before its teardown, from LOCK_FILE's text."""
    if not text.strip():
        return None
    try:
        record = json.loads(text)
        base = Path(record["base"])
        was_there = bool(record["netns_dir_was_there"])
    except (ValueError, KeyError, TypeError):
        raise TwoNodeError(f"{LOCK_FILE}: unreadable ({text.strip()!r}); remove it") from None
    if not base.name.startswith(f"{PREFIX}-"):
        raise TwoNodeError(f"{LOCK_FILE}: {base} is not one of our folders; remove it")
    return TwoNodeSwarm(base, netns_dir_was_there=was_there)


def new_base() -> Path:
    # Short: containerd's sockets live below it and unix socket paths are limited to 107 bytes.
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}-", dir="/tmp"))


@contextlib.contextmanager
def two_node_swarm(image: str) -> Iterator[TwoNodeSwarm]:
    """Set up the cluster with `image` on both nodes; tear it all down afterwards."""
    with exclusive():
        cluster = TwoNodeSwarm(new_base(), netns_dir_was_there=NETNS_DIR.is_dir())
        remember(cluster)
        failure: BaseException | None = None
        try:
            cluster.setup(image)
            yield cluster
        except BaseException as exc:
            failure = exc
            raise
        finally:
            problems = cluster.teardown()
            left = cluster.leftovers()
            if (problems or left) and failure is None:
                raise TwoNodeError(f"teardown: problems {problems}; left behind {left}")
            if problems or left:
                print(f"two-node teardown: {problems}; left {left}", file=sys.stderr)


def _main(argv: Sequence[str]) -> int:
    """`up IMAGE` (until Enter is pressed), or `cleanup` after a run killed hard."""
    if argv[:1] == ["cleanup"]:
        with exclusive():
            pass
        print("clean")
        return 0
    if len(argv) == 2 and argv[0] == "up":
        with two_node_swarm(argv[1]) as cluster:
            described = {
                "manager": cluster.manager.host,
                "worker": cluster.worker.host,
                "timings": cluster.timings,
                "addresses": cluster.node_addresses(),
            }
            print(json.dumps(described))
            sys.stdout.flush()
            sys.stdin.readline()
        return 0
    print("usage: python -m tests.harness.two_node (up IMAGE | cleanup)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
