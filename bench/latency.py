"""1. Rotation latency: K services, each with its own certificate, all renewed at once.

Ours: `phoenix-cert rotate --all` (exit 0 means every new certificate was verified as
served). Baseline: today's method, one bash script: per certificate `docker secret create`
for cert and key, then `docker service update --secret-rm/--secret-add --detach=false`,
in sequence; then one `openssl s_client` check per certificate (repeated, bounded, only if
the new leaf is not served yet, so that both figures end at "verified as served").

Fairness: for each K, two sets of K identical stand-in services are deployed at once (init,
host-mode publish on free ports, the same UpdateConfig), each mounting bootstrap secrets of
the same v1 certificates; the v2 certificates are on disk before either path starts. The
baseline rotates set A, then phoenix-cert rotates set B, to the same v2 certificates. Both
swap the cert and the key secret of every service.
"""

from __future__ import annotations

import shlex
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.common import PHOENIX_CERT, SHELL_PREAMBLE, BenchError, Output, Run, run_measured, secs
from bench.fixtures import Lineages, binding, entry, fullchain_pem, write_manifest
from bench.swarm_env import (
    CERT_TARGET,
    KEY_TARGET,
    BenchSwarm,
    Mount,
    UpdatePolicy,
    parallel,
    per_size,
    served_sha256,
    shell_swap,
)
from phoenix_certbot.swarm.client import parse_time
from tests.harness.ports import free_port

GOAL = 0.6


@dataclass(frozen=True)
class Target:
    """One service and the certificate it serves."""

    cert: str
    san: str
    service: str
    service_id: str
    port: int
    boot_cert: str
    boot_key: str
    new_sha256: str


@dataclass(frozen=True)
class Measured:
    k: int
    baseline: Run
    ours: Run
    baseline_targets: tuple[Target, ...]
    ours_targets: tuple[Target, ...]
    baseline_running: tuple[float, ...] = ()  # per service: new task running, s since start
    ours_running: tuple[float, ...] = ()


def _deploy(
    swarm: BenchSwarm,
    image: str,
    policy: UpdatePolicy,
    k: int,
    lineages: Lineages,
) -> tuple[list[Target], list[Target]]:
    """Two sets of K services on the v1 certificates; v2 written to disk afterwards."""
    boot: list[tuple[str, str, bytes, bytes]] = []
    for i in range(k):
        cert, san = f"k{k}-c{i}", f"c{i}.k{k}.bench.test"
        v1 = lineages.write(cert, san)
        boot.append((cert, san, fullchain_pem(v1, lineages.ca), v1.key_pem))
    renewed = {cert: lineages.write(cert, san).sha256 for cert, san, _, _ in boot}

    def one(args: tuple[str, int]) -> tuple[str, Target]:
        group, i = args
        cert, san, chain, key = boot[i]
        suffix = f"k{k}-{group}{i}"
        cert_name, key_name = swarm.name(f"{suffix}-boot.crt"), swarm.name(f"{suffix}-boot.key")
        cert_id = swarm.create_secret(cert_name, chain)
        key_id = swarm.create_secret(key_name, key)
        port = free_port()
        service_id = swarm.create_service(
            suffix,
            image,
            policy,
            [Mount(cert_id, cert_name, CERT_TARGET), Mount(key_id, key_name, KEY_TARGET, 0o400)],
            port=port,
        )
        target = Target(
            cert, san, swarm.name(suffix), service_id, port, cert_name, key_name, renewed[cert]
        )
        return group, target

    made = parallel(one, [(g, i) for g in ("a", "b") for i in range(k)], workers=4)
    targets = [t for _, t in made]
    swarm.wait_running([t.service_id for t in targets], timeout_s=60 + 10 * k)
    for t in targets:  # serving the bootstrap certificate, not yet the renewed one
        swarm.wait_served(t.port, t.san, _sha_of_boot(t, boot))
    return [t for g, t in made if g == "a"], [t for g, t in made if g == "b"]


def _sha_of_boot(target: Target, boot: Sequence[tuple[str, str, bytes, bytes]]) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    chain = next(c for cert, _, c, _ in boot if cert == target.cert)
    return x509.load_pem_x509_certificate(chain).fingerprint(hashes.SHA256()).hex()


