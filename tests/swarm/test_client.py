"""The Docker adapter against the real daemon."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.types import EndpointSpec, SecretReference, UpdateConfig

from phoenix_certbot.errors import DockerUnavailable, OperationFailed
from phoenix_certbot.manifest.model import ObjectKind
from phoenix_certbot.swarm.client import SwarmClient
from phoenix_certbot.swarm.model import MountRef
from tests.harness.docker_proxy import StallingProxy, stalling_proxy
from tests.harness.resources import Resources
from tests.harness.swarm import host_port
from tests.support import pki

pytestmark = pytest.mark.docker


@pytest.fixture
def swarm(docker_client: docker.DockerClient) -> SwarmClient:
    return SwarmClient.connect()


def count_requests(client: SwarmClient, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every HTTP request the adapter sends, counted at the transport (APIClient is a
    requests.Session)."""
    api: Any = client._api
    sent: list[str] = []
    original = api.send

    def send(request: Any, **kwargs: Any) -> Any:
        sent.append(f"{request.method} {request.path_url}")
        return original(request, **kwargs)

    monkeypatch.setattr(api, "send", send)
    return sent


def test_unreachable_docker_is_exit_3_before_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(DockerUnavailable) as info:
        SwarmClient.connect(timeout_s=2)
    assert info.value.exit_code == 3 and "\n" not in str(info.value)


@pytest.fixture
def proxy(docker_client: docker.DockerClient) -> Iterator[StallingProxy]:
    # A short folder: a unix socket path must stay under 108 bytes.
    with tempfile.TemporaryDirectory(prefix="phx-") as folder, stalling_proxy(Path(folder)) as p:
        yield p


def test_a_stalled_api_is_docker_unavailable_not_a_raw_timeout(
    proxy: StallingProxy, resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = resources.create_service(
        "localhost/none:0", "stalled", mode=docker.types.ServiceMode("replicated", replicas=0)
    )
    monkeypatch.setenv("DOCKER_HOST", proxy.url)
    swarm = SwarmClient.connect(timeout_s=2)
    assert swarm.service(str(service.id)).name == service.name  # through the proxy

    proxy.stall("GET", "/services/")
    with pytest.raises(DockerUnavailable, match=r"no answer within 2 s") as info:
        swarm.service(str(service.id))
    assert info.value.exit_code == 3 and "\n" not in str(info.value)
    assert proxy.stalled and proxy.stalled[0].startswith("GET /v")
    assert swarm.service(str(service.id)).name == service.name  # a new connection works


def test_snapshot_costs_three_requests_whatever_the_swarm_holds(
    swarm: SwarmClient, resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = count_requests(swarm, monkeypatch)
    swarm.snapshot()
    before = len(sent)
    for i in range(5):
        resources.create_secret(f"s{i}", b"x")
    sent.clear()
    snapshot = swarm.snapshot()
    assert len(sent) == before == 3
    names = {o.name for o in snapshot.objects}
    assert {resources.name(f"s{i}") for i in range(5)} <= names


def test_created_objects_carry_their_labels(swarm: SwarmClient, resources: Resources) -> None:
    for kind in ObjectKind:
        name = resources.name(f"obj-{kind.value}")
        obj = swarm.create_object(
            kind,
            name,
            b"-----BEGIN CERTIFICATE-----\n",
            {"io.phoenix-certbot.managed": "true", **resources.labels},
        )
        resources.track(
            resources.client.secrets.get(obj.id)
            if kind is ObjectKind.SECRET
            else resources.client.configs.get(obj.id)
        )
        assert (obj.kind, obj.name, obj.managed) == (kind, name, True)
        again = swarm.snapshot().object_by_name(kind, name)
        assert again is not None and again.id == obj.id and again.created == obj.created


def test_creating_an_existing_name_is_an_operation_error(
    swarm: SwarmClient, resources: Resources
) -> None:
    secret = resources.create_secret("dup", b"x")
    with pytest.raises(OperationFailed, match="creating secret"):
        swarm.create_object(ObjectKind.SECRET, str(secret.name), b"y", {})


def test_set_mounts_changes_only_the_mount_and_restore_puts_it_back(
    swarm: SwarmClient, resources: Resources, standin_image: str, free_port: int
) -> None:
    leaf = pki.issue(["web.test"])
    old = resources.create_secret("old", leaf.cert_pem)
    other = resources.create_secret("other", b"unrelated")
    new = resources.create_secret("new", leaf.cert_pem)
    service = resources.create_service(
        standin_image,
        "svc",
        init=True,
        env=["KEEP=me"],
        secrets=[
            SecretReference(str(old.id), str(old.name), filename="web.crt"),
            SecretReference(str(other.id), str(other.name), filename="other"),
        ],
        endpoint_spec=EndpointSpec(ports=[host_port(free_port, 9443)]),
        update_config=UpdateConfig(monitor=1_000_000_000, failure_action="pause"),
        mode=docker.types.ServiceMode("replicated", replicas=0),
    )
    before = swarm.service(str(service.id))
    token = swarm.set_mounts(
        str(service.name),
        [
            MountRef(
                kind=ObjectKind.SECRET,
                object_id=str(new.id),
                object_name=str(new.name),
                target="web.crt",
                mode=0o400,
            )
        ],
        force=False,
    )
    after = swarm.service(str(service.id))
    assert after.version > before.version
    assert sorted((m.object_name, m.target, m.mode) for m in after.refs) == sorted(
        [(str(new.name), "web.crt", 0o400), (str(other.name), "other", 0o444)]
    )
    assert after.published_host_ports == (free_port,) and after.monitor_s == 1.0
    assert [m.object_name for m in after.previous_refs if m.target == "web.crt"] == [str(old.name)]
    spec = resources.client.api.inspect_service(service.id)["Spec"]
    assert spec["TaskTemplate"]["ContainerSpec"]["Env"] == ["KEEP=me"]
    assert spec["Labels"] == resources.labels
    assert spec["UpdateConfig"]["FailureAction"] == "pause"

    swarm.restore(token)
    restored = swarm.service(str(service.id))
    assert sorted(m.object_name for m in restored.refs) == sorted([str(old.name), str(other.name)])
    assert restored.force_update == after.force_update + 1


def test_forced_update_bumps_the_counter(
    swarm: SwarmClient, resources: Resources, standin_image: str
) -> None:
    service = resources.create_service(
        standin_image, "force", mode=docker.types.ServiceMode("replicated", replicas=0)
    )
    before = swarm.service(str(service.id)).force_update
    swarm.set_mounts(str(service.name), [], force=True)
    assert swarm.service(str(service.id)).force_update == before + 1


def test_updating_a_missing_service_is_an_operation_error(swarm: SwarmClient) -> None:
    with pytest.raises(OperationFailed, match="no-such-service-phx"):
        swarm.set_mounts("no-such-service-phx", [], force=True)


def test_nodes_and_tasks_are_values(
    swarm: SwarmClient, resources: Resources, standin_image: str
) -> None:
    (node,) = [n for n in swarm.nodes() if n.role == "manager"][:1]
    assert node.state == "ready" and node.address
    service = resources.create_service(
        standin_image, "idle", init=True, env=["AGENT_CLUSTER_ADDR=x"]
    )
    import time

    deadline = time.monotonic() + 30
    tasks = swarm.tasks(str(service.id))
    while time.monotonic() < deadline and not any(t.state == "running" for t in tasks):
        time.sleep(0.3)
        tasks = swarm.tasks(str(service.id))
    assert any(t.state == "running" and t.node_id == node.id for t in tasks)
