"""3. Restart window: how long one rotation leaves the URL without a valid certificate.

One stand-in service in the Portainer layout (one replica, `order: stop-first`, 9443
published in host mode) is watched by a 20 Hz TLS prober (`tests.support.prober`: one TCP
connection and one handshake per probe). In turns, on the same service:

- baseline: the seed's `docker service update --force --detach=false SERVICE` (a restart
  with the certificate it already has);
- ours: `phoenix-cert rotate --all` after the lineage was renewed on disk (a restart onto
  the new certificate, verified).

A window is the longest time, within one command's run, from the first probe without a
valid leaf (old or new) to the next probe with one; the resolution is the probe period,
50 ms. After each of our runs the benchmark checks that the new leaf is served; a run that
did not is not counted. At the end the whole trace is judged by the serving invariant
(`tests.support.invariant`): a valid leaf at every probe, refusals only while no task runs.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.common import PHOENIX_CERT, BenchError, Output, Run, run_measured
from bench.fixtures import Lineages, binding, entry, fullchain_pem, write_manifest
from bench.swarm_env import (
    CERT_TARGET,
    KEY_TARGET,
    BenchSwarm,
    Mount,
    UpdatePolicy,
    served_sha256,
)
from tests.harness.ports import free_port
from tests.support.invariant import Observation, summarise
from tests.support.prober import ServiceWatch

GOAL_EXTRA_S = 0.2  # ours may add at most this much to the baseline's window
ENGINE = "unix:///var/run/docker.sock"
SAN = "window.bench.test"
CERT = "window"


@dataclass(frozen=True)
class Event:
    who: str  # "baseline" | "ours"
    run: Run
    window_s: float
    probes: int


def window_of(trace: Sequence[Observation], run: Run, valid: set[str]) -> tuple[float, int]:
    """The longest stretch without a valid leaf among the probes made during `run`, and
    how many probes that was."""
    start, end = run.started_epoch, run.started_epoch + run.wall_s
    during = [o for o in trace if start <= o.at <= end]
    summary = summarise(during, {sha: "valid" for sha in valid})
    return summary.longest_without_valid_s, summary.probes


class Rig:
    def __init__(self, swarm: BenchSwarm, root: Path, out: Output) -> None:
        self.swarm = swarm
        self.root = root
        self.out = out
        self.lineages = Lineages(root)
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}/api/system/status"
        self.valid: set[str] = set()
        self.service = ""
        self.service_id = ""
        self.manifest = root / "manifest.json"
        self.current = ""

    def deploy(self, image: str, policy: UpdatePolicy) -> None:
        v1 = self.lineages.write(CERT, SAN)
        self.valid.add(v1.sha256)
        self.current = v1.sha256
        cert_name, key_name = self.swarm.name("window-boot.crt"), self.swarm.name("window-boot.key")
        cert_id = self.swarm.create_secret(cert_name, fullchain_pem(v1, self.lineages.ca))
        key_id = self.swarm.create_secret(key_name, v1.key_pem)
        mounts = [
            Mount(cert_id, cert_name, CERT_TARGET),
            Mount(key_id, key_name, KEY_TARGET, 0o400),
        ]
        self.service_id = self.swarm.create_service("window", image, policy, mounts, port=self.port)
        self.service = self.swarm.name("window")
        self.swarm.wait_running([self.service_id])
        self.swarm.wait_served(self.port, SAN, v1.sha256)
        b = binding(
            self.service, self.swarm.name("window.sslcert"), self.swarm.name("window.sslkey")
        )
        write_manifest(
            self.manifest,
            self.lineages.live_dir,
            self.root / "state",
            [entry(CERT, SAN, [b], verify_ports=[self.port])],
        )

    def baseline(self) -> Run:
        return run_measured(
            ["docker", "service", "update", "--force", "--detach=false", self.service],
            timeout_s=120,
        ).check("docker service update --force")

    def ours(self) -> Run:
        renewed = self.lineages.write(CERT, SAN)
        self.valid.add(renewed.sha256)
        result = run_measured(
            [PHOENIX_CERT, "rotate", "--all", "--manifest", self.manifest], timeout_s=180
        ).check("phoenix-cert rotate --all")
        if served_sha256(self.port, SAN) != renewed.sha256:
            raise BenchError("phoenix-cert: the renewed leaf is not served afterwards")
        self.current = renewed.sha256
        return result


def run(out: Output, image: str, policy: UpdatePolicy, pairs: int) -> None:
    out.begin("window", "restart window of one rotation, 20 Hz TLS prober")
    out.line(policy.services())
    swarm = BenchSwarm(out)
    events: list[Event] = []
    try:
        with tempfile.TemporaryDirectory(prefix="phxbench-window-") as tmp:
            rig = Rig(swarm, Path(tmp), out)
            out.note("deploying the Portainer-layout stand-in")
            rig.deploy(image, policy)
            with ServiceWatch(rig.url, SAN, ENGINE, rig.service_id) as watch:
                # A few valid probes first: a trace must start serving.
                watch.prober.wait_for(lambda o: o.leaf == rig.current, 10, "a first valid probe")
                for i in range(pairs):
                    for who, action in (("baseline", rig.baseline), ("ours", rig.ours)):
                        out.note(f"pair {i + 1}/{pairs}: {who}")
                        result = action()
                        watch.prober.wait_for(
                            lambda o: o.leaf == rig.current, 30, "the service serving again"
                        )
                        window, probes = window_of(watch.prober.trace(), result, rig.valid)
                        events.append(Event(who, result, window, probes))
            verdict = watch.verdict({sha: "valid" for sha in rig.valid})
    finally:
        swarm.cleanup()
        swarm.close()
    _report(out, events, verdict.ok, verdict.explain(limit=5))


def _report(out: Output, events: Sequence[Event], invariant_ok: bool, explain: str) -> None:
    base = [e for e in events if e.who == "baseline"]
    ours = [e for e in events if e.who == "ours"]
    out.table(
        ["run", "baseline window", "baseline wall", "ours window", "ours wall", "load"],
        [
            [
                str(i + 1),
                f"{b.window_s:.2f} s",
                f"{b.run.wall_s:.2f} s",
                f"{o.window_s:.2f} s",
                f"{o.run.wall_s:.2f} s",
                f"{b.run.load[0]:.2f}-{o.run.load[1]:.2f}",
            ]
            for i, (b, o) in enumerate(zip(base, ours, strict=True))
        ],
    )
    base_median = statistics.median(e.window_s for e in base)
    ours_median = statistics.median(e.window_s for e in ours)
    out.line(
        f"probes per run: {min(e.probes for e in events)}-{max(e.probes for e in events)}; "
        f"invariant over the whole trace: {'ok' if invariant_ok else 'VIOLATED'}"
    )
    if not invariant_ok:
        out.line(explain)
    ratio = ours_median / base_median if base_median else float("inf")
    met = ours_median <= base_median + GOAL_EXTRA_S
    out.line(
        f"RATIO window ours/baseline = {ratio:.2f} (median windows: ours {ours_median:.2f} s, "
        f"baseline {base_median:.2f} s; ours - baseline = {ours_median - base_median:+.2f} s, "
        f"goal <= +{GOAL_EXTRA_S:g} s) {'MET' if met else 'NOT MET'}"
    )
