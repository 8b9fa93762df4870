"""Shared setup of the rotation integration tests: stand-in services, manifests, probes.

A `Lab` deploys Portainer stand-ins as Swarm services that mount "bootstrap" secrets (made
by the test, without our labels) and publish 9443 in host mode on a free port; it writes
manifests that point at them and certbot-style lineages to rotate; and it reads back what
the daemon did (spec, tasks, events) and what the service serves, independently of the
tool under test.

Everything the tool creates is named after the test's `resources.prefix` (base names of
the manifest start with it), so `track_created()` registers exactly those objects with the
`resources` fixture, which removes them afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import docker
import docker.errors
import pytest
from click.testing import CliRunner, Result
from docker.types import EndpointSpec, RestartPolicy, SecretReference, UpdateConfig

from phoenix_certbot.cli.main import cli
from tests.harness.certbot_runner import Certbot
from tests.harness.ports import free_port
from tests.harness.resources import Resources
from tests.support import pki, tls

STANDIN_PORT = 9443
SAN = "portainer.example.test"
CERT_TARGET = "portainer.sslcert"
KEY_TARGET = "portainer.sslkey"
VENV_BIN = Path(sys.executable).parent
PHOENIX_CERT = VENV_BIN / "phoenix-cert"
SHARED_DOCKER_HOST = "unix:///var/run/docker.sock"
SECOND = 1_000_000_000  # Docker durations are nanoseconds
MANAGED_LABEL = "io.phoenix-certbot.managed"
BASE_LABEL = "io.phoenix-certbot.base"


def served_sha256(port: int, timeout: float = 15.0, address: str = "127.0.0.1") -> str:
    """SHA-256 of the DER leaf served on address:port with the lab's SNI name."""
    return tls.served_sha256(port, SAN, timeout, address)


def leaf_sha256_of(cert_pem: Path) -> str:
    """SHA-256 of the DER of the first certificate in a PEM file (certbot's cert.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    return x509.load_pem_x509_certificate(cert_pem.read_bytes()).fingerprint(hashes.SHA256()).hex()


@dataclass(frozen=True)
class Standin:
    """A stand-in service as deployed: its name, id, port and the manifest's base names."""

    name: str
    id: str
    port: int
    cert_base: str
    key_base: str
    address: str = "127.0.0.1"  # where the published port answers: a lab node's address

    @property
    def url(self) -> str:
        return f"https://{self.address}:{self.port}/api/system/status"


@dataclass(frozen=True)
class Lineage:
    """A certbot-style lineage made with the test PKI (no certbot): live/NAME -> archive."""

    config_dir: Path
    name: str
    ca: pki.Issued
    version: int
    leaf: pki.Issued

    @property
    def live(self) -> Path:
        return self.config_dir / "live" / self.name

    def renew(self, leaf: pki.Issued | None = None) -> Lineage:
        """Write the next version, as `certbot renew` would, and return it."""
        new = leaf or pki.issue([SAN], self.ca)
        pki.write_lineage(self.config_dir, self.name, new, self.ca, self.version + 1)
        return Lineage(self.config_dir, self.name, self.ca, self.version + 1, new)


