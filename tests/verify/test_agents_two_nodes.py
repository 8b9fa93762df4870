""" "Can 1001 manage 1002?" on a real two-node swarm: Portainer's view of its agents and the
swarm's view, by `verify` and `wait-ready`.

The lab (tests/harness/cluster, fixture two_node_swarm) is a manager and a worker, each a
dockerd in its own network and UTS namespace (hostnames phxS-mgr and phxS-wkr). On it run
the agent stand-in as a global service on an overlay network, with its node's Docker socket
(a templated bind mount), and the Portainer stand-in on the manager with `-H
tcp://tasks.<agent>:9001`, publishing 9443 in host mode. Portainer forwards each
node-targeted request over the overlay to the agent on that node.

The fault is made inside the worker's namespace: 4789/udp dropped (the overlay's VXLAN
packets: Portainer cannot reach the worker's agent) and 7946/tcp dropped (what
`swarm.port-unreachable` probes). 7946/udp is left open on purpose: with it blocked too,
the managers declare the worker's gossip dead and, after the unblock, Docker re-learns the
worker's overlay endpoints on its own schedule (measured here: 0.7 to 34 s), which would
measure Docker, not wait-ready.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from docker.models.services import Service
from docker.types import EndpointSpec, Mount, SecretReference, ServiceMode

from phoenix_certbot.cli.main import cli
from tests.harness.cluster import ClusterLab
from tests.harness.resources import Resources
from tests.harness.swarm import host_port, service_tasks
from tests.support import pki
from tests.verify import builders as b

pytestmark = pytest.mark.docker

API_KEY = "ptr_" + "twonodes" * 4
PORTAINER_PORT = 19444  # published on the manager, inside the lab: nothing else there
SERVER_NAME = "portainer.test"
TASKS_S = 60.0
INTERVAL_S = 5.0
REQUEST_S = 10.0  # wait-ready's default --request-timeout
SLACK_S = 3.0  # Docker calls, threads and judgement on a busy 2-core machine


@dataclass(frozen=True)
class Outcome:
    code: int
    elapsed: float
    document: dict[str, Any]
    output: str

    @property
    def ids(self) -> list[str]:
        return [f["id"] for f in self.document["findings"]]

    def finding(self, finding_id: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = [
            f for f in self.document["findings"] if f["id"] == finding_id
        ]
        assert len(found) == 1, self.document["findings"]
        return found[0]


class PortainerOnTwoNodes:
    """The agent on every node and Portainer on the manager, and the files to reach it."""

    def __init__(self, lab: ClusterLab, resources: Resources, tmp: Path) -> None:
        self.lab = lab
        self.resources = resources
        self.tmp = tmp
        ca = pki.make_ca("portainer test CA")
        self.leaf = pki.issue([SERVER_NAME], ca)
        self.ca_file = tmp / "portainer-ca.pem"
        self.ca_file.write_bytes(ca.cert_pem)
        self.token = tmp / "portainer.token"
        self.token.write_text(API_KEY + "\n")
        self.token.chmod(0o600)
        self.url = f"https://{lab.manager.address}:{PORTAINER_PORT}"

    def _sockets(self) -> str:
        """A folder of links, one per node hostname, to that node's Docker socket: the
        agent's bind mount names its node's by template (each dockerd has its own path)."""
        folder = self.tmp / "sockets"
        folder.mkdir()
        for node in self.lab.nodes:
            (folder / f"{node.hostname}.sock").symlink_to(node.socket)
        return str(folder / "{{.Node.Hostname}}.sock")

    def deploy(self) -> tuple[Service, Service]:
        r = self.resources
        network = r.create_network("agents", attachable=True)
        agent = r.create_service(
            self.lab.image,
            "agent",
            mode=ServiceMode("global"),
            env=["AGENT_CLUSTER_ADDR=tasks.agent"],
            mounts=[Mount("/var/run/docker.sock", self._sockets(), "bind", read_only=True)],
            networks=[str(network.id)],
        )
        secrets = [
            (r.create_secret("cert", self.leaf.cert_pem), "portainer.sslcert"),
            (r.create_secret("key", self.leaf.key_pem), "portainer.sslkey"),
            (r.create_secret("apikey", API_KEY.encode() + b"\n"), "portainer.apikey"),
        ]
        portainer = r.create_service(
            self.lab.image,
            "portainer",
            args=["-H", f"tcp://tasks.{agent.name}:9001", "--tlsskipverify"],
            secrets=[SecretReference(str(s.id), str(s.name), filename=f) for s, f in secrets],
            networks=[str(network.id)],
            endpoint_spec=EndpointSpec(ports=[host_port(PORTAINER_PORT, 9443)]),
            constraints=["node.role == manager"],
        )
        return agent, portainer

    def options(self) -> list[str]:
        return [
            "--portainer-url", self.url, "--portainer-server-name", SERVER_NAME,
            "--portainer-ca-file", str(self.ca_file), "--portainer-token-file", str(self.token),
        ]  # fmt: skip

    def manifest(self) -> Path:
        """A manifest with a certificate and no service: verify then needs Docker for the
        swarm view only."""
        _, live = b.lineage(self.tmp)
        path = b.write_manifest(self.tmp / "m.json", [b.entry("web", live)], self.tmp / "state")
        path.chmod(0o600)
        return path


def run(lab: ClusterLab, *args: str) -> Outcome:
    started = time.monotonic()
    result = CliRunner().invoke(
        cli, [*args, "--json"], env={"DOCKER_HOST": lab.manager.host}, catch_exceptions=False
    )
    elapsed = time.monotonic() - started
    return Outcome(result.exit_code, elapsed, json.loads(result.stdout), result.output)


def wait_tasks(services: tuple[Service, ...], want: int) -> None:
    deadline = time.monotonic() + TASKS_S
    running = 0
    for _attempt in range(int(TASKS_S / 0.25) + 1):
        running = sum(
            1
            for service in services
            for task in service_tasks(service)
            if task["DesiredState"] == "running" and task["Status"]["State"] == "running"
        )
        if running >= want:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.25)
    pytest.fail(f"{running} tasks running, wanted {want}")


@pytest.fixture
def portainer(two_node_swarm: ClusterLab, tmp_path: Path) -> Iterator[PortainerOnTwoNodes]:
    resources = Resources(two_node_swarm.client())
    setup = PortainerOnTwoNodes(two_node_swarm, resources, tmp_path)
    wait_tasks(setup.deploy(), 3)  # an agent on each node, Portainer on the manager
    yield setup
    problems = resources.cleanup()
    if problems:
        pytest.fail("could not remove test resources: " + "; ".join(problems), pytrace=False)


def test_the_worker_cut_off_is_named_and_ready_again_within_two_intervals(
    two_node_swarm: ClusterLab, portainer: PortainerOnTwoNodes
) -> None:
    lab = two_node_swarm
    mgr, wkr = lab.manager, lab.worker
    options = portainer.options()

    ready = run(lab, "wait-ready", *options, "--timeout", "60", "--interval", "1")
    assert (ready.code, ready.ids) == (0, []), ready.output
    checked = ready.document["checked"]
    assert (checked["agents"], checked["swarm_nodes"]) == (2, 2)  # both nodes, both views
    manifest = portainer.manifest()
    healthy = run(lab, "verify", "--manifest", str(manifest), "--timeout", "8", *options)
    assert (healthy.code, healthy.ids) == (0, []), healthy.output

    with lab.port_closed(wkr, 4789, ("udp",)), lab.port_closed(wkr, 7946, ("tcp",)):
        blocked = run(lab, "verify", "--manifest", str(manifest), "--timeout", "8", *options)
        waited = run(lab, "wait-ready", *options, "--timeout", "5", "--interval", "2")
    for outcome in (blocked, waited):
        assert outcome.code == 1, outcome.output
        assert sorted(outcome.ids) == ["portainer.agent-unreachable", "swarm.port-unreachable"]
        agent = outcome.finding("portainer.agent-unreachable")["message"]
        assert f"the agent on node {wkr.hostname} ({wkr.address})" in agent
        assert mgr.hostname not in agent
        port = outcome.finding("swarm.port-unreachable")["message"]
        assert f"node {wkr.hostname} " in port and f"to {wkr.address}:7946 " in port
    assert blocked.elapsed <= 8 + SLACK_S
    assert waited.elapsed <= 5 + REQUEST_S + SLACK_S

    # Unblocked: the next attempt that starts after Docker's overlay carries packets again
    # passes; within two intervals.
    started = time.monotonic()
    recovered = run(lab, "wait-ready", *options, "--timeout", "60", "--interval", str(INTERVAL_S))
    assert (recovered.code, recovered.ids) == (0, []), recovered.output
    assert time.monotonic() - started <= 2 * INTERVAL_S + SLACK_S
    print(
        f"\nready {ready.elapsed:.2f} s, verify healthy {healthy.elapsed:.2f} s; worker cut off: "
        f"verify {blocked.elapsed:.2f} s, wait-ready --timeout 5 {waited.elapsed:.2f} s "
        f"({waited.document['attempts']} attempts); unblocked: ready after "
        f"{recovered.elapsed:.2f} s ({recovered.document['attempts']} attempts)"
    )


def test_a_wrong_token_is_named_and_never_shown(
    two_node_swarm: ClusterLab, portainer: PortainerOnTwoNodes
) -> None:
    wrong = "ptr_wrong_" + "x7" * 12
    portainer.token.write_text(wrong + "\n")
    outcome = run(two_node_swarm, "wait-ready", *portainer.options(), "--timeout", "30")
    assert outcome.code == 2
    assert outcome.ids == ["portainer.auth"]
    assert outcome.document["attempts"] == 1
    assert wrong not in outcome.output
