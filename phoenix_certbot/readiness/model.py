"""What the readiness checks observe, as values: Portainer's view of its agents and this
manager's view of the swarm. The adapters (`net.portainer`, `swarm.client`, `net.tcp`,
`net.interfaces`) build these; `readiness.portainer` and `readiness.swarm` judge them."""

from __future__ import annotations

from dataclasses import dataclass, field

from phoenix_certbot.swarm.model import NodeInfo, OverlayNetwork

AGENT_ENVIRONMENT = 2  # Portainer's EndpointType "Docker agent"
ENVIRONMENT_UP, ENVIRONMENT_DOWN = 1, 2  # Portainer's EndpointStatus


@dataclass(frozen=True)
class ApiToken:
    """A Portainer API access token. Kept out of every repr, message and log line."""

    value: str = field(repr=False)

    def __str__(self) -> str:
        return "<token>"

    def redact(self, text: str) -> str:
        """`text` (say, a server's answer) with any copy of the token blanked out."""
        return text.replace(self.value, "<token>") if self.value else text


@dataclass(frozen=True)
class Call:
    """One request to Portainer's API and how it went."""

    what: str  # "GET /api/endpoints", and the target node when there is one
    status: int | None = None
    error: str | None = None  # no answer: connect, TLS or HTTP failure (one line)
    untrusted: bool = False  # the TLS handshake failed on an untrusted certificate
    problem: str | None = None  # a 2xx answer that is not what Portainer's API sends
    detail: str = ""  # the message of a non-2xx answer ({"message": ..., "details": ...})

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and self.problem is None
            and self.status is not None
            and 200 <= self.status < 300
        )

    @property
    def denied(self) -> bool:
        return self.status in {401, 403}

    def outcome(self) -> str:
        """One line: why this call did not succeed (or "ok")."""
        if self.error is not None:
            return self.error
        if self.problem is not None:
            return self.problem
        if self.ok:
            return "ok"
        return f"HTTP {self.status}" + (f": {self.detail}" if self.detail else "")


@dataclass(frozen=True)
class Environment:
    """A Portainer environment (endpoint)."""

    id: int
    name: str
    type: int
    status: int
    url: str = ""

    @property
    def is_agent(self) -> bool:
        return self.type == AGENT_ENVIRONMENT


@dataclass(frozen=True)
class AgentNode:
    """A swarm node as an environment's agent reports it (`/docker/nodes`)."""

    id: str
    hostname: str
    role: str = ""
    state: str = ""
    address: str = ""


@dataclass(frozen=True)
class AgentCheck:
    """The request Portainer forwarded to the agent on one node."""

    node: AgentNode
    call: Call


@dataclass(frozen=True)
class EnvironmentView:
    environment: Environment
    nodes: Call | None = None  # None when not asked (the environment is down)
    agents: tuple[AgentCheck, ...] = ()


@dataclass(frozen=True)
class PortainerView:
    url: str
    status: Call
    version: str | None = None
    token_file: str | None = None
    token_problem: str | None = None  # the token file is missing, unreadable or empty
    endpoints: Call | None = None  # None without a token
    environments: tuple[EnvironmentView, ...] = ()

    @property
    def agents_checked(self) -> int:
        return sum(len(e.agents) for e in self.environments)


@dataclass(frozen=True)
class PortProbe:
    """A TCP connect from here to one node's swarm port."""

    node: NodeInfo
    address: str
    port: int
    error: str | None = None


@dataclass(frozen=True)
class HostInterface:
    """This host's interface on the way to the swarm's advertise address."""

    name: str
    mtu: int


@dataclass(frozen=True)
class SwarmView:
    nodes: tuple[NodeInfo, ...]
    ports: tuple[PortProbe, ...] = ()
    overlays: tuple[OverlayNetwork, ...] = ()
    advertise_address: str = ""
    interface: HostInterface | None = None
