"""`phoenix-cert verify` against the real swarm: a stand-in Portainer in each state.

Every service publishes its HTTPS port in host mode on a free port (the routing mesh does
not work on these machines) and is created through the `resources` fixture.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
from click.testing import CliRunner
from docker.models.secrets import Secret
from docker.models.services import Service
from docker.types import EndpointSpec, RestartPolicy, SecretReference, UpdateConfig

from phoenix_certbot.cli.main import cli
from phoenix_certbot.naming import versioned_name
from phoenix_certbot.swarm import model as sm
from tests.harness.ports import free_port as another_free_port
from tests.harness.resources import Resources
from tests.harness.swarm import host_port, service_tasks
from tests.support import pki
from tests.verify import builders as b

pytestmark = pytest.mark.docker

STANDIN_PORT = 9443
TIMEOUT_S = 4.0  # --timeout of the failing cases: each waits for it, so keep it short
HEALTHY_TIMEOUT_S = 15.0
SLACK_S = 8.0  # Docker calls and process overhead on top of --timeout


@dataclass(frozen=True)
class Pair:
    """The two secrets a stand-in mounts: a fullchain and its key."""

    cert: Secret
    key: Secret


class Lab:
    """One test's certificate on disk, manifest, secrets and stand-in service."""

    def __init__(self, tmp_path: Path, resources: Resources, image: str, port: int) -> None:
        self.tmp = tmp_path
        self.resources = resources
        self.image = image
        self.port = port
        self.ca = pki.make_ca()
        self.service_name = resources.name("portainer")
        self.cert_base = resources.name("sslcert")
        self.key_base = resources.name("sslkey")
        self.url = f"https://127.0.0.1:{port}/api/system/status"
        self.disk = self.write_disk(pki.issue(list(b.SANS), self.ca))

    def write_disk(self, leaf: pki.Issued, version: int = 1) -> pki.Issued:
        b.lineage(self.tmp, leaf=leaf, ca=self.ca, version=version)
        return leaf

    @property
    def live(self) -> Path:
        return self.tmp / "letsencrypt" / "live" / "portainer"

    def manifest(self, server_name: str = "portainer.test") -> Path:
        entry = b.entry(
            "portainer",
            self.live,
            services=[
                {
                    "service": self.service_name,
                    "secrets": b.portainer_secrets(self.cert_base, self.key_base),
                }
            ],
            verify=[{"url": self.url, "server_name": server_name}],
        )
        (self.tmp / "state").mkdir(exist_ok=True)
        return b.write_manifest(self.tmp / "manifest.json", [entry], self.tmp / "state")

    def fullchain(self, leaf: pki.Issued) -> bytes:
        # The payload the rotation would ship: canonical PEM, leaf then the CA.
        return leaf.cert_pem + self.ca.cert_pem

    def managed(self, leaf: pki.Issued) -> Pair:
        """The versions `phoenix-cert rotate` would create for `leaf`, labels and all."""
        return Pair(
            self._managed(self.cert_base, "fullchain", self.fullchain(leaf), leaf),
            self._managed(self.key_base, "privkey", leaf.key_pem, leaf),
        )

    def _managed(self, base: str, source: str, data: bytes, leaf: pki.Issued) -> Secret:
        sha = hashlib.sha256(data).hexdigest()
        labels = {
            **self.resources.labels,
            sm.LABEL_MANAGED: "true",
            sm.LABEL_CERT: "portainer",
            sm.LABEL_BASE: base,
            sm.LABEL_SOURCE: source,
            sm.LABEL_SHA256: sha,
            sm.LABEL_LEAF_SHA256: leaf.sha256,
        }
        client: docker.DockerClient = self.resources.client
        secret = client.secrets.create(name=versioned_name(base, sha), data=data, labels=labels)
        secret.reload()
        return self.resources.track(secret)

    def unmanaged(self, leaf: pki.Issued, suffix: str) -> Pair:
        """Secrets made by hand (a stack's bootstrap secrets): no phoenix-cert labels."""
        return Pair(
            self.resources.create_secret(f"{suffix}.cert", self.fullchain(leaf)),
            self.resources.create_secret(f"{suffix}.key", leaf.key_pem),
        )

    def deploy(
        self,
        pair: Pair,
        *,
        extra: Pair | None = None,
        publish: bool = True,
        env: Sequence[str] = (),
    ) -> Service:
        """The stand-in mounting `pair` where the manifest says; with `extra`, it is told
        (--sslcert/--sslkey) to serve that other pair instead."""
        refs = [
            SecretReference(str(pair.cert.id), str(pair.cert.name), filename="portainer.sslcert"),
            SecretReference(
                str(pair.key.id), str(pair.key.name), filename="portainer.sslkey", mode=0o400
            ),
        ]
        args: list[str] = []
        if extra is not None:
            refs += [
                SecretReference(str(extra.cert.id), str(extra.cert.name), filename="other.cert"),
                SecretReference(str(extra.key.id), str(extra.key.name), filename="other.key"),
            ]
            args = ["--sslcert", "/run/secrets/other.cert", "--sslkey", "/run/secrets/other.key"]
        ports = [host_port(self.port, STANDIN_PORT)] if publish else []
        return self.resources.create_service(
            self.image,
            self.service_name.removeprefix(self.resources.prefix),
            args=args,
            init=True,
            env=list(env),
            secrets=refs,
            endpoint_spec=EndpointSpec(ports=ports),
            restart_policy=RestartPolicy(condition="none"),
            update_config=UpdateConfig(monitor=100_000_000),  # 0.1 s, in ns
            stop_grace_period=1_000_000_000,
        )


