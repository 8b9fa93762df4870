"""Judgement of the swarm's view from this manager (pure): nodes, managers, the swarm's
own ports, and whether the overlay networks fit this host's MTU.

The finding ids are a contract; `docs/troubleshooting.md` explains each one.
"""

from __future__ import annotations

from phoenix_certbot.findings import Finding, Severity
from phoenix_certbot.readiness.model import PortProbe, SwarmView
from phoenix_certbot.swarm.model import VXLAN_OVERHEAD, NodeInfo

SWARM_FINDING_IDS = (
    "swarm.node-down",
    "swarm.manager-unreachable",
    "swarm.port-unreachable",
    "swarm.mtu",
)
GOSSIP_PORT = 7946  # node discovery (tcp+udp), to every node
MANAGER_PORT = 2377  # cluster management, to managers
_E = Severity.ERROR
_PORTS_FIX = (
    "open {port}/tcp to {node} from the other nodes (host firewall, security group, "
    "hypervisor); the swarm also needs 7946/udp and 4789/udp between all nodes"
)
_PURPOSE = {GOSSIP_PORT: "node discovery", MANAGER_PORT: "cluster management"}


def judge_swarm(view: SwarmView) -> list[Finding]:
    """Findings for the swarm's view; empty when every node, manager and port answers."""
    found: list[Finding] = []
    for node in view.nodes:
        found.extend(_node_findings(node))
    found.extend(_port_finding(probe) for probe in view.ports if probe.error is not None)
    found.extend(_mtu_findings(view))
    return found


def _node_findings(node: NodeInfo) -> list[Finding]:
    found: list[Finding] = []
    if node.availability == "active" and node.state != "ready":
        found.append(
            Finding(
                "swarm.node-down",
                _E,
                f"node {node.name} at {node.address or 'an unknown address'} is "
                f"{node.state or 'in no state'}, although its availability is active",
                f"start Docker on {node.hostname or 'the node'} and check that it reaches the "
                "managers on 2377/tcp; or drain it (docker node update --availability drain)",
            )
        )
    if node.role == "manager" and node.reachability != "reachable":
        found.append(
            Finding(
                "swarm.manager-unreachable",
                _E,
                f"manager {node.name} ({node.manager_address or node.address}) is "
                f"{node.reachability or 'of unknown reachability'} for the other managers",
                "bring its Docker back and open 2377/tcp between the managers; a swarm "
                "keeps working only while a majority of its managers is reachable",
            )
        )
    return found


def _port_finding(probe: PortProbe) -> Finding:
    node = probe.node
    return Finding(
        "swarm.port-unreachable",
        _E,
        f"node {node.name}: no TCP connection from here to {probe.address}:{probe.port} "
        f"({_PURPOSE.get(probe.port, 'swarm')}): {probe.error}",
        _PORTS_FIX.format(port=probe.port, node=node.hostname or probe.address),
    )


def _mtu_findings(view: SwarmView) -> list[Finding]:
    interface = view.interface
    if interface is None:
        return []
    fits = interface.mtu - VXLAN_OVERHEAD
    return [
        Finding(
            "swarm.mtu",
            Severity.WARNING,
            f"overlay network {network.name} has MTU {network.mtu}, more than fits "
            f"{interface.name} (MTU {interface.mtu}, towards {view.advertise_address}) less "
            f"the {VXLAN_OVERHEAD}-byte VXLAN header ({fits}): large packets across nodes "
            "are dropped while pings and handshakes pass",
            f"recreate the network with --opt com.docker.network.driver.mtu={interface.mtu} "
            f"(its containers then get {fits}), or raise the MTU of the path between the nodes",
        )
        for network in view.overlays
        if network.mtu > fits
    ]
