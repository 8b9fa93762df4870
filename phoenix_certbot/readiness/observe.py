"""Gather the readiness observations within a deadline: Portainer's view of its agents
and this manager's view of the swarm. Side effects only through the adapters."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, TypeVar

from phoenix_certbot.manifest.model import PortainerSettings
from phoenix_certbot.net.interfaces import interface_towards
from phoenix_certbot.net.portainer import PortainerApi
from phoenix_certbot.net.tcp import connect_error
from phoenix_certbot.readiness.model import (
    ENVIRONMENT_DOWN,
    AgentCheck,
    AgentNode,
    ApiToken,
    Environment,
    EnvironmentView,
    HostInterface,
    PortainerView,
    PortProbe,
    SwarmView,
)
from phoenix_certbot.readiness.swarm import GOSSIP_PORT, MANAGER_PORT
from phoenix_certbot.readiness.token import TokenFileError, read_token
from phoenix_certbot.swarm.model import NodeInfo, OverlayNetwork

REQUEST_TIMEOUT_S = 10.0
MAX_PARALLEL = 16
PORT_TIMEOUT_S = 3.0
_UNKNOWN_ADDRESSES = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 - compared, not bound
_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(frozen=True)
class Budget:
    """An absolute deadline (time.monotonic) and the bound on any single request."""

    deadline: float
    request_timeout_s: float = REQUEST_TIMEOUT_S

    @classmethod
    def starting_now(cls, total_s: float, request_timeout_s: float = REQUEST_TIMEOUT_S) -> Budget:
        return cls(time.monotonic() + total_s, min(request_timeout_s, total_s))

    def next_request(self) -> float:
        """Seconds the next request may take; 0 when the time is up."""
        return max(0.0, min(self.request_timeout_s, self.deadline - time.monotonic()))


def portainer_api(settings: PortainerSettings, token: ApiToken | None = None) -> PortainerApi:
    """The API client for `settings` (url required); BadInput for an unusable URL or CA
    file, before any request is made."""
    if not settings.url:
        raise ValueError("portainer_api needs settings.url")
    return PortainerApi(settings.url, settings.server_name, settings.ca_file, token)


def observe_portainer(
    settings: PortainerSettings, budget: Budget, *, euid: int | None = None
) -> PortainerView:
    """Status; then, with a token, the environments, each agent environment's nodes, and
    one request per node forwarded by Portainer to the agent on that node."""
    token, token_problem = None, None
    token_file = str(settings.token_file) if settings.token_file else None
    if settings.token_file is not None:
        try:
            token = read_token(settings.token_file, euid=euid)
        except TokenFileError as exc:
            token_problem = exc.message
    api = portainer_api(settings, token)
    status, version = api.status(budget.next_request())
    view = PortainerView(
        api.url, status, version, token_file=token_file, token_problem=token_problem
    )
    if not status.ok or token is None:
        return view
    endpoints, environments = api.environments(budget.next_request())
    views = tuple(
        _environment(api, env, budget) if env.is_agent else EnvironmentView(env)
        for env in environments
    )
    return PortainerView(
        api.url, status, version, token_file, None, endpoints, views if endpoints.ok else ()
    )


def _environment(api: PortainerApi, env: Environment, budget: Budget) -> EnvironmentView:
    if env.status == ENVIRONMENT_DOWN:
        return EnvironmentView(env)
    call, nodes = api.nodes(env.id, budget.next_request())
    if not call.ok or not nodes:
        return EnvironmentView(env, call)

    def one(node: AgentNode) -> AgentCheck:
        return AgentCheck(node, api.agent_info(env.id, node.hostname, budget.next_request()))

    return EnvironmentView(env, call, tuple(parallel(one, nodes)))


def parallel(work: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    """`work` on every item, at most MAX_PARALLEL at a time, results in order."""
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(items))) as pool:
        return list(pool.map(work, items))


class SwarmViewReader(Protocol):
    """What the swarm view reads from Docker (`swarm.client.SwarmClient` has it)."""

    def nodes(self) -> tuple[NodeInfo, ...]: ...

    def overlay_networks(self) -> tuple[OverlayNetwork, ...]: ...

    def advertise_address(self) -> str: ...


Connector = Callable[[str, int, float], str | None]
InterfaceFinder = Callable[[str], tuple[str, int] | None]


def observe_swarm(
    reader: SwarmViewReader,
    budget: Budget,
    *,
    connect: Connector = connect_error,
    interface_of: InterfaceFinder = interface_towards,
) -> SwarmView:
    """The nodes and overlay networks as Docker reports them, a bounded TCP connect from
    here to each node's 7946 and each manager's 2377, and this host's interface (and MTU)
    towards the swarm's advertise address."""
    nodes = reader.nodes()
    overlays = reader.overlay_networks()
    address = reader.advertise_address()

    def probe(target: tuple[NodeInfo, str, int]) -> PortProbe:
        node, host, port = target
        timeout = min(PORT_TIMEOUT_S, budget.next_request())
        if timeout <= 0:
            return PortProbe(node, host, port, "not tried: the time for the checks ran out")
        return PortProbe(node, host, port, connect(host, port, timeout))

    ports = tuple(parallel(probe, port_targets(nodes)))
    found = interface_of(address) if address else None
    interface = HostInterface(*found) if found else None
    return SwarmView(nodes, ports, overlays, address, interface)


def port_targets(nodes: Sequence[NodeInfo]) -> list[tuple[NodeInfo, str, int]]:
    """(node, address, port) to try: 7946 on every node, 2377 (or the port its
    ManagerStatus names) on every manager; nodes without a usable address are left out."""
    targets: list[tuple[NodeInfo, str, int]] = []
    for node in nodes:
        if node.address not in _UNKNOWN_ADDRESSES:
            targets.append((node, node.address, GOSSIP_PORT))
        if node.role != "manager":
            continue
        host, port = _split(node.manager_address, node.address)
        if host not in _UNKNOWN_ADDRESSES:
            targets.append((node, host, port))
    return targets


def _split(host_port: str, fallback: str) -> tuple[str, int]:
    host, sep, port = host_port.rpartition(":")
    if not sep or not port.isdigit():
        return fallback, MANAGER_PORT
    return host.strip("[]"), int(port)
