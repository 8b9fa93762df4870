"""The harness itself, against the real daemon: the swarm, and the stand-in as a service."""

from __future__ import annotations

import http.client
import json
import socket
import time
from typing import Any

import docker
import docker.errors
import pytest
from docker.models.services import Service
from docker.types import EndpointSpec, RestartPolicy, SecretReference

from tests.harness import ports
from tests.harness.resources import Resources
from tests.harness.swarm import host_port, remove_service, service_tasks
from tests.support import pki
from tests.support.tls import no_verify, served_sha256

pytestmark = pytest.mark.docker

STANDIN_PORT = 9443


def deploy_standin(
    resources: Resources,
    image: str,
    port: int,
    leaf: pki.Issued,
    *,
    env: dict[str, str] | None = None,
    suffix: str = "standin",
) -> Service:
    cert = resources.create_secret(f"{suffix}-cert", leaf.cert_pem)
    key = resources.create_secret(f"{suffix}-key", leaf.key_pem)
    return resources.create_service(
        image,
        suffix,
        init=True,
        env=[f"{k}={v}" for k, v in (env or {}).items()],
        secrets=[
            SecretReference(str(cert.id), cert.name, filename="portainer.sslcert"),
            SecretReference(str(key.id), key.name, filename="portainer.sslkey", mode=0o400),
        ],
        endpoint_spec=EndpointSpec(ports=[host_port(port, STANDIN_PORT)]),
        # A failed start stays failed, so a test can see it instead of a restart loop.
        restart_policy=RestartPolicy(condition="none"),
    )


def wait_task(service: Service, states: set[str], timeout: float = 30.0) -> dict[str, Any]:
    """The service's task once it reaches one of `states`; fails on the way if it ends."""
    deadline = time.monotonic() + timeout
    seen = "no task"
    for _attempt in range(int(timeout / 0.2) + 1):
        tasks = service_tasks(service)
        if tasks:
            task: dict[str, Any] = tasks[0]
            seen = f"{task['Status']['State']}: {task['Status'].get('Err', '')}"
            if task["Status"]["State"] in states:
                return task
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    pytest.fail(f"task did not reach {sorted(states)} within {timeout} s (last: {seen})")


def get(port: int, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=no_verify())
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_swarm_is_active_and_this_node_is_a_manager(docker_client: docker.DockerClient) -> None:
    swarm = docker_client.info()["Swarm"]
    assert swarm["LocalNodeState"] == "active"
    assert swarm["ControlAvailable"] is True
    node = docker_client.nodes.get(swarm["NodeID"])
    assert node.attrs["Spec"]["Role"] == "manager"
    assert node.attrs["Status"]["State"] == "ready"


def test_standin_serves_the_secret_certificate(
    resources: Resources, standin_image: str, free_port: int
) -> None:
    leaf = pki.issue(["portainer.example.test"])
    service = deploy_standin(resources, standin_image, free_port, leaf)
    wait_task(service, {"running"})

    assert served_sha256(free_port) == leaf.sha256
    status, body = get(free_port, "/api/system/status")
    assert status == 200
    document = json.loads(body)
    assert document["Version"]
    assert document["InstanceID"]


def test_standin_survives_an_aborted_handshake(
    resources: Resources, standin_image: str, free_port: int
) -> None:
    leaf = pki.issue(["portainer.example.test"])
    service = deploy_standin(resources, standin_image, free_port, leaf)
    wait_task(service, {"running"})
    served_sha256(free_port)

    # A client that hangs up at once, then one that gives up halfway through a ClientHello.
    with socket.create_connection(("127.0.0.1", free_port), timeout=3):
        pass
    with socket.create_connection(("127.0.0.1", free_port), timeout=3) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    assert served_sha256(free_port) == leaf.sha256


def test_standin_fails_at_start_on_request(
    resources: Resources, standin_image: str, free_port: int
) -> None:
    service = deploy_standin(
        resources,
        standin_image,
        free_port,
        pki.issue(["a.test"]),
        env={"STANDIN_FAIL_AT_START": "1"},
    )
    task = wait_task(service, {"failed", "complete", "rejected"})
    assert task["Status"]["State"] == "failed"
    assert task["Status"]["ContainerStatus"]["ExitCode"] != 0


def test_standin_fails_only_for_the_named_certificate(
    resources: Resources, standin_image: str, free_port: int
) -> None:
    refused = pki.issue(["new.test"])
    service = deploy_standin(
        resources,
        standin_image,
        free_port,
        refused,
        env={"STANDIN_FAIL_IF_CERT_SHA256": refused.sha256.upper()},
    )
    task = wait_task(service, {"failed", "complete", "rejected"})
    assert task["Status"]["State"] == "failed"

    accepted = pki.issue(["old.test"])
    other_port = ports.free_port()
    other = deploy_standin(
        resources,
        standin_image,
        other_port,
        accepted,
        env={"STANDIN_FAIL_IF_CERT_SHA256": refused.sha256},
        suffix="accepted",
    )
    wait_task(other, {"running"})
    assert served_sha256(other_port) == accepted.sha256


def test_removing_the_service_stops_its_task_fast(
    docker_client: docker.DockerClient, resources: Resources, standin_image: str, free_port: int
) -> None:
    service = deploy_standin(resources, standin_image, free_port, pki.issue(["a.test"]))
    task = wait_task(service, {"running"})
    served_sha256(free_port)
    container_id = task["Status"]["ContainerStatus"]["ContainerID"]

    started = time.monotonic()
    remove_service(service)
    stopped_after = None
    for _attempt in range(100):
        try:
            running = docker_client.containers.get(container_id).status == "running"
        except docker.errors.NotFound:
            running = False
        if not running:
            stopped_after = time.monotonic() - started
            break
        if time.monotonic() - started > 10:
            break
        time.sleep(0.05)
    # Swarm itself takes 1-2 s to pass the removal on to the task; a stand-in that ignored
    # TERM would take the whole 10 s grace period on top.
    assert stopped_after is not None, "task still running 10 s after the service was removed"
    assert stopped_after < 4.0, f"task took {stopped_after:.2f} s to stop"
