"""The Docker adapter against the real daemon."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import docker
import pytest
from docker.types import EndpointSpec, SecretReference, UpdateConfig

from phoenix_certbot.errors import DockerUnavailable, OperationFailed, WriteConflict
from phoenix_certbot.manifest.model import ObjectKind
from phoenix_certbot.swarm.client import MTU_OPTION, NotFound, SwarmClient, UpdateOutOfSequence
from phoenix_certbot.swarm.model import LABEL_LEASE, MountRef, MountSlot
from tests.harness.resources import Resources
from tests.harness.swarm import host_port
from tests.support import pki
from tests.support.stall_proxy import StallingProxy

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
    with StallingProxy() as p:
        yield p


def test_a_stalled_api_is_docker_unavailable_not_a_raw_timeout(
    proxy: StallingProxy, resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = resources.create_service(
        "localhost/none:0", "stalled", mode=docker.types.ServiceMode("replicated", replicas=0)
    )
    monkeypatch.setenv("DOCKER_HOST", proxy.docker_host)
    swarm = SwarmClient.connect(timeout_s=2)
    assert swarm.service(str(service.id)).name == service.name  # through the proxy

    proxy.stall()
    with pytest.raises(DockerUnavailable, match=r"no answer within 2 s") as info:
        swarm.service(str(service.id))
    assert info.value.exit_code == 3 and "\n" not in str(info.value)
    assert [(m, p.split("?")[0].endswith(str(service.id))) for _, m, p in proxy.held] == [
        ("GET", True)
    ]
    proxy.resume()
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


def test_write_mounts_changes_only_the_mounts_it_names_on_the_spec_read(
    swarm: SwarmClient, resources: Resources, standin_image: str, free_port: int
) -> None:
    leaf = pki.issue(["web.test"])
    old = resources.create_secret("old", leaf.cert_pem)
    other = resources.create_secret("other", b"unrelated")
    new = resources.create_secret("new", leaf.cert_pem)
    chain = resources.create_config("chain", leaf.cert_pem)
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
    before = swarm.read_spec(str(service.id))
    new_mount = MountRef(ObjectKind.SECRET, str(new.id), str(new.name), "web.crt", mode=0o400)
    chain_mount = MountRef(ObjectKind.CONFIG, str(chain.id), str(chain.name), "/ca.pem")
    swarm.write_mounts(
        before,
        [
            MountSlot(ObjectKind.SECRET, "web.crt", new_mount),
            MountSlot(ObjectKind.CONFIG, "/ca.pem", chain_mount),
        ],
        force_update=before.state.force_update + 1,
    )
    after = swarm.service(str(service.id))
    assert after.version > before.state.version
    assert [(m.object_name, m.target, m.mode) for m in after.refs] == [
        (str(new.name), "web.crt", 0o400),  # replaced in place: the list keeps its order
        (str(other.name), "other", 0o444),
        (str(chain.name), "/ca.pem", 0o444),
    ]
    assert after.force_update == before.state.force_update + 1
    assert after.published_host_ports == (free_port,) and after.monitor_s == 1.0
    changed = {k for k, v in after.spec_parts if dict(before.state.spec_parts).get(k) != v}
    assert changed == {
        "TaskTemplate.ContainerSpec.Secrets[web.crt]",
        "TaskTemplate.ContainerSpec.Configs[/ca.pem]",
        "TaskTemplate.ForceUpdate",
    }
    spec = resources.client.api.inspect_service(service.id)["Spec"]
    assert spec["TaskTemplate"]["ContainerSpec"]["Env"] == ["KEEP=me"]
    assert spec["Labels"] == resources.labels
    assert spec["UpdateConfig"]["FailureAction"] == "pause"

    # Removing a mount: the config list the first update added goes away entirely.
    current = swarm.read_spec(str(service.id))
    swarm.write_mounts(
        current,
        [
            MountSlot(
                ObjectKind.SECRET, "web.crt", before.state.mount_at(ObjectKind.SECRET, "web.crt")
            ),
            MountSlot(ObjectKind.CONFIG, "/ca.pem", None),
        ],
        force_update=current.state.force_update,
    )
    restored = resources.client.api.inspect_service(service.id)["Spec"]["TaskTemplate"]
    assert "Configs" not in restored["ContainerSpec"]
    assert [s["SecretName"] for s in restored["ContainerSpec"]["Secrets"]] == [
        str(old.name),
        str(other.name),
    ]

    # The spec read before is stale now: swarm refuses it instead of merging.
    with pytest.raises(UpdateOutOfSequence):
        swarm.write_mounts(current, [], force_update=current.state.force_update + 5)


def test_a_status_change_moves_the_version_but_not_the_spec_parts(
    swarm: SwarmClient, resources: Resources, standin_image: str
) -> None:
    service = resources.create_service(
        standin_image, "parts", mode=docker.types.ServiceMode("replicated", replicas=0)
    )
    handle = swarm.read_spec(str(service.id))
    assert dict(handle.state.spec_parts)["TaskTemplate.ForceUpdate"]
    again = swarm.read_spec(str(service.id))
    assert again.state.spec_parts == handle.state.spec_parts


def test_forced_update_bumps_the_counter(
    swarm: SwarmClient, resources: Resources, standin_image: str
) -> None:
    service = resources.create_service(
        standin_image, "force", mode=docker.types.ServiceMode("replicated", replicas=0)
    )
    handle = swarm.read_spec(str(service.id))
    swarm.write_mounts(handle, [], force_update=handle.state.force_update + 1)
    assert swarm.service(str(service.id)).force_update == handle.state.force_update + 1


def test_reading_a_missing_service_is_not_found(swarm: SwarmClient) -> None:
    with pytest.raises(NotFound, match="no-such-service-phx"):
        swarm.read_spec("no-such-service-phx")


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


def test_the_swarm_view_reads_nodes_networks_and_the_advertise_address(
    swarm: SwarmClient, resources: Resources
) -> None:
    (manager,) = [n for n in swarm.nodes() if n.leader]
    assert manager.hostname and manager.role == "manager"
    assert manager.reachability == "reachable"
    assert manager.manager_address.endswith(":2377")
    assert swarm.advertise_address() == manager.address
    network = resources.create_network("mtu", options={MTU_OPTION: "1400"})
    overlays = {o.name: o for o in swarm.overlay_networks()}
    ours = overlays[str(network.name)]
    assert (ours.mtu_option, ours.mtu, ours.ingress) == (1400, 1350, False)
    assert any(o.ingress and o.mtu_option is None and o.mtu == 1450 for o in overlays.values())


def test_watch_reads_many_services_and_their_tasks_in_two_requests(
    swarm: SwarmClient, resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    idle = docker.types.ServiceMode("replicated", replicas=0)
    services = [resources.create_service("localhost/none:0", f"w{i}", mode=idle) for i in range(3)]
    ids = {str(s.id) for s in services}
    gone = resources.create_service("localhost/none:0", "gone", mode=idle)
    gone_id = str(gone.id)
    gone.remove()
    sent = count_requests(swarm, monkeypatch)
    states, tasks = swarm.watch(ids | {gone_id})
    assert len(sent) == 2
    assert set(states) == set(tasks) == ids  # the removed one is simply not there
    assert {s.name for s in states.values()} == {str(s.name) for s in services}
    assert all(t == () for t in tasks.values())  # replicas 0: no task


# -- labelled configs changed with a version check (the run lease) -------------------------
def test_config_names_are_unique_and_label_updates_check_the_version(
    swarm: SwarmClient, resources: Resources
) -> None:
    name = resources.name("versioned")
    assert swarm.read_config(name) is None
    created = swarm.create_config(name, b"x", {"a": "1"})
    resources.configs.append(created.id)
    assert created.name == name and created.label("a") == "1"
    with pytest.raises(WriteConflict):
        swarm.create_config(name, b"y", {"a": "2"})

    swarm.relabel_config(created, {"a": "3"})
    now = swarm.read_config(name)
    assert now is not None and now.label("a") == "3" and now.version > created.version
    with pytest.raises(WriteConflict) as info:  # `created` is an old version now
        swarm.relabel_config(created, {"a": "4"})
    assert "out of sequence" in str(info.value)
    after = swarm.read_config(name)
    assert after is not None and after.label("a") == "3"


def test_relabelling_a_removed_config_is_a_conflict(
    swarm: SwarmClient, resources: Resources
) -> None:
    config = resources.create_config("gone", b"x")
    found = swarm.read_config(config.name)
    assert found is not None
    config.remove()
    with pytest.raises(WriteConflict):
        swarm.relabel_config(found, {"a": "1"})


def test_the_snapshot_leaves_out_configs_labelled_as_a_lease(
    swarm: SwarmClient, resources: Resources
) -> None:
    lease = swarm.create_config(resources.name("lease"), b"x", {LABEL_LEASE: "held"})
    resources.configs.append(lease.id)
    plain = resources.create_config("plain", b"x")
    names = {o.name for o in swarm.snapshot().objects}
    assert plain.name in names
    assert lease.name not in names