class Lab:
    def __init__(
        self,
        client: docker.DockerClient,
        resources: Resources,
        image: str,
        root: Path,
        *,
        address: str = "127.0.0.1",
        docker_host: str = SHARED_DOCKER_HOST,
    ) -> None:
        """`client` talks to the engine at `docker_host`; `address` is where its host-mode
        ports answer (a lab node's address, for a daemon of a cluster lab)."""
        self.client = client
        self.address = address
        self.docker_host = docker_host
        self._events = EventStream(docker_host, resources.prefix)
        self.api: Any = client.api  # types-docker leaves these calls untyped
        self.resources = resources
        self.image = image
        self.root = root
        self.config_dir = root / "letsencrypt"
        self.live_dir = self.config_dir / "live"
        self.state_dir = root / "state"
        self.ca = pki.make_ca("phoenix rotation test CA")

    # -- certificates -----------------------------------------------------------------
    def lineage(self, name: str, leaf: pki.Issued | None = None) -> Lineage:
        leaf = leaf or pki.issue([SAN], self.ca)
        pki.write_lineage(self.config_dir, name, leaf, self.ca, 1)
        return Lineage(self.config_dir, name, self.ca, 1, leaf)

    # -- services ---------------------------------------------------------------------
    def deploy(
        self,
        suffix: str,
        leaf: pki.Issued | None = None,
        *,
        env: dict[str, str] | None = None,
        failure_action: Literal["pause", "continue", "rollback"] = "pause",
        restart_condition: Literal["none", "on-failure", "any"] = "any",
        wait: bool = True,
        args: Sequence[str] = (),
        mounts: Sequence[str] = (),
        constraints: Sequence[str] = (),
    ) -> Standin:
        """A running stand-in that serves `leaf` (a fresh bootstrap leaf by default).
        `args` and `mounts` (SOURCE:TARGET[:ro] binds) make it read its certificate from
        elsewhere (`--sslcert PATH`): it then serves whatever is there. `constraints`:
        placement constraints (a cluster lab's node, say)."""
        leaf = leaf or pki.issue([SAN], self.ca)
        cert = self.resources.create_secret(f"{suffix}-bootstrap-cert", leaf.cert_pem)
        key = self.resources.create_secret(f"{suffix}-bootstrap-key", leaf.key_pem)
        port = free_port()
        service = self.resources.create_service(
            self.image,
            suffix,
            init=True,
            args=list(args),
            mounts=list(mounts),
            constraints=list(constraints),
            env=[f"{k}={v}" for k, v in (env or {}).items()],
            secrets=[
                SecretReference(str(cert.id), cert.name, filename=CERT_TARGET),
                SecretReference(str(key.id), key.name, filename=KEY_TARGET, mode=0o400),
            ],
            endpoint_spec=EndpointSpec(ports=[_host_port(port, STANDIN_PORT)]),
            update_config=UpdateConfig(
                parallelism=1,
                delay=0,
                failure_action=failure_action,
                monitor=SECOND,
                order="stop-first",  # a host-mode port cannot be bound twice
            ),
            restart_policy=RestartPolicy(condition=restart_condition, delay=SECOND // 2),
            stop_grace_period=2 * SECOND,
        )
        standin = Standin(
            name=self.resources.name(suffix),
            id=str(service.id),
            port=port,
            cert_base=self.resources.name(f"{suffix}.sslcert"),
            key_base=self.resources.name(f"{suffix}.sslkey"),
            address=self.address,
        )
        if wait:
            self.wait_running(standin)
            assert served_sha256(standin.port, address=self.address) == leaf.sha256
        return standin

    def inspect(self, standin: Standin) -> dict[str, Any]:
        raw: dict[str, Any] = self.api.inspect_service(standin.id)
        return raw

    def version(self, standin: Standin) -> int:
        return int(self.inspect(standin)["Version"]["Index"])

    def service_versions(self) -> dict[str, int]:
        """Version index of every service of this test, by name."""
        return {
            s["Spec"]["Name"]: int(s["Version"]["Index"])
            for s in self.api.services(filters={"name": self.resources.prefix})
            if s["Spec"]["Name"].startswith(self.resources.prefix)
        }

    def mounted(self, standin: Standin, spec: str = "Spec") -> dict[str, str]:
        """target -> secret name in the service's current (or previous) spec."""
        raw = self.inspect(standin).get(spec) or {}
        secrets = raw.get("TaskTemplate", {}).get("ContainerSpec", {}).get("Secrets") or ()
        return {s["File"]["Name"]: s["SecretName"] for s in secrets}

    def tasks(self, standin: Standin) -> list[dict[str, Any]]:
        tasks: list[dict[str, Any]] = self.api.tasks(filters={"service": standin.id})
        return tasks

    def wait_running(self, standin: Standin, timeout: float = 40.0) -> None:
        deadline = time.monotonic() + timeout
        seen = "no task"
        for _attempt in range(int(timeout / 0.2) + 1):
            running = [
                t
                for t in self.tasks(standin)
                if t["DesiredState"] == "running" and t["Status"]["State"] == "running"
            ]
            if running:
                return
            seen = "; ".join(
                f"{t['Status']['State']} {t['Status'].get('Err', '')}" for t in self.tasks(standin)
            )
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        pytest.fail(f"{standin.name}: no running task within {timeout} s ({seen})")

    # -- objects the tool created -----------------------------------------------------
    def managed(self, base: str) -> list[dict[str, Any]]:
        """Managed versions of `base`, oldest first."""
        found = [
            s
            for s in self.api.secrets(filters={"label": f"{BASE_LABEL}={base}"})
            if (s["Spec"].get("Labels") or {}).get(MANAGED_LABEL) == "true"
        ]
        return sorted(found, key=lambda s: (s["CreatedAt"], s["Spec"]["Name"]))

    def secret_names(self) -> set[str]:
        """Names of every secret of this test (ours and the tool's)."""
        return {
            s["Spec"]["Name"]
            for s in self.api.secrets(filters={"name": self.resources.prefix})
            if s["Spec"]["Name"].startswith(self.resources.prefix)
        }

    def track_created(self) -> None:
        """Register with `resources` the secrets and configs the tool made for this test."""
        prefix = self.resources.prefix
        known = set(self.resources.secrets) | set(self.resources.configs)
        for secret in self.client.secrets.list(filters={"name": prefix}):
            if secret.name.startswith(prefix) and secret.id not in known:
                self.resources.track(secret)
        for config in self.client.configs.list(filters={"name": prefix}):
            if config.name.startswith(prefix) and config.id not in known:
                self.resources.track(config)

    # -- manifests --------------------------------------------------------------------
    def binding(
        self,
        standin: Standin,
        *,
        label: str | None = None,
        cert_target: str = CERT_TARGET,
        key_target: str = KEY_TARGET,
    ) -> dict[str, Any]:
        """The service's secrets for one certificate; `label` names other base names."""
        cert_base = self.resources.name(f"{label}.crt") if label else standin.cert_base
        key_base = self.resources.name(f"{label}.key") if label else standin.key_base
        return {
            "service": standin.name,
            "secrets": [
                {"name": cert_base, "source": "fullchain", "target": cert_target},
                {"name": key_base, "source": "privkey", "target": key_target, "mode": "0400"},
            ],
        }

    def entry(
        self,
        name: str,
        standins: Sequence[Standin],
        *,
        sans: Sequence[str] = (SAN,),
        verify: Iterable[Standin] | None = None,
        bindings: Sequence[dict[str, Any]] | None = None,
        lineage: Path | None = None,
    ) -> dict[str, Any]:
        """A manifest certificate entry: `name` is the lineage under `live_dir`."""
        entry: dict[str, Any] = {
            "name": name,
            "sans": list(sans),
            "services": list(bindings)
            if bindings is not None
            else [self.binding(s) for s in standins],
            "verify": [
                {"url": s.url, "server_name": SAN} for s in (standins if verify is None else verify)
            ],
        }
        if lineage is not None:
            entry["lineage"] = str(lineage)
        return entry

    def manifest(
        self,
        certificates: Sequence[dict[str, Any]],
        *,
        live_dir: Path | None = None,
        keep_versions: int = 2,
        update_timeout_s: int = 40,
        name: str = "manifest.json",
        state_dir: Path | None = None,
        docker_timeout_s: float | None = None,
    ) -> Path:
        settings: dict[str, Any] = {
            "certbot_live_dir": str(live_dir or self.live_dir),
            "keep_versions": keep_versions,
            "update_timeout_s": update_timeout_s,
            "state_dir": str(state_dir or self.state_dir),
        }
        if docker_timeout_s is not None:
            settings["docker_timeout_s"] = docker_timeout_s
        document = {
            "version": 2,
            "settings": settings,
            "certificates": list(certificates),
        }
        return write_private(self.root / name, json.dumps(document, indent=2))

    # -- what the daemon saw ------------------------------------------------------------
    def events(self, since: float, until: float, settle: float = 0.5) -> list[dict[str, Any]]:
        """Service, secret and config events of this test's objects between two times.

        The daemon logs swarm events as it sees them in the swarm's store, a moment after
        they happen (stamped with the store's time): wait `settle` seconds past `until` so
        that none is missed. They come from a stream opened with the lab, not from
        `docker events --since` afterwards: the daemon replays only its last 256 events,
        which a busy shared daemon (parallel tests, benchmarks) overwrites within seconds.
        """
        time.sleep(max(0.0, until + settle - time.time()))
        return self._events.between(since, until)

    def close(self) -> None:
        """Stop the event stream (the fixtures call this)."""
        self._events.close()


class EventStream:
    """`docker events` (services, secrets, configs) from now until `close()`, kept for the
    objects whose name starts with `prefix`."""

    def __init__(self, docker_host: str, prefix: str) -> None:
        self._prefix = prefix
        self._seen: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._process = subprocess.Popen(
            [
                "docker", "-H", docker_host, "events",
                "--since", f"{time.time():.6f}",  # replayed if the stream connects late
                "--format", "{{json .}}",
                "--filter", "type=service",
                "--filter", "type=secret",
                "--filter", "type=config",
            ],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            text=True,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            if not line.strip():
                continue
            event = json.loads(line)
            if event["Actor"]["Attributes"].get("name", "").startswith(self._prefix):
                with self._lock:
                    self._seen.append(event)

    def between(self, since: float, until: float) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self._seen if since <= e["timeNano"] / 1e9 <= until]

    def close(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        self._reader.join(timeout=10)
        if self._process.stdout is not None:
            self._process.stdout.close()


def spec_updates(events: Sequence[dict[str, Any]], service: str) -> int:
    """How many times the service's spec was written, from its `docker events`.

    Swarm also reports its own update-status changes as `service update` events; those
    carry `updatestate.*` attributes and are not spec changes. (`Version.Index` is no count:
    it is the store's index and moves with every status change too.)
    """
    return sum(
        1
        for e in events
        if e["Type"] == "service"
        and e["Action"] == "update"
        and e["Actor"]["Attributes"].get("name") == service
        and not any(k.startswith("updatestate") for k in e["Actor"]["Attributes"])
    )


def write_private(path: Path, text: str) -> Path:
    """Write a file readable by its owner only (as manifests are kept)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    path.chmod(0o600)
    return path


def _host_port(published: int, target: int) -> dict[str, Any]:
    return {
        "Protocol": "tcp",
        "PublishedPort": published,
        "TargetPort": target,
        "PublishMode": "host",
    }


def invoke(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    """`phoenix-cert ARGS` in this process, through click's test runner."""
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)


def phoenix_cert(
    *args: str | Path, env: dict[str, str] | None = None, timeout: float = 180.0
) -> subprocess.CompletedProcess[str]:
    """`phoenix-cert ARGS` as its own process (the venv's console script)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [str(PHOENIX_CERT), *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )


def killed_at(point: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """`phoenix-cert ARGS`, SIGKILLed at the failpoint `point` (phoenix_certbot.failpoints)."""
    result = phoenix_cert(*args, env={"PHOENIX_CERT_FAILPOINT": point})
    assert result.returncode == -9, f"not killed at {point}: {result.stdout}{result.stderr}"
    return result


def intent_files(state_dir: Path) -> list[Path]:
    """The intents in `state_dir`'s journal: what a run left unfinished."""
    folder = state_dir / "journal"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def run_certbot(certbot: Certbot, *args: str) -> subprocess.CompletedProcess[str]:
    """`certbot ARGS`; on a timeout, fail with the end of certbot's log instead of nothing."""
    try:
        return certbot.run(*args)
    except subprocess.TimeoutExpired:
        log = certbot.logs_dir / "letsencrypt.log"
        tail = log.read_text(errors="replace")[-4000:] if log.is_file() else "(no log)"
        pytest.fail(f"certbot {args[0]} did not finish in {certbot.timeout:g} s; log:\n{tail}")


def hook_rotates_at_issue_and_renewal(lab: Lab, certbot: Certbot, phoenix_cert: Path) -> str:
    """certbot issues, then force-renews, a certificate with `phoenix_cert deploy-hook` as
    its --deploy-hook; the stand-in must serve each new leaf. Returns the hook command."""
    standin = lab.deploy("web")
    bootstrap = served_sha256(standin.port)
    manifest = lab.manifest([lab.entry("web", [standin])], live_dir=certbot.live)
    hook = f"{phoenix_cert} deploy-hook --manifest {manifest}"

    issued = run_certbot(
        certbot,
        "certonly", "--standalone",
        "--http-01-port", str(certbot.http_port), "--http-01-address", "127.0.0.1",
        "-d", SAN, "--cert-name", "web",
        "--deploy-hook", hook,
    )  # fmt: skip
    assert issued.returncode == 0, issued.stderr
    assert "Hook 'deploy-hook' ran with error" not in issued.stderr, issued.stderr
    first = leaf_sha256_of(certbot.live / "web" / "cert.pem")
    assert first != bootstrap
    assert served_sha256(standin.port) == first

    renewed = run_certbot(certbot, "renew", "--force-renewal")
    assert renewed.returncode == 0, renewed.stderr
    assert "ran with error" not in renewed.stderr, renewed.stderr
    second = leaf_sha256_of(certbot.live / "web" / "cert.pem")
    assert second != first
    assert served_sha256(standin.port) == second
    return hook
