"""4. Scale: `status` and `plan --all` on a manifest of 500 certificates / 200 services,
against a swarm holding 1,000 secrets; wall time, peak RSS and Docker API requests.

The swarm is built once and is the same for both manifests: 200 stand-in services with
`replicas 0` (no task runs; a plan or a status reads specs, not tasks), each mounting the
managed versions of its 2-3 certificates, i.e. 1,000 secrets labelled as phoenix-cert
labels its own. One lineage in ten was renewed on disk since, so `plan` has work to show.
The second manifest holds the first 50 certificates, which use exactly the first 20
services: the request count must be the same for both.

Requests are counted at the transport: phoenix-cert runs as its own process (the console
script, as an operator runs it) with DOCKER_HOST pointing at a counting proxy in front of
the engine's socket (`bench.proxy`), so every HTTP request counts, including the docker
SDK's own API-version negotiation. Wall time and RSS come from separate runs straight to
the engine's socket, so the proxy hop does not colour them.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.common import PHOENIX_CERT, BenchError, Output, Run, Stats, ms, run_measured
from bench.fixtures import Lineages, binding, entry, write_manifest
from bench.proxy import CountingProxy
from bench.swarm_env import BenchSwarm, Mount, UpdatePolicy, parallel


@dataclass(frozen=True)
class Size:
    certs: int
    services: int


FULL = (Size(500, 200), Size(50, 20))
QUICK = (Size(50, 20), Size(5, 2))
RENEWED_EVERY = 10


@dataclass(frozen=True)
class Figures:
    size: Size
    command: str
    wall: Stats
    rss_kib: Stats
    requests: int
    detail: Mapping[str, int]
    uncertain: bool


def service_of(i: int, big: Size, small: Size) -> int:
    """Certificates 0..small.certs-1 use services 0..small.services-1; the rest the others."""
    if i < small.certs:
        return i % small.services
    return small.services + (i - small.certs) % (big.services - small.services)


class ScaleSwarm:
    def __init__(self, swarm: BenchSwarm, root: Path, big: Size, small: Size) -> None:
        self.swarm = swarm
        self.root = root
        self.big = big
        self.small = small
        self.lineages = Lineages(root)

    def cert(self, i: int) -> str:
        return f"s{i}"

    def san(self, i: int) -> str:
        return f"s{i}.scale.bench.test"

    def manifest(self, size: Size) -> Path:
        certificates = []
        for i in range(size.certs):
            service = self.swarm.name(f"svc{service_of(i, self.big, self.small)}")
            b = binding(
                service,
                self.swarm.name(f"s{i}.crt"),
                self.swarm.name(f"s{i}.key"),
                f"s{i}.crt",
                f"s{i}.key",
            )
            # Verify URLs as a real manifest has them; neither status nor plan probes them.
            certificates.append(entry(self.cert(i), self.san(i), [b], verify_ports=[9]))
        name = f"manifest-{size.certs}-{size.services}.json"
        return write_manifest(
            self.root / name, self.lineages.live_dir, self.root / "state", certificates
        )

    def build(self, image: str, policy: UpdatePolicy, out: Output) -> None:
        out.note(f"writing {self.big.certs} lineages")
        for i in range(self.big.certs):
            self.lineages.write(self.cert(i), self.san(i))
        manifest = self.manifest(self.big)
        objects = self._objects(manifest)
        out.note(f"creating {len(objects)} secrets (8 in parallel)")
        ids = dict(
            zip(
                [name for name, _, _ in objects],
                parallel(lambda o: self.swarm.create_secret(o[0], o[1], o[2]), objects),
                strict=True,
            )
        )
        mounts: dict[int, list[Mount]] = {s: [] for s in range(self.big.services)}
        for i in range(self.big.certs):
            crt, key = self._names[i]
            mounts[service_of(i, self.big, self.small)] += [
                Mount(ids[crt], crt, f"s{i}.crt"),
                Mount(ids[key], key, f"s{i}.key", 0o400),
            ]
        out.note(f"creating {self.big.services} services with replicas 0 (8 in parallel)")
        parallel(
            lambda s: self.swarm.create_service(f"svc{s}", image, policy, mounts[s], replicas=0),
            range(self.big.services),
        )
        for i in range(0, self.big.certs, RENEWED_EVERY):  # renewed on disk since
            self.lineages.write(self.cert(i), self.san(i))

    def _objects(self, manifest: Path) -> list[tuple[str, bytes, dict[str, str]]]:
        """Each certificate's managed versions, named and labelled as phoenix-cert does
        (computed with its own code, so that its plan finds them current)."""
        from phoenix_certbot.certs import load_material
        from phoenix_certbot.manifest import load as manifest_load
        from phoenix_certbot.naming import versioned_name
        from phoenix_certbot.rotation.run import digest
        from phoenix_certbot.swarm import model as sm

        self._names: dict[int, tuple[str, str]] = {}
        objects = []
        for i, cert in enumerate(manifest_load.load(manifest).certificates):
            material = load_material(cert)
            found = digest(material)
            names = []
            for ref in cert.services[0].objects:
                sha = found.payload_sha256[ref.source]
                name = versioned_name(ref.name, sha)
                labels = {
                    sm.LABEL_MANAGED: "true",
                    sm.LABEL_CERT: cert.name,
                    sm.LABEL_BASE: ref.name,
                    sm.LABEL_SOURCE: ref.source.value,
                    sm.LABEL_SHA256: sha,
                    sm.LABEL_LEAF_SHA256: found.leaf_sha256,
                    sm.LABEL_NOT_AFTER: found.not_after.astimezone(dt.timezone.utc)
                    .isoformat()
                    .replace("+00:00", "Z"),
                }
                objects.append((name, material.payload(ref.source), labels))
                names.append(name)
            self._names[i] = (names[0], names[1])
        return objects


COMMANDS = {"status": ("status",), "plan": ("plan", "--all")}


def measure(manifest: Path, size: Size, command: str, repeat: int) -> Figures:
    argv: list[str | Path] = [PHOENIX_CERT, *COMMANDS[command], "--manifest", manifest]
    runs: list[Run] = [
        run_measured(argv, timeout_s=300).check(f"{command} {size.certs}/{size.services}")
        for _ in range(repeat)
    ]
    with CountingProxy() as proxy:
        run_measured(argv, timeout_s=300, env={"DOCKER_HOST": proxy.docker_host}).check(
            f"{command} through the counting proxy"
        )
        detail = dict(proxy.counts())
        uncertain = proxy.uncertain
    return Figures(
        size,
        command,
        Stats(tuple(r.wall_s for r in runs)),
        Stats(tuple(float(r.max_rss_kib) for r in runs)),
        sum(detail.values()),
        detail,
        uncertain,
    )


def run(out: Output, image: str, policy: UpdatePolicy, quick: bool, repeat: int) -> None:
    big, small = QUICK if quick else FULL
    out.begin("scale", f"status and plan, {big.certs} certificates / {big.services} services")
    swarm = BenchSwarm(out)
    figures: list[Figures] = []
    try:
        with tempfile.TemporaryDirectory(prefix="phxbench-scale-") as tmp:
            rig = ScaleSwarm(swarm, Path(tmp), big, small)
            rig.build(image, policy, out)
            secrets_total = swarm.count_secrets()
            services_total = len(list(swarm.api.services()))
            manifests = {size: rig.manifest(size) for size in (big, small)}
            for size in (big, small):
                for command in COMMANDS:
                    out.note(f"{command}: {size.certs} certificates / {size.services} services")
                    figures.append(measure(manifests[size], size, command, repeat))
    finally:
        try:
            swarm.cleanup(timeout_s=300)
        finally:
            swarm.close()
    out.line(
        f"swarm while measuring: {secrets_total} secrets, {services_total} services in all "
        f"({2 * big.certs} secrets / {big.services} services of this benchmark, replicas 0); "
        f"1 lineage in {RENEWED_EVERY} renewed on disk since deployment"
    )
    _report(out, figures, big, small, repeat)


def _report(out: Output, figures: Sequence[Figures], big: Size, small: Size, repeat: int) -> None:
    out.table(
        ["manifest", "command", "wall median", "wall min", "peak RSS", "API requests"],
        [
            [
                f"{f.size.certs} certs / {f.size.services} svcs",
                f.command,
                ms(f.wall.median),
                ms(f.wall.minimum),
                f"{f.rss_kib.median / 1024:.0f} MiB",
                str(f.requests) + (" (uncertain)" if f.uncertain else ""),
            ]
            for f in figures
        ],
    )
    out.line(f"({repeat} timed runs each; requests from one more run through the proxy)")
    for f in figures:
        detail = ", ".join(f"{k} x{v}" for k, v in sorted(f.detail.items()))
        out.line(f"requests {f.command} {f.size.certs}/{f.size.services}: {detail}")
    for command in COMMANDS:
        large = next(f for f in figures if f.command == command and f.size == big)
        few = next(f for f in figures if f.command == command and f.size == small)
        if large.uncertain or few.uncertain:
            raise BenchError("a request body could not be followed; counts are uncertain")
        verdict = "MET" if large.requests <= few.requests else "NOT MET"
        out.line(
            f"RATIO scale {command} requests {big.certs}/{small.certs} certs = "
            f"{large.requests}/{few.requests} = {large.requests / few.requests:.2f} "
            f"(goal: 1.00, must not grow with the manifest) {verdict}"
        )
        out.line(
            f"RATIO scale {command} wall {big.certs}/{small.certs} certs = "
            f"{large.wall.median / few.wall.median:.2f} (no goal); "
            f"peak RSS {large.rss_kib.median / few.rss_kib.median:.2f}"
        )
