"""Judgement of Portainer's view (pure): can Portainer reach the agent on every node?

The finding ids are a contract (scripts act on them); `docs/troubleshooting.md` explains
each one.
"""

from __future__ import annotations

from phoenix_certbot.findings import Finding, Severity
from phoenix_certbot.readiness.model import (
    ENVIRONMENT_DOWN,
    AgentCheck,
    Call,
    EnvironmentView,
    PortainerView,
)

PORTAINER_FINDING_IDS = (
    "portainer.unreachable",
    "portainer.untrusted",
    "portainer.api",
    "portainer.auth",
    "portainer.no-agent",
    "portainer.endpoint-down",
    "portainer.agent-unreachable",
)
# A wrong or missing token will not fix itself: bad input (exit 2), like a broken manifest.
BAD_INPUT_IDS = frozenset({"portainer.auth"})

_E = Severity.ERROR
AGENT_FIX = (
    "between all nodes open 7946/tcp+udp (node discovery) and 4789/udp (VXLAN), and "
    "2377/tcp to the managers; keep the agent on its own overlay network, not on "
    "ingress; on hosts whose MTU is below 1500 give the overlay network a lower MTU "
    "(com.docker.network.driver.mtu), or large packets are dropped; "
    "`docker service ps` shows whether the agent's task runs on {node}"
)
_AUTH_FIX = (
    "create an access token in Portainer (My account > Access tokens), write it alone into "
    "a file only root can read (chmod 600), and pass it with --portainer-token-file or "
    "settings.portainer.token_file"
)
_TRUST_FIX = (
    "pass Portainer's CA certificate (for a self-signed Portainer, its own certificate) "
    "with --portainer-ca-file FILE or settings.portainer.ca_file; if the name is wrong, "
    "set --portainer-server-name to a name the certificate covers"
)


def judge_portainer(view: PortainerView) -> list[Finding]:
    """Findings for Portainer's view; empty when every agent answered through Portainer."""
    found = _call_findings(view, view.status, "Portainer's status API")
    if view.token_problem is not None:
        found.insert(
            0, Finding("portainer.auth", _E, view.token_problem, _AUTH_FIX, file=view.token_file)
        )
    if found or view.endpoints is None:
        return found  # without a token, the status is all we could ask
    found = _call_findings(view, view.endpoints, "the environment list")
    if found:
        return found
    agents = [e for e in view.environments if e.environment.is_agent]
    if not agents:
        return [
            Finding(
                "portainer.no-agent",
                Severity.WARNING,
                f"{view.url}: Portainer has no Docker agent environment (Type 2), so it "
                "manages no node through an agent and nothing was checked",
                "add the swarm to Portainer through its agent (manifests/portainer-stack.yml "
                "deploys one on every node)",
            )
        ]
    for env in agents:
        found.extend(_environment_findings(view, env))
    return found


def _call_findings(view: PortainerView, call: Call, what: str) -> list[Finding]:
    if call.ok:
        return []
    where = f"{view.url}: {call.what}"
    if call.untrusted:
        return [Finding("portainer.untrusted", _E, f"{where}: {call.outcome()}", _TRUST_FIX)]
    if call.error is not None:
        return [
            Finding(
                "portainer.unreachable",
                _E,
                f"{where}: {call.outcome()}",
                "check that Portainer runs and publishes its HTTPS port (9443) where the URL "
                "points; `phoenix-cert verify` names the port layout problems",
            )
        ]
    if call.denied:
        return [
            Finding(
                "portainer.auth",
                _E,
                f"{where}: Portainer refused the API token ({call.outcome()})",
                _AUTH_FIX,
                file=view.token_file,
            )
        ]
    return [
        Finding(
            "portainer.api",
            _E,
            f"{where}: {call.outcome()}; that is not {what}",
            "point the URL at Portainer itself (https://HOST:9443), not at a proxy or "
            "another service",
        )
    ]


def _environment_findings(view: PortainerView, env: EnvironmentView) -> list[Finding]:
    environment = env.environment
    named = f"environment {environment.name!r} (Id {environment.id})"
    nodes = env.nodes
    why = ""
    if environment.status == ENVIRONMENT_DOWN:
        why = "Portainer marks it down (Status 2)"
    elif nodes is not None and not nodes.ok:
        why = f"listing its nodes through the agent failed: {nodes.outcome()}"
    if why:
        return [
            Finding(
                "portainer.endpoint-down",
                _E,
                f"{view.url}: {named}: {why}",
                f"make the agent at {environment.url or 'the environment URL'} reachable "
                "from Portainer's task; " + AGENT_FIX.format(node="every node"),
            )
        ]
    return [_agent_finding(view, named, check) for check in env.agents if not check.call.ok]


def _agent_finding(view: PortainerView, environment: str, check: AgentCheck) -> Finding:
    node = check.node
    return Finding(
        "portainer.agent-unreachable",
        _E,
        f"{view.url}: {environment}: the agent on node {node.hostname} "
        f"({node.address or node.id[:12]}) did not answer through Portainer: "
        f"{check.call.outcome()}",
        AGENT_FIX.format(node=node.hostname),
    )
