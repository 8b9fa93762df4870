"""3. Start-up: `phoenix-cert --help` and a no-op `deploy-hook` (the lineage is already
deployed and verified, so the hook plans nothing), against `docker service inspect
SERVICE`, each run the same number of times, round-robin, after one untimed warm-up run.
Also shown: `python -c pass` with the venv's interpreter (the floor of any Python CLI) and
`deploy-hook --defer` (only records the lineage: what certbot runs per lineage in the
deferred mode). One more no-op hook runs through the counting proxy to list its requests.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import PHOENIX_CERT, VENV_BIN, BenchError, Output, Stats, ms, run_measured
from bench.fixtures import Lineages, binding, entry, fullchain_pem, write_manifest
from bench.proxy import CountingProxy
from bench.swarm_env import CERT_TARGET, KEY_TARGET, BenchSwarm, Mount, UpdatePolicy
from tests.harness.ports import free_port

GOAL = 3.0


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Timing:
    wall: Stats
    rss_kib: Stats


def time_commands(
    commands: Mapping[str, Command], repeat: int, warmup: int = 1, timeout_s: float = 60.0
) -> dict[str, Timing]:
    """Run each command `warmup` times untimed, then `repeat` times round-robin."""
    for _ in range(warmup):
        for name, command in commands.items():
            run_measured(command.argv, env=command.env, timeout_s=timeout_s).check(name)
    walls: dict[str, list[float]] = {name: [] for name in commands}
    rss: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, command in commands.items():
            result = run_measured(command.argv, env=command.env, timeout_s=timeout_s).check(name)
            walls[name].append(result.wall_s)
            rss[name].append(float(result.max_rss_kib))
    return {name: Timing(Stats(tuple(walls[name])), Stats(tuple(rss[name]))) for name in commands}


def _deploy(
    swarm: BenchSwarm, image: str, policy: UpdatePolicy, root: Path
) -> tuple[str, Path, Path]:
    """A stand-in on a deployed, verified certificate: (service name, manifest, lineage)."""
    lineages = Lineages(root)
    san = "startup.bench.test"
    boot = lineages.write("startup", san)
    cert = swarm.name("startup-boot.crt")
    key = swarm.name("startup-boot.key")
    cert_id = swarm.create_secret(cert, fullchain_pem(boot, lineages.ca))
    key_id = swarm.create_secret(key, boot.key_pem)
    port = free_port()
    service_id = swarm.create_service(
        "startup",
        image,
        policy,
        [Mount(cert_id, cert, CERT_TARGET), Mount(key_id, key, KEY_TARGET, 0o400)],
        port=port,
    )
    swarm.wait_running([service_id])
    swarm.wait_served(port, san, boot.sha256)
    renewed = lineages.write("startup", san)
    service = swarm.name("startup")
    manifest = write_manifest(
        root / "manifest.json",
        lineages.live_dir,
        root / "state",
        [
            entry(
                "startup",
                san,
                [binding(service, swarm.name("startup.sslcert"), swarm.name("startup.sslkey"))],
                verify_ports=[port],
            )
        ],
    )
    run_measured([PHOENIX_CERT, "rotate", "--all", "--manifest", manifest], timeout_s=120).check(
        "setup: phoenix-cert rotate --all"
    )
    swarm.wait_served(port, san, renewed.sha256, timeout_s=5)
    return service, manifest, lineages.live_dir / "startup"


def run(out: Output, image: str, policy: UpdatePolicy, repeat: int) -> None:
    out.begin("startup", "start-up of phoenix-cert against `docker service inspect`")
    swarm = BenchSwarm(out)
    try:
        with tempfile.TemporaryDirectory(prefix="phxbench-startup-") as tmp:
            out.note("deploying one stand-in and rotating it once (setup)")
            service, manifest, lineage = _deploy(swarm, image, policy, Path(tmp))
            hook_env = {"RENEWED_LINEAGE": str(lineage)}
            commands = {
                "python -c pass": Command((str(VENV_BIN / "python"), "-c", "pass")),
                "docker service inspect": Command(("docker", "service", "inspect", service)),
                "phoenix-cert --help": Command((str(PHOENIX_CERT), "--help")),
                "phoenix-cert deploy-hook (no-op)": Command(
                    (str(PHOENIX_CERT), "deploy-hook", "--manifest", str(manifest)), hook_env
                ),
                "phoenix-cert deploy-hook --defer": Command(
                    (str(PHOENIX_CERT), "deploy-hook", "--defer", "--manifest", str(manifest)),
                    hook_env,
                ),
            }
            version = swarm.spec_version(service)
            out.note(f"timing {len(commands)} commands x {repeat}")
            timings = time_commands(commands, repeat)
            if swarm.spec_version(service) != version:
                raise BenchError("the no-op deploy hook changed the service")
            with CountingProxy() as proxy:
                hook = commands["phoenix-cert deploy-hook (no-op)"]
                run_measured(
                    hook.argv, env={**hook.env, "DOCKER_HOST": proxy.docker_host}, timeout_s=60
                ).check("no-op hook through the counting proxy")
                calls = proxy.counts()
    finally:
        try:
            swarm.cleanup()
        finally:
            swarm.close()
    _report(out, timings, calls, repeat)


def _report(
    out: Output, timings: Mapping[str, Timing], calls: Mapping[str, int], repeat: int
) -> None:
    out.table(
        ["command", "median", "mean", "min", "max", "peak RSS"],
        [
            [
                name,
                ms(t.wall.median),
                ms(t.wall.mean),
                ms(t.wall.minimum),
                ms(t.wall.maximum),
                f"{t.rss_kib.median / 1024:.0f} MiB",
            ]
            for name, t in timings.items()
        ],
    )
    out.line(f"({repeat} timed runs each, round-robin, after 1 warm-up run each)")
    out.line("Docker API requests of one no-op hook: " + _calls(calls))
    inspect = timings["docker service inspect"].wall.median
    out.ratio(
        "startup no-op deploy-hook",
        timings["phoenix-cert deploy-hook (no-op)"].wall.median / inspect,
        GOAL,
        "hook/inspect (medians)",
    )
    out.line(
        f"RATIO startup --help help/inspect (medians) = "
        f"{timings['phoenix-cert --help'].wall.median / inspect:.2f} (no goal)"
    )


def _calls(calls: Mapping[str, int]) -> str:
    total = sum(calls.values())
    return f"{total} (" + ", ".join(f"{k} x{v}" for k, v in sorted(calls.items())) + ")"
