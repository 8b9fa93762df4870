"""A lab: its nodes, their network, their swarm; the faults that need more than one node; and
getting back to healthy."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import docker

from tests.harness.cluster import cleanup
from tests.harness.cluster.host import (
    LabError,
    addresses,
    in_netns,
    links,
    netns_names,
    run,
    wait_for,
    wait_ping,
)
from tests.harness.cluster.layout import MANAGER, MAX_NODES, WORKER, NodeSpec, Slot
from tests.harness.cluster.node import Node

READY_S = 60.0  # a (re)started node, until the swarm calls it ready
HEARTBEAT_S = 1  # the swarm's dispatcher heartbeat: a silent node is down ~3 s later
STABLE_S = 4 * HEARTBEAT_S  # ready for longer than that: no "down" is still on its way
NODE_LABEL = "phxlab.node"  # the node's name, for placement constraints


@dataclass
class ClusterLab:
    slot: Slot
    specs: tuple[NodeSpec, ...]
    base: Path
    # `ip netns add` makes /run/netns a mount point if it is not there; teardown undoes that.
    netns_dir_was_there: bool = True
    image: str = ""
    nodes: tuple[Node, ...] = field(init=False)
    timings: dict[str, float] = field(default_factory=dict)
    teardown_timings: dict[str, float] = field(default_factory=dict)
    clients: list[docker.DockerClient] = field(default_factory=list)

    def __post_init__(self) -> None:
        names = [spec.name for spec in self.specs]
        if not self.specs or self.specs[0].role != MANAGER:
            raise ValueError("the first node inits the swarm: it must be a manager")
        if len(set(names)) != len(names) or len(names) > MAX_NODES:
            raise ValueError(f"nodes {names}: distinct names, at most {MAX_NODES}")
        self.nodes = tuple(
            Node(spec, index, self.slot, self.base / spec.name)
            for index, spec in enumerate(self.specs)
        )

    # -- which node ---------------------------------------------------------------------------
    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    @property
    def managers(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.role == MANAGER)

    @property
    def workers(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.role == WORKER)

    @property
    def manager(self) -> Node:
        """The first manager: it inited the swarm."""
        return self.nodes[0]

    @property
    def worker(self) -> Node:
        """The first worker."""
        if not self.workers:
            raise LabError("this lab has no worker")
        return self.workers[0]

    @property
    def namespaces(self) -> tuple[str, ...]:
        return (*(node.netns for node in self.nodes), self.slot.switch_ns)

    def client(self, node: Node | None = None) -> docker.DockerClient:
        """An SDK client for `node` (default: the first manager), closed at teardown."""
        client = docker.DockerClient(base_url=(node or self.manager).host, timeout=60)
        self.clients.append(client)
        return client

    # -- what the swarm says -----------------------------------------------------------------
    def node_addresses(self) -> dict[str, str]:
        """Node id -> the address the swarm reports for it (what verify will use)."""
        raw = self.manager.docker("node", "inspect", *(n.node_id for n in self.nodes))
        return {n["ID"]: n["Status"]["Addr"] for n in json.loads(raw)}

    def node_states(self) -> dict[str, str]:
        """Node name -> its state as the first manager that answers with a quorum sees it
        ("ready", "down", "unknown"); empty when no manager can say."""
        by_id = {node.node_id: node.name for node in self.nodes}
        for manager in self.managers:
            if not manager.answers():
                continue
            ask = ["docker", "-H", manager.host, "node", "ls", "--format", "{{.ID}} {{.Status}}"]
            try:
                listed = run(ask, check=False, timeout=5)
            except LabError:  # a manager without quorum may hang rather than answer
                continue
            if listed.returncode != 0:
                continue  # no quorum here (or shutting down): ask the next manager
            pairs = (line.split() for line in listed.stdout.splitlines())
            return {by_id[p[0]]: p[1].lower() for p in pairs if len(p) == 2 and p[0] in by_id}
        return {}

    def wait_state(self, node: Node, state: str, timeout: float = READY_S) -> float:
        """Poll until the swarm reports `node` in `state`; returns the seconds it took."""
        started = time.monotonic()
        wait_for(
            f"{node.name} {state}", lambda: self.node_states().get(node.name) == state, timeout
        )
        return time.monotonic() - started

    def reaches(
        self, source: Node | None, target: Node, port: int = 7946, timeout: float = 1.0
    ) -> bool:
        """Whether a TCP connection from `source`'s namespace (None: the host) to `target`'s
        address and `port` opens within `timeout` (7946: every node's gossip listener)."""
        probe = ["timeout", str(timeout), "bash", "-c", 'exec 3<>"/dev/tcp/$0/$1"']
        probe += [target.address, str(port)]
        command = in_netns(source.netns, *probe) if source else probe
        return run(command, check=False, timeout=timeout + 5).returncode == 0

    def wait_ready(self, timeout: float = READY_S, stable_s: float = 0.0) -> None:
        """Until a manager with a quorum reports every node ready, and has kept reporting
        it for `stable_s` (a "ready" read just after a fault can be stale: the managers
        call a silent node down only some heartbeats later)."""
        since: list[float] = []

        def all_ready() -> bool:
            states = self.node_states()
            if not all(states.get(node.name) == "ready" for node in self.nodes):
                since.clear()
                return False
            if not since:
                since.append(time.monotonic())
            return time.monotonic() - since[0] >= stable_s

        wait_for(
            "every node ready" + (f" for {stable_s:g} s" if stable_s else ""), all_ready, timeout
        )

    # -- setup -------------------------------------------------------------------------------
    def setup(self, image: str = "") -> None:
        """Network, daemons, swarm, image (none if ""); `timings` gets each step's seconds."""
        self.image = image
        started = time.monotonic()
        steps: list[tuple[str, Callable[[], None]]] = [
            ("network", self._network),
            ("daemons", self._start_daemons),
            ("swarm", self._swarm),
        ]
        if image:
            steps.append(("image", lambda: self._load_image(image)))
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
            raise LabError(f"already in use on this host: {taken}")
        for netns in self.namespaces:
            run(["ip", "netns", "add", netns])
        sw, slot = self.slot.switch_ns, self.slot
        run(["ip", "-n", sw, "link", "add", slot.bridge, "type", "bridge"])
        run(["ip", "-n", sw, "link", "set", slot.bridge, "up"])
        run(["ip", "-n", sw, "link", "set", "lo", "up"])
        # The host's end, created in the host namespace with its peer moved to the switch.
        host_veth = ["ip", "link", "add", slot.host_link, "type", "veth"]
        run([*host_veth, "peer", "name", "host", "netns", sw])
        run(["ip", "addr", "add", f"{slot.host_address}/24", "dev", slot.host_link])
        run(["ip", "link", "set", slot.host_link, "up"])
        run(["ip", "-n", sw, "link", "set", "host", "master", slot.bridge, "up"])
        for node in self.nodes:
            port = node.netns  # the node's veth end on the bridge, in the switch namespace
            node_veth = ["ip", "-n", sw, "link", "add", port, "type", "veth"]
            run([*node_veth, "peer", "name", "eth0", "netns", node.netns])
            run(["ip", "-n", sw, "link", "set", port, "master", slot.bridge, "up"])
            run(["ip", "-n", node.netns, "addr", "add", f"{node.address}/24", "dev", "eth0"])
            run(["ip", "-n", node.netns, "link", "set", "eth0", "up"])
            run(["ip", "-n", node.netns, "link", "set", "lo", "up"])
            # A UTS namespace of its own, bound to a file so a restarted dockerd rejoins it:
            # dockerd reports its hostname as the swarm node's Description.Hostname.
            node.root.mkdir(parents=True)
            node.uts.touch()
            run(["unshare", f"--uts={node.uts}", "hostname", node.hostname])
        if shutil.which("ping") is not None:
            for node in self.nodes:  # without ping, the swarm join is the first test
                wait_ping([], node.address, "the host")
            for node in self.nodes[1:]:
                wait_ping(in_netns(self.manager.netns), node.address, self.manager.name)

    def _names_taken(self) -> list[str]:
        taken = sorted(netns_names() & set(self.namespaces))
        if self.slot.host_link in links():
            taken.append(f"link {self.slot.host_link}")
        if self.slot.address_prefix in addresses():
            taken.append(f"addresses in {self.slot.subnet}")
        return taken

    def _start_daemons(self) -> None:
        for node in self.nodes:
            node.configure()
            node.spawn()
        for node in self.nodes:
            node.wait_answering()

    def _swarm(self) -> None:
        first = self.manager
        first.docker(
            "swarm", "init",
            f"--advertise-addr={first.address}",
            f"--listen-addr={first.address}:2377",
            f"--dispatcher-heartbeat={HEARTBEAT_S}s",
        )  # fmt: skip
        tokens = {
            role: first.docker("swarm", "join-token", "-q", role).strip()
            for role in {node.role for node in self.nodes[1:]}
        }
        for node in self.nodes[1:]:  # one at a time: a manager joins through the Raft log
            node.docker(
                "swarm", "join",
                f"--token={tokens[node.role]}",
                f"--advertise-addr={node.address}",
                f"--listen-addr={node.address}:2377",
                f"{first.address}:2377",
            )  # fmt: skip
        for node in self.nodes:
            node.node_id = node.docker("info", "--format", "{{.Swarm.NodeID}}").strip()
        self.wait_ready()
        for node in self.nodes:
            first.docker("node", "update", "--label-add", f"{NODE_LABEL}={node.name}", node.node_id)

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
                problems.append(f"{node.name}: {err.decode(errors='replace').strip()}")
        archive.unlink()
        if problems:
            raise LabError("docker load: " + "; ".join(problems))

    # -- faults: daemons ---------------------------------------------------------------------
    def stop(self, node: Node) -> None:
        """SIGTERM the node's dockerd and wait until it has exited (SIGKILL after 20 s); it
        stops its containers first."""
        node.end(signal.SIGTERM)

    def kill(self, node: Node) -> None:
        """SIGKILL the node's dockerd (its containerd dies with it; the containers go on)."""
        node.end(signal.SIGKILL)

    def start(self, node: Node) -> None:
        """Start the node's dockerd again (unless it runs) and wait until it answers and a
        manager with a quorum reports every node of the lab ready."""
        node.thaw()
        if node.daemon_pid() is None:
            node.spawn()
        node.wait_answering()
        self.wait_ready()

    def freeze(self, node: Node) -> None:
        """SIGSTOP the node's dockerd and its containerd; the containers keep running."""
        node.freeze()

    def thaw(self, node: Node) -> None:
        node.thaw()

    @contextlib.contextmanager
    def stopped(self, node: Node, *, kill: bool = False) -> Iterator[None]:
        """The node's dockerd stopped (or killed) inside; started again, ready, on exit."""
        (self.kill if kill else self.stop)(node)
        try:
            yield
        finally:
            self.start(node)

    @contextlib.contextmanager
    def frozen(self, node: Node) -> Iterator[None]:
        node.freeze()
        try:
            yield
        finally:
            node.thaw()

    # -- faults: network ---------------------------------------------------------------------
    def partition(self, node: Node, *, from_host: bool = False) -> None:
        """Drop every packet between `node` and the other nodes (and the host, if
        `from_host`), in the node's INPUT, OUTPUT and FORWARD chains."""
        peers = [other.address for other in self.nodes if other is not node]
        peers += [self.slot.host_address] if from_host else []
        rules: list[list[str]] = []
        for peer in peers:
            rules += [
                ["INPUT", "-s", peer, "-j", "DROP"],
                ["OUTPUT", "-d", peer, "-j", "DROP"],
                ["FORWARD", "-s", peer, "-j", "DROP"],
                ["FORWARD", "-d", peer, "-j", "DROP"],
            ]
        node.add_fault("partition", rules)

    def heal(self, node: Node) -> None:
        node.remove_fault("partition")

    @contextlib.contextmanager
    def partitioned(self, node: Node, *, from_host: bool = False) -> Iterator[None]:
        self.partition(node, from_host=from_host)
        try:
            yield
        finally:
            self.heal(node)

    def block_port(self, node: Node, port: int, protocols: Sequence[str] = ("tcp",)) -> None:
        """Drop packets to `port` (each of `protocols`: tcp, udp) arriving at the node: for
        the node itself (INPUT), and for its containers' published ports (FORWARD, matched
        on the port before Docker's DNAT)."""
        rules: list[list[str]] = []
        for proto in protocols:
            if proto not in {"tcp", "udp"}:
                raise ValueError(f"protocol {proto!r}: tcp or udp")
            before_dnat = ["-m", "conntrack", "--ctdir", "ORIGINAL", "--ctorigdstport", str(port)]
            rules += [
                ["INPUT", "-p", proto, "--dport", str(port), "-j", "DROP"],
                ["FORWARD", "-p", proto, *before_dnat, "-j", "DROP"],
            ]
        node.add_fault(_port_fault(port, protocols), rules)

    def unblock_port(self, node: Node, port: int, protocols: Sequence[str] = ("tcp",)) -> None:
        node.remove_fault(_port_fault(port, protocols))

    @contextlib.contextmanager
    def port_closed(
        self, node: Node, port: int, protocols: Sequence[str] = ("tcp",)
    ) -> Iterator[None]:
        self.block_port(node, port, protocols)
        try:
            yield
        finally:
            self.unblock_port(node, port, protocols)

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
        fault = f"published {port}"
        node.add_fault(fault, [rule])
        try:
            yield
        finally:
            node.remove_fault(fault)

    # -- back to healthy, and away -----------------------------------------------------------
    def restore(self) -> None:
        """Undo every fault: thaw, remove the fault rules and start failures, start stopped
        daemons, and wait until every node is ready. Raises LabError if the lab does not get
        healthy."""
        for node in self.nodes:
            node.thaw()
            node.clear_faults()
            node.fail_starts(0)
        for node in self.nodes:
            if node.daemon_pid() is None:
                node.spawn()
        for node in self.nodes:
            node.wait_answering()
        # Faults undone just now may still turn into a "down" a few heartbeats later.
        self.wait_ready(stable_s=STABLE_S)

    def teardown(self) -> list[str]:
        """Remove everything, whatever state setup reached; returns what went wrong."""
        return cleanup.teardown(self)

    def leftovers(self) -> list[str]:
        """Everything of this lab still on this host; empty after a clean teardown."""
        return cleanup.leftovers(self)


def _port_fault(port: int, protocols: Sequence[str]) -> str:
    return f"port {port}/{'+'.join(protocols)}"
