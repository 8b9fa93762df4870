"""Judging Portainer's view (pure): which finding, naming which node."""

from __future__ import annotations

from phoenix_certbot.findings import Finding, Severity
from phoenix_certbot.readiness.model import (
    AgentCheck,
    AgentNode,
    Call,
    Environment,
    EnvironmentView,
    PortainerView,
)
from phoenix_certbot.readiness.portainer import PORTAINER_FINDING_IDS, judge_portainer

URL = "https://10.0.0.111:9443"
OK = Call("GET", 200)
MGR = AgentNode("a" * 25, "node-1001", "manager", "ready", "10.0.0.111")
WKR = AgentNode("b" * 25, "node-1002", "worker", "ready", "10.0.0.112")
PRIMARY = Environment(1, "primary", 2, 1)


def view(*environments: EnvironmentView, **changes: object) -> PortainerView:
    fields: dict[str, object] = {
        "url": URL,
        "status": OK,
        "version": "2.19.4",
        "token_file": "/etc/t",
        "endpoints": OK,
        "environments": environments,
    }
    fields.update(changes)
    return PortainerView(**fields)  # type: ignore[arg-type]


def agents(*failing: str, environment: Environment = PRIMARY) -> EnvironmentView:
    checks = tuple(
        AgentCheck(
            n, Call("GET info", 502, detail="dial: i/o timeout") if n.hostname in failing else OK
        )
        for n in (MGR, WKR)
    )
    return EnvironmentView(environment, OK, checks)


def ids(found: list[Finding]) -> list[str]:
    return [f.id for f in found]


def test_every_agent_answers() -> None:
    assert judge_portainer(view(agents())) == []
    assert view(agents()).agents_checked == 2


def test_one_agent_unreachable_names_that_node_and_the_environment() -> None:
    (finding,) = judge_portainer(view(agents("node-1002")))
    assert finding.id == "portainer.agent-unreachable" and finding.severity is Severity.ERROR
    assert "the agent on node node-1002 (10.0.0.112)" in finding.message
    assert "environment 'primary' (Id 1)" in finding.message
    assert "HTTP 502: dial: i/o timeout" in finding.message
    assert "node-1001" not in finding.message
    for port in ("7946/tcp+udp", "4789/udp", "2377/tcp", "ingress", "MTU"):
        assert port in finding.fix


def test_a_down_environment_is_named_and_its_nodes_not_judged() -> None:
    down = EnvironmentView(Environment(3, "edge", 2, 2))
    found = judge_portainer(view(agents(), down))
    assert ids(found) == ["portainer.endpoint-down"]
    assert "environment 'edge' (Id 3): Portainer marks it down (Status 2)" in found[0].message


def test_a_node_list_that_fails_is_an_environment_down() -> None:
    env = EnvironmentView(PRIMARY, Call("GET nodes", 500, detail="agent gone"))
    (finding,) = judge_portainer(view(env))
    assert finding.id == "portainer.endpoint-down"
    assert "listing its nodes through the agent failed: HTTP 500: agent gone" in finding.message


def test_environments_that_are_not_agents_are_not_checked() -> None:
    local = EnvironmentView(Environment(2, "local", 1, 1))
    assert judge_portainer(view(agents(), local)) == []
    (finding,) = judge_portainer(view(local))
    assert (finding.id, finding.severity) == ("portainer.no-agent", Severity.WARNING)


def test_the_token() -> None:
    denied = view(endpoints=Call("GET /api/endpoints", 401, detail="Unauthorized"))
    (finding,) = judge_portainer(denied)
    assert (finding.id, finding.file) == ("portainer.auth", "/etc/t")
    assert "Portainer refused the API token (HTTP 401: Unauthorized)" in finding.message
    missing = view(token_problem="token file not found", endpoints=None)
    assert ids(judge_portainer(missing)) == ["portainer.auth"]


def test_no_token_checks_the_status_only() -> None:
    assert judge_portainer(view(token_file=None, endpoints=None)) == []


def test_portainer_itself() -> None:
    untrusted = Call("GET /api/system/status", error="certificate not trusted", untrusted=True)
    (finding,) = judge_portainer(view(status=untrusted))
    assert finding.id == "portainer.untrusted"
    assert "--portainer-ca-file" in finding.fix and "settings.portainer.ca_file" in finding.fix
    down = Call("GET /api/system/status", error="connect to 10.0.0.111:9443 failed: refused")
    assert ids(judge_portainer(view(status=down))) == ["portainer.unreachable"]
    html = Call("GET /api/system/status", 200, problem="the answer is not JSON")
    assert ids(judge_portainer(view(status=html))) == ["portainer.api"]
    not_found = Call("GET /api/endpoints", 404)
    assert ids(judge_portainer(view(endpoints=not_found))) == ["portainer.api"]


def test_ids_are_the_contract() -> None:
    assert {
        "portainer.auth",
        "portainer.api",
        "portainer.endpoint-down",
        "portainer.agent-unreachable",
    } <= set(PORTAINER_FINDING_IDS)
