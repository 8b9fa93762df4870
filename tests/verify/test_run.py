"""`run_verify` with a fake swarm and a fake prober: groups, counts, exit 3, state."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from phoenix_certbot.errors import DockerUnavailable, OperationFailed
from phoenix_certbot.manifest.model import ObjectKind, Source
from phoenix_certbot.naming import versioned_name
from phoenix_certbot.net.probe import ProbeResult
from phoenix_certbot.swarm.model import (
    LABEL_MANAGED,
    LABEL_SHA256,
    DeployedObject,
    MountRef,
    NodeInfo,
    ServiceState,
    SwarmSnapshot,
    TaskState,
)
from phoenix_certbot.verify import views
from phoenix_certbot.verify.live import SwarmReader
from phoenix_certbot.verify.model import LIVE_GROUPS, Group
from phoenix_certbot.verify.run import VerifyOptions, run_verify
from tests.support import pki
from tests.verify import builders as b

SERVICE = "p_portainer"
URL = "https://127.0.0.1:9443/api/system/status"
BODY = b'{"Version": "2.19.4"}'
OLD = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)


class FakeSwarm:
    def __init__(
        self, snapshot: SwarmSnapshot, tasks: Sequence[TaskState], nodes: Sequence[NodeInfo]
    ) -> None:
        self._snapshot = snapshot
        self._tasks = tuple(tasks)
        self._nodes = tuple(nodes)
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
    node = NodeInfo("node1", address, "manager", "active", "ready")
    return FakeSwarm(SwarmSnapshot((service,), objects), [task], [node])


def test_everything_healthy(setup: tuple[Path, pki.Issued, dict[str, str]]) -> None:
    manifest, leaf, names = setup
    swarm, prober = _healthy_swarm(names), Prober(leaf)
    report = run_verify(
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

    report = run_verify(
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
    report = run_verify(
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
    report = run_verify(
        VerifyOptions(manifest_path=str(manifest), timeout_s=1),
        connect=lambda _t: swarm,
        prober=Prober(leaf),
    )
    assert [(f.id, f.severity.value) for f in report.findings] == [
        ("live.node-address-unknown", "warning")
    ]
    assert report.exit_code == 0


def test_no_service_in_the_manifest_needs_no_docker(tmp_path: Path) -> None:
    leaf, live = b.lineage(tmp_path)
    manifest = b.write_manifest(
        tmp_path / "m.json", [b.entry("portainer", live, verify=[{"url": URL}])], tmp_path / "st"
    )

    def refuse(_timeout: float) -> SwarmReader:
        raise AssertionError("Docker is not needed")

    report = run_verify(
        VerifyOptions(manifest_path=str(manifest), timeout_s=1), connect=refuse, prober=Prober(leaf)
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
    report = run_verify(
        VerifyOptions(manifest_path=str(manifest), timeout_s=1),
        connect=lambda _t: _healthy_swarm(names),
        prober=Prober(leaf),
    )
    assert report.exit_code == 0


def test_bad_manifest_is_exit_2_and_skips_the_rest(tmp_path: Path) -> None:
    bad = tmp_path / "m.json"
    bad.write_text('{"version": 2, "certificates": [{"name": "x"}]}')
    report = run_verify(VerifyOptions(manifest_path=str(bad)))
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
    report = run_verify(
        VerifyOptions(manifest_path=str(manifest), timeout_s=1),
        connect=lambda _t: broken,
        prober=Prober(leaf),
    )
    assert [f.id for f in report.findings] == ["live.docker-error"]
    assert report.findings[0].service == SERVICE
    assert report.exit_code == 1
