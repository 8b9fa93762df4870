"""The stand-in as Portainer and as its agent, on the real (one-node) swarm: the API key
checked, node-targeted requests forwarded over an overlay network to the agent on that
node, the agent's self-signed TLS listener on 9001. (Two nodes: tests/verify/.)"""

from __future__ import annotations

import json
import time
from pathlib import Path

import docker
import pytest
from cryptography import x509
from docker.models.services import Service
from docker.types import EndpointSpec, SecretReference, ServiceMode

from phoenix_certbot.net.https import PIN_LEAF, Trust, fetch
from phoenix_certbot.net.portainer import PortainerApi
from phoenix_certbot.readiness.model import ENVIRONMENT_UP, ApiToken, Environment
from tests.harness import ports
from tests.harness.resources import Resources
from tests.harness.swarm import host_port, service_tasks
from tests.support import pki

pytestmark = pytest.mark.docker

KEY = "ptr_" + "standin" * 5
SERVE_S = 40.0


def running(service: Service, timeout: float = SERVE_S) -> None:
    deadline = time.monotonic() + timeout
    for _attempt in range(int(timeout / 0.25) + 1):
        if any(t["Status"]["State"] == "running" for t in service_tasks(service)):
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.25)
    pytest.fail(f"no running task within {timeout} s")


def test_portainer_reaches_the_agent_on_the_named_node(
    docker_client: docker.DockerClient, resources: Resources, standin_image: str, tmp_path: Path
) -> None:
    ca = pki.make_ca()
    leaf = pki.issue(["portainer.test"], ca)
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    network = resources.create_network("agents", attachable=True)
    agent_port, portainer_port = ports.free_port(), ports.free_port()
    agent = resources.create_service(
        standin_image,
        "agent",
        mode=ServiceMode("global"),
        env=["AGENT_CLUSTER_ADDR=tasks.agent"],
        mounts=["/var/run/docker.sock:/var/run/docker.sock:ro"],
        networks=[str(network.id)],
        endpoint_spec=EndpointSpec(ports=[host_port(agent_port, 9001)]),
    )
    secrets = [
        (resources.create_secret("cert", leaf.cert_pem + ca.cert_pem), "portainer.sslcert"),
        (resources.create_secret("key", leaf.key_pem), "portainer.sslkey"),
        (resources.create_secret("apikey", KEY.encode() + b"\n"), "portainer.apikey"),
    ]
    portainer = resources.create_service(
        standin_image,
        "portainer",
        args=["-H", f"tcp://tasks.{agent.name}:9001", "--tlsskipverify"],
        secrets=[SecretReference(str(s.id), str(s.name), filename=f) for s, f in secrets],
        networks=[str(network.id)],
        endpoint_spec=EndpointSpec(ports=[host_port(portainer_port, 9443)]),
    )
    running(agent)
    running(portainer)
    hostname = docker_client.info()["Name"]
    api = PortainerApi(
        f"https://127.0.0.1:{portainer_port}", "portainer.test", tmp_path / "ca.pem", ApiToken(KEY)
    )

    deadline = time.monotonic() + SERVE_S
    environments: tuple[Environment, ...] = ()
    for _attempt in range(int(SERVE_S / 0.5) + 1):  # until the agent is resolvable
        call, environments = api.environments(5)
        if call.ok and environments and environments[0].status == ENVIRONMENT_UP:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"no agent environment up: {call.outcome()} {environments}")
        time.sleep(0.5)
    call, nodes = api.nodes(1, 5)
    assert call.ok, call.outcome()
    assert hostname in {n.hostname for n in nodes}  # Docker's own node list, via the agent
    assert api.agent_info(1, hostname, 5).ok
    info = fetch(
        f"https://127.0.0.1:{portainer_port}/api/endpoints/1/docker/info",
        server_name="portainer.test",
        trust=Trust(True, tmp_path / "ca.pem"),
        headers={"X-API-Key": KEY, "X-PortainerAgent-Target": hostname},
    )
    assert json.loads(info.body)["Name"] == hostname  # answered by that node's Docker
    elsewhere = api.agent_info(1, "no-such-node", 5)
    assert elsewhere.status == 502 and "no agent on node no-such-node" in elsewhere.detail
    wrong, _ = PortainerApi(
        api.url, api.server_name, api.ca_file, ApiToken("ptr_wrong_key")
    ).environments(5)
    assert wrong.status == 401

    # The agent itself: TLS on 9001 with a self-signed certificate of its own.
    pinged = fetch(f"https://127.0.0.1:{agent_port}/ping", trust=PIN_LEAF)
    assert pinged.status == 204 and pinged.leaf_der is not None
    agent_leaf = x509.load_der_x509_certificate(pinged.leaf_der)
    assert agent_leaf.issuer == agent_leaf.subject
    assert agent_leaf.subject.rfc4514_string() == f"CN=portainer-agent {hostname}"
