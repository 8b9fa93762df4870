"""The swarm view: which ports are tried (real TCP connects on loopback) and the
judgement of nodes, managers, ports and MTU (pure)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from phoenix_certbot.findings import Finding, Severity
from phoenix_certbot.readiness.model import HostInterface, PortProbe, SwarmView
from phoenix_certbot.readiness.observe import Budget, observe_swarm, port_targets
from phoenix_certbot.readiness.swarm import judge_swarm
from phoenix_certbot.swarm.model import NodeInfo, OverlayNetwork

MGR = NodeInfo(
    "m" * 25, "10.0.0.111", "manager", "active", "ready",
    hostname="node-1001", reachability="reachable", manager_address="10.0.0.111:2377",
    leader=True,
)  # fmt: skip
WKR = NodeInfo("w" * 25, "10.0.0.112", "worker", "active", "ready", hostname="node-1002")


def ids(found: list[Finding]) -> list[str]:
    return [f.id for f in found]


def test_a_healthy_swarm() -> None:
    view = SwarmView((MGR, WKR), (), (OverlayNetwork("i", "ingress", None, True),), "10.0.0.111",
                     HostInterface("eth0", 1500))  # fmt: skip
    assert judge_swarm(view) == []


def test_a_down_node_and_an_unreachable_manager() -> None:
    down = NodeInfo("d" * 25, "10.0.0.113", "worker", "active", "down", hostname="node-1003")
    drained = NodeInfo("e" * 25, "10.0.0.114", "worker", "drain", "down", hostname="node-1004")
    lost = NodeInfo(
        "l" * 25, "10.0.0.115", "manager", "active", "ready", hostname="node-1005",
        reachability="unreachable", manager_address="10.0.0.115:2377",
    )  # fmt: skip
    found = judge_swarm(SwarmView((MGR, down, drained, lost)))
    assert ids(found) == ["swarm.node-down", "swarm.manager-unreachable"]
    assert found[0].message.startswith(f"node node-1003 ({'d' * 12}) at 10.0.0.113 is down")
    assert "manager node-1005" in found[1].message and "unreachable" in found[1].message


def test_a_closed_port_names_node_address_and_port() -> None:
    probe = PortProbe(WKR, "10.0.0.112", 7946, "no answer within 3 s")
    (finding,) = judge_swarm(SwarmView((MGR, WKR), (probe,)))
    assert finding.id == "swarm.port-unreachable"
    assert finding.message == (
        f"node node-1002 ({'w' * 12}): no TCP connection from here to 10.0.0.112:7946 "
        "(node discovery): no answer within 3 s"
    )
    assert "7946/tcp" in finding.fix and "4789/udp" in finding.fix


def test_an_overlay_larger_than_the_interface_allows() -> None:
    overlays = (
        OverlayNetwork("i", "ingress", None, True),  # 1450 fits a 1500 link
        OverlayNetwork("a", "agent_network", 1400),  # 1350 fits a 1400 link
    )
    assert (
        judge_swarm(SwarmView((MGR,), (), overlays, "10.0.0.111", HostInterface("eth0", 1500)))
        == []
    )
    (finding,) = judge_swarm(
        SwarmView((MGR,), (), overlays, "10.0.0.111", HostInterface("eth0", 1400))
    )
    assert (finding.id, finding.severity) == ("swarm.mtu", Severity.WARNING)
    assert "overlay network ingress has MTU 1450" in finding.message
    assert "eth0 (MTU 1400, towards 10.0.0.111)" in finding.message
    assert "com.docker.network.driver.mtu=1400" in finding.fix


def test_ports_tried_are_7946_everywhere_and_the_managers_port() -> None:
    unknown = NodeInfo("u" * 25, "0.0.0.0", "worker", "active", "ready")  # noqa: S104
    targets = [(n.hostname, a, p) for n, a, p in port_targets([MGR, WKR, unknown])]
    assert targets == [
        ("node-1001", "10.0.0.111", 7946),
        ("node-1001", "10.0.0.111", 2377),
        ("node-1002", "10.0.0.112", 7946),
    ]


class Reader:
    def __init__(self, nodes: tuple[NodeInfo, ...]) -> None:
        self._nodes = nodes

    def nodes(self) -> tuple[NodeInfo, ...]:
        return self._nodes

    def overlay_networks(self) -> tuple[OverlayNetwork, ...]:
        return ()

    def advertise_address(self) -> str:
        return "127.0.0.1"


@pytest.fixture
def open_port() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


def test_observe_connects_to_each_port_within_the_budget(
    open_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        closed_port = closed.getsockname()[1]
    monkeypatch.setattr("phoenix_certbot.readiness.observe.GOSSIP_PORT", open_port)
    node = NodeInfo(
        "m" * 25, "127.0.0.1", "manager", "active", "ready", hostname="here",
        reachability="reachable", manager_address=f"127.0.0.1:{closed_port}",
    )  # fmt: skip
    started = time.monotonic()
    view = observe_swarm(Reader((node,)), Budget.starting_now(5))
    assert time.monotonic() - started < 2
    assert [(p.port, p.error) for p in view.ports] == [
        (open_port, None),
        (closed_port, "Connection refused"),
    ]
    assert view.interface == HostInterface("lo", 65536)
    assert ids(judge_swarm(view)) == ["swarm.port-unreachable"]


def test_out_of_time_tries_nothing() -> None:
    view = observe_swarm(Reader((WKR,)), Budget(deadline=time.monotonic() - 1))
    assert [p.error for p in view.ports] == ["not tried: the time for the checks ran out"]
