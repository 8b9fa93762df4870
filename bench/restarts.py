"""2. Task restarts per renewal: three certificates renewed in one `certbot renew` (real
Pebble), all used by one service.

Ours: certbot's `--deploy-hook "phoenix-cert deploy-hook --defer"` records each lineage and
`--post-hook "phoenix-cert post-hook"` deploys them in one plan: goal 1 restart. Baseline:
`--deploy-hook "phoenix-cert deploy-hook"` run per lineage as certbot renews it: 3. A
restart is a task of the service that did not exist before the renewal (task ids).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import PHOENIX_CERT, BenchError, Output, run_measured, secs
from bench.fixtures import binding, entry, write_manifest
from bench.swarm_env import BenchSwarm, Mount, UpdatePolicy, served_sha256
from tests.harness.certbot_runner import Certbot
from tests.harness.pebble import PebbleProcess
from tests.harness.ports import free_port

NAMES = ("r1", "r2", "r3")


@dataclass(frozen=True)
class Variant:
    name: str
    hooks: tuple[str, ...]
    wall_s: float
    restarts: int
    served_new: bool
    error_output_warnings: int  # certbot's "Hook ... ran with error output"


def _leaf_sha256(path: Path) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    return x509.load_pem_x509_certificate(path.read_bytes()).fingerprint(hashes.SHA256()).hex()


class Rig:
    """Pebble, certbot, three lineages and one stand-in service that mounts all three."""

    def __init__(self, swarm: BenchSwarm, root: Path, out: Output) -> None:
        self.swarm = swarm
        self.root = root
        self.out = out
        self.pebble = PebbleProcess(
            root / "pebble",
            listen=f"127.0.0.1:{free_port()}",
            management=f"127.0.0.1:{free_port()}",
        )
        (root / "pebble").mkdir()
        self.http_port = free_port()
        self.certbot: Certbot | None = None
        self.port = free_port()
        self.service = swarm.name("restarts")
        self.service_id = ""
        self.manifest = root / "manifest.json"

    def san(self, name: str) -> str:
        return f"{name}.restarts.bench.test"

    def start(self, image: str, policy: UpdatePolicy) -> None:
        server = self.pebble.start()
        certbot = Certbot(self.root / "certbot", server.directory_url, server.listener_ca_path)
        self.certbot = certbot
        for name in NAMES:
            self.out.note(f"certbot certonly {name} (Pebble)")
            issued = certbot.run(
                "certonly", "--standalone",
                "--http-01-port", str(self.http_port), "--http-01-address", "127.0.0.1",
                "-d", self.san(name), "--cert-name", name,
            )  # fmt: skip
            if issued.returncode != 0:
                raise BenchError(f"certbot certonly {name} failed: {issued.stderr[-800:]}")
        mounts, bindings = [], []
        for i, name in enumerate(NAMES):
            # r1 is what the stand-in serves; r2 and r3 are mounted beside it.
            cert_target = "portainer.sslcert" if i == 0 else f"{name}.crt"
            key_target = "portainer.sslkey" if i == 0 else f"{name}.key"
            live = certbot.live / name
            for suffix, source, target, mode in (
                ("crt", "fullchain", cert_target, 0o444),
                ("key", "privkey", key_target, 0o400),
            ):
                secret = self.swarm.name(f"restarts-boot-{name}.{suffix}")
                ident = self.swarm.create_secret(secret, (live / f"{source}.pem").read_bytes())
                mounts.append(Mount(ident, secret, target, mode))
            bindings.append(
                (
                    name,
                    binding(
                        self.service,
                        self.swarm.name(f"{name}.crt"),
                        self.swarm.name(f"{name}.key"),
                        cert_target,
                        key_target,
                    ),
                )
            )
        self.service_id = self.swarm.create_service(
            "restarts", image, policy, mounts, port=self.port
        )
        self.swarm.wait_running([self.service_id])
        self.swarm.wait_served(self.port, self.san("r1"), self.leaf("r1"))
        write_manifest(
            self.manifest,
            certbot.live,
            self.root / "state",
            [
                entry(name, self.san(name), [b], verify_ports=[self.port] if name == "r1" else [])
                for name, b in bindings
            ],
        )
        self.out.note("phoenix-cert rotate --all (setup: managed versions in place)")
        run_measured(
            [PHOENIX_CERT, "rotate", "--all", "--manifest", self.manifest], timeout_s=180
        ).check("setup: phoenix-cert rotate --all")

    def leaf(self, name: str) -> str:
        assert self.certbot is not None
        return _leaf_sha256(self.certbot.live / name / "cert.pem")

    def task_ids(self) -> set[str]:
        return {str(t["ID"]) for t in self.swarm.tasks(self.service_id)}

    def renew(self, name: str, *hooks: str) -> Variant:
        assert self.certbot is not None
        before = {n: self.leaf(n) for n in NAMES}
        tasks = self.task_ids()
        self.out.note(f"certbot renew --force-renewal {' '.join(hooks)}")
        start = time.perf_counter()
        renewed = self.certbot.run(
            "renew", "--force-renewal", "--http-01-port", str(self.http_port), *hooks,
            timeout=600,
        )  # fmt: skip
        wall = time.perf_counter() - start
        # A hook that exits non-zero: "Hook '...' reported error code N". (Any output on
        # stderr, even a notice, makes certbot say "ran with error output": counted below.)
        if renewed.returncode != 0 or "reported error code" in renewed.stderr:
            raise BenchError(f"{name}: certbot renew failed: {renewed.stderr[-1500:]}")
        if any(self.leaf(n) == before[n] for n in NAMES):
            raise BenchError(f"{name}: certbot did not renew all three lineages")
        served = served_sha256(self.port, self.san("r1")) == self.leaf("r1")
        noisy = renewed.stderr.count("ran with error output")
        return Variant(name, hooks, wall, len(self.task_ids() - tasks), served, noisy)

    def stop(self) -> None:
        self.pebble.stop()


def run(out: Output, image: str, policy: UpdatePolicy) -> None:
    out.begin("restarts", "task restarts per renewal of 3 certificates used by 1 service")
    out.line(f"service: stand-in, init=True, host-mode publish, replicas 1, {policy.describe()}")
    swarm = BenchSwarm(out)
    variants: list[Variant] = []
    try:
        with tempfile.TemporaryDirectory(prefix="phxbench-restarts-") as tmp:
            rig = Rig(swarm, Path(tmp), out)
            try:
                rig.start(image, policy)
                hook = f"{PHOENIX_CERT} deploy-hook --manifest {rig.manifest}"
                deferred = f"{PHOENIX_CERT} deploy-hook --defer --manifest {rig.manifest}"
                post = f"{PHOENIX_CERT} post-hook --manifest {rig.manifest}"
                # The per-lineage variant runs first: certbot stores the hooks given to
                # `renew` in each renewal configuration, and a stored post hook must not
                # take part in it. (Hooks on the command line override stored ones.)
                variants.append(rig.renew("deploy hook per lineage", "--deploy-hook", hook))
                variants.append(
                    rig.renew(
                        "deploy-hook --defer + post-hook",
                        *("--deploy-hook", deferred, "--post-hook", post),
                    )
                )
            finally:
                rig.stop()
    finally:
        try:
            swarm.cleanup()
        finally:
            swarm.close()
    out.table(
        ["variant", "task restarts", "certbot renew wall", "new leaf served", "hook stderr"],
        [
            [
                v.name,
                str(v.restarts),
                secs(v.wall_s),
                "yes" if v.served_new else "NO",
                str(v.error_output_warnings),
            ]
            for v in variants
        ],
    )
    out.line(
        "('hook stderr' = how often certbot printed \"Hook ... ran with error output\": "
        "any stderr output of a hook, even a notice, is reported by certbot that way)"
    )
    ours, baseline = variants[1], variants[0]
    verdict = "MET" if ours.restarts == 1 else "NOT MET"
    out.line(
        f"RATIO restarts ours/baseline = {ours.restarts}/{baseline.restarts} = "
        f"{ours.restarts / max(baseline.restarts, 1):.2f} (goal: ours = 1 restart, "
        f"baseline expected 3) {verdict}"
    )
