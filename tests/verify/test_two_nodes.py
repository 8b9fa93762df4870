"""`phoenix-cert verify`'s per-node check across two real swarm nodes.

The cluster (tests/harness/cluster, fixture two_node_swarm) is a manager and a worker, each
a dockerd in its own network namespace, at its slot's addresses (172.16.S.2 and .3). A
stand-in Portainer runs in `mode: global` (one task per node) and publishes 9443 in host
mode. verify must hand-shake with the published port on both nodes, by the addresses the
swarm reports; when only the worker's port is blocked (refused, then silently dropped, by a
rule in the worker's own DOCKER-USER chain), it must say so for the worker alone, within
--timeout, although the verify URL (which points at the manager) still works.
"""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from docker.models.secrets import Secret
from docker.models.services import Service
from docker.types import EndpointSpec, RestartPolicy, SecretReference, ServiceMode, UpdateConfig

from phoenix_certbot.cli.main import cli
from phoenix_certbot.naming import versioned_name
from phoenix_certbot.swarm import model as sm
from phoenix_certbot.verify.run import VerifyOptions, run_verify
from tests.harness.cluster import ClusterLab
from tests.harness.resources import Resources
from tests.harness.swarm import host_port, service_tasks
from tests.support import pki
from tests.verify import builders as b

pytestmark = pytest.mark.docker

STANDIN_PORT = 9443
PUBLISHED_PORT = 19443  # inside the nodes' namespaces: nothing else listens there
SERVER_NAME = "portainer.test"
SANS = (SERVER_NAME,)
CERT = "portainer"
TIMEOUT_S = 5.0  # verify --timeout
SLACK_S = 8.0  # Docker calls and process overhead on top of --timeout
TASKS_S = 60.0
SERVE_S = 20.0


@dataclass(frozen=True)
class Outcome:
    code: int
    elapsed: float
    document: dict[str, Any]

    @property
    def findings(self) -> list[dict[str, Any]]:
        return list(self.document["findings"])


def verify(manifest: Path, docker_host: str) -> Outcome:
    """`phoenix-cert verify --json --manifest M --timeout 5`, with DOCKER_HOST set."""
    args = ["verify", "--json", "--timeout", str(TIMEOUT_S), "--manifest", str(manifest)]
    started = time.monotonic()
    result = CliRunner().invoke(cli, args, env={"DOCKER_HOST": docker_host}, catch_exceptions=False)
    elapsed = time.monotonic() - started
    assert elapsed <= TIMEOUT_S + SLACK_S, f"verify took {elapsed:.1f} s"
    return Outcome(result.exit_code, elapsed, json.loads(result.stdout))