def baseline_script(targets: Sequence[Target], lineages: Lineages, swarm: BenchSwarm) -> str:
    """Today's method as one bash script; `@@ <epoch> <event>` lines on stderr time it."""
    q = shlex.quote
    lines = [
        *SHELL_PREAMBLE,
    ]
    for t in targets:
        new_cert = swarm.name(f"{t.service.removeprefix(swarm.prefix)}-v2.crt")
        new_key = swarm.name(f"{t.service.removeprefix(swarm.prefix)}-v2.key")
        lines += [
            f"docker secret create {q(new_cert)} {q(str(lineages.fullchain(t.cert)))} >/dev/null",
            f"docker secret create {q(new_key)} {q(str(lineages.privkey(t.cert)))} >/dev/null",
            f"mark created {t.port}",
            shell_swap(t.service, t.boot_cert, new_cert, t.boot_key, new_key),
            f"mark updated {t.port}",
        ]
    lines += [f"check {t.port} {q(t.san)} {t.new_sha256}" for t in targets]
    lines.append("mark end")
    return "\n".join(lines) + "\n"


def _ours_manifest(
    targets: Sequence[Target], lineages: Lineages, swarm: BenchSwarm, root: Path
) -> Path:
    certificates = [
        entry(
            t.cert,
            t.san,
            [binding(t.service, swarm.name(f"{t.cert}.sslcert"), swarm.name(f"{t.cert}.sslkey"))],
            verify_ports=[t.port],
        )
        for t in targets
    ]
    return write_manifest(root / "manifest.json", lineages.live_dir, root / "state", certificates)


def _check_served(targets: Sequence[Target], who: str) -> None:
    wrong = [t.service for t in targets if served_sha256(t.port, t.san) != t.new_sha256]
    if wrong:
        raise BenchError(f"{who}: not serving the renewed certificate afterwards: {wrong}")


def measure(swarm: BenchSwarm, image: str, policy: UpdatePolicy, k: int, out: Output) -> Measured:
    with tempfile.TemporaryDirectory(prefix="phxbench-latency-") as tmp:
        root = Path(tmp)
        lineages = Lineages(root)
        out.note(f"K={k}: deploying 2 x {k} stand-in services")
        base_targets, our_targets = _deploy(swarm, image, policy, k, lineages)

        script = root / "baseline.sh"
        script.write_text(baseline_script(base_targets, lineages, swarm))
        out.note(f"K={k}: baseline (shell, sequential)")
        baseline = run_measured(["bash", script], timeout_s=60 + 90 * k).check("baseline script")
        _check_served(base_targets, "baseline")

        manifest = _ours_manifest(our_targets, lineages, swarm, root)
        out.note(f"K={k}: phoenix-cert rotate --all")
        ours = run_measured(
            [PHOENIX_CERT, "-v", "rotate", "--all", "--manifest", manifest],
            timeout_s=120 + 60 * k,
        ).check("phoenix-cert rotate --all")
        _check_served(our_targets, "phoenix-cert")
        return Measured(
            k,
            baseline,
            ours,
            tuple(base_targets),
            tuple(our_targets),
            _running(swarm, base_targets, baseline.started_epoch),
            _running(swarm, our_targets, ours.started_epoch),
        )


# -- profile ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Profile:
    """Seconds since the start of a run (medians over services where it says so)."""

    first_update: float  # the first service update was sent
    last_update: float
    running_median: float  # a new task of a service was running (median over services)
    running_last: float
    converged_last: float  # the last service was seen converged (ours: last poll + 1 poll)
    end: float


def _running(swarm: BenchSwarm, targets: Sequence[Target], started: float) -> tuple[float, ...]:
    """For each service, when its new task started running, in seconds since `started`."""
    offsets = []
    for t in targets:
        running = [
            parse_time(task["Status"].get("Timestamp")).timestamp()
            for task in swarm.tasks(t.service_id)
            if task["DesiredState"] == "running" and task["Status"]["State"] == "running"
        ]
        if running:
            offsets.append(max(running) - started)
    return tuple(sorted(offsets))


