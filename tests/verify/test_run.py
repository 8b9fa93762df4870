"""`run_verify` with a fake swarm and a fake prober: groups, counts, exit 3, state."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from phoenix_certbot.errors import DockerUnavailable, OperationFailed
from phoenix_certbot.manifest.model import ObjectKind, Source
from phoenix_certbot.naming import versioned_name
from phoenix_certbot.net.probe import ProbeResult
from phoenix_certbot.readiness.model import SwarmView
from phoenix_certbot.readiness.observe import Budget, SwarmViewReader, observe_swarm
from phoenix_certbot.swarm.model import (
    LABEL_MANAGED,
    LABEL_SHA256,
    DeployedObject,
    MountRef,
    NodeInfo,
    OverlayNetwork,
    ServiceState,
    SwarmSnapshot,
    TaskState,
)
from phoenix_certbot.verify import views
from phoenix_certbot.verify.live import SwarmReader
from phoenix_certbot.verify.model import LIVE_GROUPS, Group, VerifyReport
from phoenix_certbot.verify.run import VerifyOptions, run_verify
from tests.support import pki
from tests.verify import builders as b

SERVICE = "p_portainer"
URL = "https://127.0.0.1:9443/api/system/status"
BODY = b'{"Version": "2.19.4"}'
OLD = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)


class FakeSwarm:
    def __init__(
        self,
        snapshot: SwarmSnapshot,
        tasks: Sequence[TaskState],
        nodes: Sequence[NodeInfo],
        overlays: Sequence[OverlayNetwork] = (),
    ) -> None:
        self._snapshot = snapshot
        self._tasks = tuple(tasks)
        self._nodes = tuple(nodes)
        self._overlays = tuple(overlays)
        self.calls: list[str] = []

    def snapshot(self) -> SwarmSnapshot:
        self.calls.append("snapshot")
        return self._snapshot

    def tasks(self, service_id: str) -> tuple[TaskState, ...]:
        self.calls.append(f"tasks {service_id}")
        return self._tasks

    def nodes(self) -> tuple[NodeInfo, ...]:
        self.calls.append("nodes")
        return self._nodes

    def overlay_networks(self) -> tuple[OverlayNetwork, ...]:
        return self._overlays

    def advertise_address(self) -> str:
        return self._nodes[0].address if self._nodes else ""


def _swarm_view(reader: SwarmViewReader, budget: Budget) -> SwarmView:
    """The real swarm view, with its ports and interface answered here, not by the network:
    every port opens, except on addresses in REFUSING; the interface has MTU 1500."""
    return observe_swarm(
        reader,
        budget,
        connect=lambda host, _port, _t: "refused" if host in REFUSING else None,
        interface_of=lambda _address: ("eth0", 1500),
    )


REFUSING = {"10.0.0.112"}
VIEWS = views.Observers(swarm=_swarm_view)


def verify(options: VerifyOptions, **kwargs: Any) -> VerifyReport:
    return run_verify(options, observers=VIEWS, **kwargs)


class Prober:
    """Answers every URL with `leaf`; records the URLs asked."""

    def __init__(self, leaf: pki.Issued, status: int = 200) -> None:
        self.leaf = leaf
        self.status = status
        self.urls: list[str] = []

    def __call__(
        self, url: str, sni: str | None, expected: str | None, timeout: float
    ) -> tuple[ProbeResult, int]:
        self.urls.append(url)
        return ProbeResult(url, sni or "", b.der(self.leaf), self.status, BODY), 1


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, pki.Issued, dict[str, str]]:
    """A manifest with one certificate bound to SERVICE and verified at URL."""
    leaf, live = b.lineage(tmp_path)
    state = tmp_path / "state"
    state.mkdir()
    manifest = b.write_manifest(
        tmp_path / "manifest.json",
        [
            b.entry(
                "portainer",
                live,
                services=[{"service": SERVICE, "secrets": b.portainer_secrets("p.cert", "p.key")}],
                verify=[{"url": URL, "server_name": "portainer.test"}],
            )
        ],
        state,
    )
    material = b.material_of(b.load(manifest))
    names = {
        "cert": versioned_name("p.cert", material.payload_sha256(Source.FULLCHAIN)),
        "cert_sha": material.payload_sha256(Source.FULLCHAIN),
        "key": versioned_name("p.key", material.payload_sha256(Source.PRIVKEY)),
        "key_sha": material.payload_sha256(Source.PRIVKEY),
    }
    return manifest, leaf, names


def _healthy_swarm(names: dict[str, str], address: str = "127.0.0.1") -> FakeSwarm:
    mounts = (
        MountRef(ObjectKind.SECRET, "c1", names["cert"], "portainer.sslcert"),
        MountRef(ObjectKind.SECRET, "k1", names["key"], "portainer.sslkey", mode=0o400),
    )
    service = ServiceState("svc", SERVICE, 7, mounts, replicas=1, published_host_ports=(9443, 8000))
    objects = tuple(
        DeployedObject(
            ObjectKind.SECRET,
            ident,
            names[kind],
            OLD,
            ((LABEL_MANAGED, "true"), (LABEL_SHA256, names[f"{kind}_sha"])),
        )
        for ident, kind in (("c1", "cert"), ("k1", "key"))
    )
    task = TaskState("t1", "svc", "node1", "running", "running", OLD, mounts, 0)
    node = NodeInfo("node1", address, "manager", "active", "ready", reachability="reachable")
    return FakeSwarm(SwarmSnapshot((service,), objects), [task], [node])


def test_everything_healthy(setup: tuple[Path, pki.Issued, dict[str, str]]) -> None:
    manifest, leaf, names = setup
    swarm, prober = _healthy_swarm(names), Prober(leaf)
    report = verify(
        VerifyOptions(manifest_path=str(manifest), timeout_s=1),
        connect=lambda _timeout: swarm,
        prober=prober,
    )
    assert report.findings == ()
    assert report.exit_code == 0
    checked = report.checked
    assert (checked.services, checked.urls, checked.nodes) == (1, 1, 1)
    assert checked.skipped == {
        Group.COMPOSE: "no --compose file given",
        Group.PORTAINER: views.NO_PORTAINER,
    }
    assert checked.swarm_nodes == 1
    # The node check goes to the node's address, on the verified port only (not 8000).
    assert sorted(prober.urls) == [URL, URL]
    state = json.loads((manifest.parent / "state" / "state.json").read_text())
    verified = state["certs"]["portainer"]
    assert verified["last_verify"]["result"] == "ok"
    assert verified["last_verify"]["urls"] == {URL: True}
    assert verified["verified_leaf"] == leaf.sha256


def test_offline_never_connects(setup: tuple[Path, pki.Issued, dict[str, str]]) -> None:
    manifest, _, _ = setup

    def refuse(_timeout: float) -> SwarmReader:
        raise AssertionError("connected although offline")

    report = verify(
        VerifyOptions(manifest_path=str(manifest), offline=True),
        connect=refuse,
        prober=refuse,  # type: ignore[arg-type]
    )
    assert report.exit_code == 0
    assert set(report.checked.skipped) == {Group.COMPOSE, *LIVE_GROUPS}
    assert report.checked.certificates == 1


def test_docker_unreachable_is_exit_3_with_file_findings_and_url_checks(
    tmp_path: Path, setup: tuple[Path, pki.Issued, dict[str, str]]
) -> None:
    manifest, leaf, _ = setup
    stack = tmp_path / "stack.yml"
    stack.write_text(
        "services:\n  portainer:\n    image: x\n    deploy:\n      ports: ['9443:9443']\n"
    )

    def unreachable(_timeout: float) -> SwarmReader:
        raise DockerUnavailable("cannot reach Docker: connection refused")

    prober = Prober(leaf, status=500)
    report = verify(
        VerifyOptions(manifest_path=str(manifest), compose_files=(str(stack),), timeout_s=1),
        connect=unreachable,
        prober=prober,
    )
    ids = [f.id for f in report.findings]
    assert "compose.ports-under-deploy" in ids
    assert "live.docker-unreachable" in ids
    assert "live.http-status" in ids  # URLs need no Docker: still probed
    assert report.exit_code == 3
    assert report.checked.skipped[Group.SERVICES] == "Docker unreachable"
    assert report.checked.urls == 1


def test_node_without_address(setup: tuple[Path, pki.Issued, dict[str, str]]) -> None:
    manifest, leaf, names = setup
    swarm = _healthy_swarm(names, address="0.0.0.0")  # noqa: S104
    report = verify(
        VerifyOptions(manifest_path=str(manifest), timeout_s=1),
        connect=lambda _t: swarm,
        prober=Prober(leaf),
    )
    assert [(f.id, f.severity.value) for f in report.findings] == [
        ("live.node-address-unknown", "warning")
    ]
    assert report.exit_code == 0


def test_no_service_and_no_swarm_checks_need_no_docker(tmp_path: Path) -> None:
    leaf, live = b.lineage(tmp_path)
    manifest = b.write_manifest(
        tmp_path / "m.json", [b.entry("portainer", live, verify=[{"url": URL}])], tmp_path / "st"
    )

    def refuse(_timeout: float) -> SwarmReader:
        raise AssertionError("Docker is not needed")

    report = verify(
        VerifyOptions(manifest_path=str(manifest), timeout_s=1, swarm_checks=False),
        connect=refuse,
        prober=Prober(leaf),
    )
    assert report.exit_code == 0, report.findings
    assert report.checked.skipped[Group.SERVICES] == "no service in the manifest"
    # The state directory does not exist: nothing recorded, nothing created, no failure.
    assert not (tmp_path / "st").exists()


def test_unreadable_state_dir_does_not_fail_verify(
    setup: tuple[Path, pki.Issued, dict[str, str]],
) -> None:
    manifest, leaf, names = setup
    state = manifest.parent / "state"
    (state / "state.json").write_text("{ not json")
    report = verify(
        VerifyOptions(manifest_path=str(manifest), timeout_s=1),
        connect=lambda _t: _healthy_swarm(names),
        prober=Prober(leaf),
    )
    assert report.exit_code == 0


def test_bad_manifest_is_exit_2_and_skips_the_rest(tmp_path: Path) -> None:
    bad = tmp_path / "m.json"
    bad.write_text('{"version": 2, "certificates": [{"name": "x"}]}')
    report = verify(VerifyOptions(manifest_path=str(bad), swarm_checks=False))
    assert [f.id for f in report.findings] == ["manifest.invalid"]
    assert report.exit_code == 2
    assert set(report.checked.skipped) == set(Group)


class BrokenSwarm(FakeSwarm):
    def tasks(self, service_id: str) -> tuple[TaskState, ...]:
        raise OperationFailed(f"reading tasks of {service_id}: 404 service not found")


def test_docker_api_error_is_a_live_finding(
    setup: tuple[Path, pki.Issued, dict[str, str]],
) -> None:
    manifest, leaf, names = setup
    healthy = _healthy_swarm(names)
    broken = BrokenSwarm(healthy.snapshot(), [], [])
    report = verify(
        VerifyOptions(manifest_path=str(manifest), timeout_s=1),
        connect=lambda _t: broken,
        prober=Prober(leaf),
    )
    assert [f.id for f in report.findings] == ["live.docker-error"]
    assert report.findings[0].service == SERVICE
    assert report.exit_code == 1


def test_the_swarm_view_names_the_down_node_and_its_closed_port(
    setup: tuple[Path, pki.Issued, dict[str, str]],
) -> None:
    manifest, leaf, names = setup
    healthy = _healthy_swarm(names)
    worker = NodeInfo("node2", "10.0.0.112", "worker", "active", "down", hostname="node-1002")
    swarm = FakeSwarm(
        healthy.snapshot(),
        healthy.tasks("svc"),
        [*healthy.nodes(), worker],
        [OverlayNetwork("n1", "agent_network", mtu_option=1550)],
    )
    report = verify(
        VerifyOptions(manifest_path=str(manifest), timeout_s=1),
        connect=lambda _t: swarm,
        prober=Prober(leaf),
    )
    assert [(f.id, f.severity.value) for f in report.findings] == [
        ("swarm.node-down", "error"),
        ("swarm.port-unreachable", "error"),
        ("swarm.mtu", "warning"),
    ]
    assert "node-1002 (node2)" in report.findings[0].message
    assert "10.0.0.112:7946" in report.findings[1].message
    assert report.exit_code == 1
    assert report.checked.swarm_nodes == 2


def test_without_services_an_unreachable_docker_skips_only_the_swarm_view(tmp_path: Path) -> None:
    leaf, live = b.lineage(tmp_path)
    entry = b.entry("portainer", live, verify=[{"url": URL}])
    manifest = b.write_manifest(tmp_path / "m.json", [entry], tmp_path / "st")

    def unreachable(_timeout: float) -> SwarmReader:
        raise DockerUnavailable("cannot reach Docker at /var/run/docker.sock: refused")

    report = verify(
        VerifyOptions(manifest_path=str(manifest), timeout_s=1),
        connect=unreachable,
        prober=Prober(leaf),
    )
    assert report.exit_code == 0, report.findings
    assert report.checked.skipped[Group.SWARM] == (
        "Docker unreachable (cannot reach Docker at /var/run/docker.sock: refused)"
    )


def test_no_swarm_checks(setup: tuple[Path, pki.Issued, dict[str, str]]) -> None:
    manifest, leaf, names = setup
    down = NodeInfo("node1", "127.0.0.1", "manager", "active", "down")
    swarm = FakeSwarm(_healthy_swarm(names).snapshot(), [], [down])
    options = VerifyOptions(manifest_path=str(manifest), timeout_s=1, swarm_checks=False)
    report = verify(options, connect=lambda _t: swarm, prober=Prober(leaf))
    assert not [f for f in report.findings if f.id.startswith("swarm.")]
    assert report.checked.skipped[Group.SWARM] == "--no-swarm-checks"