def progress(manifest: Path, docker_host: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """verify's progress lines (what it prints on a terminal): they name each probed node."""
    lines: list[str] = []
    with monkeypatch.context() as patch:
        patch.setenv("DOCKER_HOST", docker_host)
        run_verify(
            VerifyOptions(manifest_path=str(manifest), timeout_s=TIMEOUT_S, record_state=False),
            report=lines.append,
        )
    return lines


def served_leaf(address: str, port: int, timeout: float = 2.0) -> str:
    """SHA-256 of the leaf served at address:port, or the error (our own probe, by hand)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # which certificate, not whether it is trusted
    try:
        with (
            socket.create_connection((address, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=SERVER_NAME) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except OSError as exc:
        return f"error: {exc}"
    return hashlib.sha256(der).hexdigest() if der else "error: no certificate"


def wait_served(addresses: dict[str, str], port: int, want: dict[str, str]) -> None:
    """Until served_leaf(address) matches `want[address]` (a sha256, or an error prefix)."""
    deadline = time.monotonic() + SERVE_S
    seen: dict[str, str] = {}
    for _attempt in range(int(SERVE_S / 0.25) + 1):
        seen = {a: served_leaf(a, port) for a in addresses}
        if all(seen[a].startswith(want[a]) for a in addresses):
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.25)
    pytest.fail(f"served leaves {seen}, wanted {want}")


class GlobalStandin:
    """The stand-in as a global service on the two-node cluster, with its manifest."""

    def __init__(self, cluster: ClusterLab, resources: Resources, tmp: Path) -> None:
        self.cluster = cluster
        self.resources = resources
        self.tmp = tmp
        self.ca = pki.make_ca()
        self.leaf = pki.issue(list(SANS), self.ca)
        self.lineage = pki.write_lineage(tmp / "letsencrypt", CERT, self.leaf, self.ca)
        self.cert_base = resources.name("sslcert")
        self.key_base = resources.name("sslkey")
        self.url = f"https://{cluster.manager.address}:{PUBLISHED_PORT}/api/system/status"

    def manifest(self) -> Path:
        entry = b.entry(
            CERT,
            self.lineage.live,
            sans=SANS,
            services=[
                {
                    "service": self.resources.name("portainer"),
                    "secrets": b.portainer_secrets(self.cert_base, self.key_base),
                }
            ],
            verify=[{"url": self.url, "server_name": SERVER_NAME}],
        )
        state = self.tmp / "state"
        state.mkdir(mode=0o700, exist_ok=True)
        path = b.write_manifest(self.tmp / "manifest.json", [entry], state)
        path.chmod(0o600)
        return path

    def _secret(self, base: str, source: str, data: bytes) -> Secret:
        """The version `phoenix-cert rotate` would have created, name and labels."""
        sha = hashlib.sha256(data).hexdigest()
        labels = {
            **self.resources.labels,
            sm.LABEL_MANAGED: "true",
            sm.LABEL_CERT: CERT,
            sm.LABEL_BASE: base,
            sm.LABEL_SOURCE: source,
            sm.LABEL_SHA256: sha,
            sm.LABEL_LEAF_SHA256: self.leaf.sha256,
        }
        secret = self.resources.client.secrets.create(
            name=versioned_name(base, sha), data=data, labels=labels
        )
        secret.reload()
        return self.resources.track(secret)

    def deploy(self) -> Service:
        cert = self._secret(self.cert_base, "fullchain", self.lineage.fullchain.read_bytes())
        key = self._secret(self.key_base, "privkey", self.lineage.privkey.read_bytes())
        return self.resources.create_service(
            self.cluster.image,
            "portainer",
            mode=ServiceMode("global"),
            init=True,
            secrets=[
                SecretReference(str(cert.id), str(cert.name), filename="portainer.sslcert"),
                SecretReference(
                    str(key.id), str(key.name), filename="portainer.sslkey", mode=0o400
                ),
            ],
            endpoint_spec=EndpointSpec(ports=[host_port(PUBLISHED_PORT, STANDIN_PORT)]),
            restart_policy=RestartPolicy(condition="none"),
            update_config=UpdateConfig(monitor=100_000_000),  # 0.1 s, in ns
            stop_grace_period=1_000_000_000,
        )

    def wait_one_task_per_node(self, service: Service) -> None:
        want = {self.cluster.manager.node_id, self.cluster.worker.node_id}
        deadline = time.monotonic() + TASKS_S
        running: set[str] = set()
        for _attempt in range(int(TASKS_S / 0.2) + 1):
            running = {
                t["NodeID"]
                for t in service_tasks(service)
                if t["DesiredState"] == "running" and t["Status"]["State"] == "running"
            }
            if running == want:
                return
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        pytest.fail(f"tasks running on {sorted(running)}, wanted one on each of {sorted(want)}")


@pytest.fixture
def standin(two_node_swarm: ClusterLab, tmp_path: Path) -> Iterator[GlobalStandin]:
    resources = Resources(two_node_swarm.client())
    yield GlobalStandin(two_node_swarm, resources, tmp_path)
    problems = resources.cleanup()
    if problems:
        pytest.fail("could not remove test resources: " + "; ".join(problems), pytrace=False)


def test_swarm_reports_each_node_by_its_own_address(two_node_swarm: ClusterLab) -> None:
    """The premise of the per-node check: the swarm knows where each node is."""
    cluster = two_node_swarm
    assert cluster.node_addresses() == {
        cluster.manager.node_id: cluster.manager.address,
        cluster.worker.node_id: cluster.worker.address,
    }
    assert cluster.manager.address != cluster.worker.address


def test_verify_probes_every_node_and_names_the_unreachable_one(
    two_node_swarm: ClusterLab, standin: GlobalStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = two_node_swarm
    mgr, wkr = cluster.manager, cluster.worker
    addresses = {mgr.address: mgr.node_id, wkr.address: wkr.node_id}
    standin.wait_one_task_per_node(standin.deploy())
    # verify calls a task younger than the service's 0.1 s monitor period "converging"
    # (a warning): let both tasks get past it, so the healthy run has no finding at all.
    time.sleep(0.5)
    manifest = standin.manifest()
    assert manifest.stat().st_mode & 0o777 == 0o600
    # Both nodes serve the leaf on disk, as seen from here (the host, 172.16.S.1).
    wait_served(addresses, PUBLISHED_PORT, dict.fromkeys(addresses, standin.leaf.sha256))

    healthy = verify(manifest, mgr.host)
    assert healthy.findings == []
    assert healthy.code == 0
    checked = healthy.document["checked"]
    assert (checked["services"], checked["urls"], checked["nodes"]) == (1, 1, 2)
    # Which nodes were probed, and where: one handshake per node, at its swarm address.
    lines = progress(manifest, mgr.host, monkeypatch)
    node_lines = sorted(line for line in lines if line.startswith("node ") and ": " in line)
    assert node_lines == sorted(
        f"node {node_id[:12]} ({address}:{PUBLISHED_PORT}): ok"
        for address, node_id in addresses.items()
    )

    blocked: dict[str, Outcome] = {}
    # The worker's port refused (a TCP reset), then swallowed (as most firewalls do).
    for action, by_hand in (("REJECT", "error: [Errno 111]"), ("DROP", "error: timed out")):
        with cluster.port_blocked(wkr, PUBLISHED_PORT, action):
            # By hand first: the worker's port is blocked, the manager's still serves.
            want = {mgr.address: standin.leaf.sha256, wkr.address: by_hand}
            wait_served(addresses, PUBLISHED_PORT, want)
            outcome = blocked[action] = verify(manifest, mgr.host)
        assert outcome.code == 1, action
        assert [f["id"] for f in outcome.findings] == ["live.node-unreachable"], action
        finding = outcome.findings[0]
        assert f"node {wkr.node_id[:12]} ({wkr.address}:{PUBLISHED_PORT})" in finding["message"]
        assert mgr.address not in finding["message"]
        assert (finding["severity"], finding["service"], finding["certificate"]) == (
            "error",
            standin.resources.name("portainer"),
            CERT,
        )
        assert outcome.document["checked"]["nodes"] == 2
        assert outcome.elapsed <= TIMEOUT_S + SLACK_S, action

    # Unblocked again: both nodes answer, and verify is clean once more.
    wait_served(addresses, PUBLISHED_PORT, dict.fromkeys(addresses, standin.leaf.sha256))
    restored = verify(manifest, mgr.host)
    assert (restored.code, restored.findings) == (0, [])
    print(
        f"\nverify: healthy {healthy.elapsed:.2f} s, worker rejecting "
        f"{blocked['REJECT'].elapsed:.2f} s, worker dropping {blocked['DROP'].elapsed:.2f} s, "
        f"restored {restored.elapsed:.2f} s"
    )
    for action, outcome in blocked.items():
        print(f"  {action}: {outcome.findings[0]['message']}")