def baseline_profile(m: Measured) -> Profile:
    marks = [
        (float(parts[1]) - m.baseline.started_epoch, parts[2])
        for _, line in m.baseline.stderr_lines
        if line.startswith("@@ ") and len(parts := line.split(" ", 2)) == 3
    ]
    updated = [t for t, what in marks if what.startswith("updated")]
    created = [t for t, what in marks if what.startswith("created")]
    running = m.baseline_running
    return Profile(
        first_update=created[0] if created else 0.0,
        last_update=created[-1] if created else 0.0,
        running_median=running[len(running) // 2] if running else 0.0,
        running_last=running[-1] if running else 0.0,
        converged_last=updated[-1] if updated else 0.0,
        end=m.baseline.wall_s,
    )


def ours_profile(m: Measured, poll_s: float = 0.5) -> Profile:
    waits: dict[str, list[float]] = {}
    updates: list[float] = []
    for t, line in m.ours.stderr_lines:
        text = line.removeprefix("phoenix-cert: INFO: ")
        service, sep, rest = text.partition(": ")
        if not sep or not service.startswith("phxbench-"):
            continue
        if rest.startswith("updated, waiting"):
            updates.append(t)
        else:
            waits.setdefault(service, []).append(t)
    running = m.ours_running
    last_waits = [max(ts) for ts in waits.values()]
    return Profile(
        first_update=min(updates) if updates else 0.0,
        last_update=max(updates) if updates else 0.0,
        running_median=running[len(running) // 2] if running else 0.0,
        running_last=running[-1] if running else 0.0,
        converged_last=(max(last_waits) + poll_s) if last_waits else 0.0,
        end=m.ours.wall_s,
    )


# -- the benchmark ------------------------------------------------------------------------
def run(out: Output, image: str, policy: UpdatePolicy, sizes: Sequence[int]) -> None:
    out.begin("latency", "rotation latency, K services each with its own certificate")
    out.line(policy.services())
    results = per_size(out, sizes, lambda swarm, k: measure(swarm, image, policy, k, out))
    _report(out, results, policy)


def _report(out: Output, results: Sequence[Measured], policy: UpdatePolicy) -> None:
    first = results[0].ours.wall_s
    out.table(
        ["K", "baseline", "ours", "ours/baseline", f"ours/ours(K={results[0].k})"],
        [
            [
                str(m.k),
                secs(m.baseline.wall_s),
                secs(m.ours.wall_s),
                f"{m.ours.wall_s / m.baseline.wall_s:.2f}",
                f"{m.ours.wall_s / first:.2f}",
            ]
            for m in results
        ],
    )
    out.line("")
    out.line(
        "where the time goes (seconds from start; 'running' = new task running, "
        "median/last over services):"
    )
    rows = []
    for m in results:
        for who, p in (("baseline", baseline_profile(m)), ("ours", ours_profile(m))):
            rows.append(
                [
                    str(m.k),
                    who,
                    f"{p.first_update:.2f}",
                    f"{p.last_update:.2f}",
                    f"{p.running_median:.2f}/{p.running_last:.2f}",
                    f"{p.converged_last:.2f}",
                    f"{p.end - p.converged_last:.2f}",
                    f"{p.end:.2f}",
                ]
            )
    out.table(
        ["K", "path", "1st update", "last update", "running", "converged", "after", "end"],
        rows,
    )
    out.line(
        f"(baseline: 'update' = secrets created and `service update` started; "
        f"'converged' = the last `--detach=false` returned; 'after' = s_client checks. "
        f"ours: 'converged' = last convergence poll; 'after' = verify, prune, record, exit. "
        f"Both wait out monitor={policy.monitor_s:g}s after the new task runs.)"
    )
    biggest = results[-1]
    out.ratio(f"latency K={biggest.k}", biggest.ours.wall_s / biggest.baseline.wall_s, GOAL)
    if len(results) > 1:
        out.line(
            f"SCALING latency ours(K={biggest.k})/ours(K={results[0].k}) = "
            f"{biggest.ours.wall_s / first:.2f} (ideal 1.00: all services in parallel)"
        )