def wait_task(service: Service, states: set[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    seen = "no task"
    for _attempt in range(int(timeout / 0.2) + 1):
        tasks = service_tasks(service)
        if tasks:
            seen = tasks[0]["Status"]["State"]
            if seen in states:
                if seen == "running":
                    # Past the services' 0.1 s update monitor period: before it, verify
                    # rightly calls the task "converging" (a warning).
                    time.sleep(0.3)
                return
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    pytest.fail(f"task did not reach {sorted(states)} within {timeout} s (last: {seen})")


@dataclass(frozen=True)
class Outcome:
    code: int
    elapsed: float
    document: dict[str, Any]

    def errors(self) -> set[str]:
        return {f["id"] for f in self.document["findings"] if f["severity"] == "error"}

    def ids(self) -> list[str]:
        return [f["id"] for f in self.document["findings"]]


def verify(manifest: Path, timeout: float = TIMEOUT_S) -> Outcome:
    args = ["verify", "--json", "--timeout", str(timeout), "--manifest", str(manifest)]
    started = time.monotonic()
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    elapsed = time.monotonic() - started
    assert elapsed <= timeout + SLACK_S, f"verify took {elapsed:.1f} s"
    return Outcome(result.exit_code, elapsed, json.loads(result.stdout))


@pytest.fixture
def lab(tmp_path: Path, resources: Resources, standin_image: str, free_port: int) -> Lab:
    return Lab(tmp_path, resources, standin_image, free_port)


def test_healthy_standin_passes_and_is_recorded(lab: Lab) -> None:
    wait_task(lab.deploy(lab.managed(lab.disk)), {"running"})
    outcome = verify(lab.manifest(), HEALTHY_TIMEOUT_S)
    assert outcome.document["findings"] == []
    assert outcome.code == 0
    assert outcome.document["ok"] is True
    checked = outcome.document["checked"]
    assert (checked["services"], checked["urls"], checked["nodes"]) == (1, 1, 1)
    state = json.loads((lab.tmp / "state" / "state.json").read_text())
    last = state["certs"]["portainer"]["last_verify"]
    assert (last["result"], last["urls"]) == ("ok", {lab.url: True})


def test_unpublished_port_is_a_connect_failure(lab: Lab) -> None:
    wait_task(lab.deploy(lab.managed(lab.disk), publish=False), {"running"})
    outcome = verify(lab.manifest())
    assert outcome.errors() == {"live.connect"}
    assert outcome.code == 1


def test_another_certificate_served(lab: Lab) -> None:
    other = pki.issue(list(b.SANS), lab.ca)
    service = lab.deploy(lab.managed(lab.disk), extra=lab.unmanaged(other, "other"))
    wait_task(service, {"running"})
    outcome = verify(lab.manifest())
    assert outcome.errors() == {"live.wrong-cert"}
    # Once for the URL and once for the node's host-mode port.
    assert outcome.ids().count("live.wrong-cert") == 2
    assert outcome.code == 1


def test_expired_certificate_served(lab: Lab) -> None:
    now = pki.utcnow()
    expired = pki.issue(
        list(b.SANS), lab.ca, not_before=now - b.days(100), not_after=now - b.days(10)
    )
    service = lab.deploy(lab.managed(lab.disk), extra=lab.unmanaged(expired, "old"))
    wait_task(service, {"running"})
    outcome = verify(lab.manifest())
    assert outcome.errors() == {"live.wrong-cert", "live.expired"}
    assert outcome.code == 1


def test_san_does_not_cover_the_server_name(lab: Lab) -> None:
    wait_task(lab.deploy(lab.managed(lab.disk)), {"running"})
    outcome = verify(lab.manifest(server_name="elsewhere.test"))
    assert outcome.errors() == {"live.san"}
    assert outcome.code == 1


def test_service_failing_at_start_is_not_converged(lab: Lab) -> None:
    service = lab.deploy(lab.managed(lab.disk), env=["STANDIN_FAIL_AT_START=1"])
    wait_task(service, {"failed", "rejected", "complete", "shutdown"})
    outcome = verify(lab.manifest())
    assert outcome.errors() == {"live.not-converged", "live.connect"}
    assert outcome.code == 1


def test_drift_behind_after_a_renewal_not_rolled_out(lab: Lab) -> None:
    old = lab.disk
    wait_task(lab.deploy(lab.managed(old)), {"running"})
    lab.write_disk(pki.issue(list(b.SANS), lab.ca), version=2)  # certbot renewed
    outcome = verify(lab.manifest())
    assert outcome.errors() == {"live.drift-behind", "live.wrong-cert"}
    assert outcome.ids().count("live.drift-behind") == 2  # the certificate and the key
    assert outcome.code == 1


def test_drift_reverted_by_a_stack_redeploy(lab: Lab) -> None:
    old = lab.disk
    bootstrap = lab.unmanaged(old, "bootstrap")
    new = lab.write_disk(pki.issue(list(b.SANS), lab.ca), version=2)
    lab.managed(new)  # rotated once ...
    wait_task(lab.deploy(bootstrap), {"running"})  # ... then the stack put the bootstrap back
    outcome = verify(lab.manifest())
    assert outcome.errors() == {"live.drift-reverted", "live.wrong-cert"}
    drift = [f for f in outcome.document["findings"] if f["id"] == "live.drift-reverted"]
    assert {f["service"] for f in drift} == {lab.service_name}
    assert outcome.code == 1


def test_missing_service(lab: Lab) -> None:
    outcome = verify(lab.manifest())
    assert outcome.errors() == {"live.service-missing", "live.connect"}
    assert outcome.code == 1


def test_docker_unreachable_is_exit_3(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{another_free_port()}")
    outcome = verify(lab.manifest(), timeout=1.0)
    assert "live.docker-unreachable" in outcome.errors()
    assert outcome.code == 3
