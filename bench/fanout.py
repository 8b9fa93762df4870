"""1 and 2. Wildcard fan-out: one certificate mounted by K stand-in services, renewed once.
K=1 is also the one-service comparison.

Ours: `phoenix-cert -v rotate --all` on a manifest with one certificate, K service bindings
(one versioned secret pair, mounted by all K) and K verify URLs; exit 0 means every URL was
verified as serving the new leaf. Baseline: the sequential shell method as one bash script:
`docker secret create` for the fullchain and for the key, once, then per service
`docker service update --detach=false --secret-rm/--secret-add`, one after another, then one
`openssl s_client` check per service (retried, bounded, only while the new leaf is not
served yet), so that both figures end at "verified as served".

Fairness: for each K, two sets of K identical stand-in services are deployed at once (init,
host-mode publish on free ports, the Portainer stack's UpdateConfig), all mounting the same
bootstrap secrets of the v1 certificate; v2 is on disk before either path starts. The
baseline rotates set A, then phoenix-cert rotates set B. Both run with DOCKER_HOST pointing
at the counting proxy (`bench.proxy`), so their Docker API requests are counted at the
transport and timestamped; both pay the same hop. After each run the benchmark itself checks
that every service serves the v2 leaf; a run that did not is not timed (the benchmark fails).
"""

from __future__ import annotations

import shlex
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    PHOENIX_CERT,
    SHELL_PREAMBLE,
    BenchError,
    Output,
    Run,
    load_average,
    poll_until,
    run_measured,
    secs,
)
from bench.fixtures import Lineages, binding, fullchain_pem, write_manifest
from bench.proxy import CountingProxy
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

GOAL_SCALING = 1.5  # ours(K=largest) / ours(K=1)
GOAL_VS_BASELINE = 0.1  # ours(K=largest) / baseline(K=largest)
GOAL_ONE = 0.95  # ours(K=1) / baseline(K=1)
CERT = "wild"
# Listing every object of a kind: a request whose count must not grow with K.
WHOLE_SWARM_READS = frozenset({"GET /services", "GET /secrets", "GET /configs"})


@dataclass(frozen=True)
class Target:
    service: str
    service_id: str
    port: int
    server_name: str


@dataclass(frozen=True)
class SwarmTimes:
    """What swarm recorded for one service's update, in seconds since the run started."""

    started: float | None  # UpdateStatus.StartedAt: swarm took the update
    running: float | None  # the new task entered `running`
    completed: float | None  # UpdateStatus.CompletedAt: swarm's monitor period is over


@dataclass(frozen=True)
class PathRun:
    """One path (ours or the baseline) at one K."""

    run: Run
    swarm: tuple[SwarmTimes, ...]
    timeline: tuple[tuple[float, str], ...]  # (s since start, "METHOD /endpoint")

    @property
    def requests(self) -> Counter[str]:
        return Counter(what for _, what in self.timeline)


@dataclass(frozen=True)
class Measured:
    k: int
    baseline: PathRun
    ours: PathRun
    # Swarm alone: K forced updates sent at once by the benchmark, nobody waiting; seconds
    # since the first was sent. What the daemon needs, whoever the client.
    alone: tuple[SwarmTimes, ...] = ()


# -- setting up -----------------------------------------------------------------------------
def _deploy(
    swarm: BenchSwarm, image: str, policy: UpdatePolicy, k: int, lineages: Lineages
) -> tuple[list[Target], list[Target], str]:
    """Two sets of K services on the v1 certificate; v2 written to disk afterwards.
    Returns (baseline set, our set, the v2 leaf's SHA-256)."""
    san = f"*.k{k}.fanout.bench.test"
    v1 = lineages.write(CERT, san)
    cert_name, key_name = swarm.name(f"k{k}-boot.crt"), swarm.name(f"k{k}-boot.key")
    cert_id = swarm.create_secret(cert_name, fullchain_pem(v1, lineages.ca))
    key_id = swarm.create_secret(key_name, v1.key_pem)
    mounts = [Mount(cert_id, cert_name, CERT_TARGET), Mount(key_id, key_name, KEY_TARGET, 0o400)]

    def one(args: tuple[str, int]) -> tuple[str, Target]:
        group, i = args
        suffix = f"k{k}-{group}{i}"
        port = free_port()
        service_id = swarm.create_service(suffix, image, policy, mounts, port=port)
        return group, Target(swarm.name(suffix), service_id, port, f"s{i}.k{k}.fanout.bench.test")

    made = parallel(one, [(g, i) for g in ("a", "b") for i in range(k)], workers=4)
    targets = [t for _, t in made]
    swarm.wait_running([t.service_id for t in targets], timeout_s=60 + 5 * len(targets))
    for t in targets:  # serving the bootstrap certificate, not yet the renewed one
        swarm.wait_served(t.port, t.server_name, v1.sha256)
    v2 = lineages.write(CERT, san)
    return [t for g, t in made if g == "a"], [t for g, t in made if g == "b"], v2.sha256


def baseline_script(
    targets: Sequence[Target], lineages: Lineages, swarm: BenchSwarm, k: int, new_sha256: str
) -> str:
    """The sequential shell method; `@@ <epoch> <event>` lines on stderr time it."""
    q = shlex.quote
    new_cert, new_key = swarm.name(f"k{k}-v2.crt"), swarm.name(f"k{k}-v2.key")
    boot_cert, boot_key = swarm.name(f"k{k}-boot.crt"), swarm.name(f"k{k}-boot.key")
    lines = [
        *SHELL_PREAMBLE,
        f"docker secret create {q(new_cert)} {q(str(lineages.fullchain(CERT)))} >/dev/null",
        f"docker secret create {q(new_key)} {q(str(lineages.privkey(CERT)))} >/dev/null",
        "mark created",
    ]
    for t in targets:
        lines += [
            f"mark update {t.port}",
            shell_swap(t.service, boot_cert, new_cert, boot_key, new_key),
            f"mark updated {t.port}",
        ]
    lines += [f"check {t.port} {q(t.server_name)} {new_sha256}" for t in targets]
    lines.append("mark end")
    return "\n".join(lines) + "\n"


def _ours_manifest(
    targets: Sequence[Target], lineages: Lineages, swarm: BenchSwarm, k: int, root: Path
) -> Path:
    cert_base, key_base = swarm.name(f"k{k}-wild.sslcert"), swarm.name(f"k{k}-wild.sslkey")
    certificate = {
        "name": CERT,
        "sans": [f"*.k{k}.fanout.bench.test"],
        "services": [binding(t.service, cert_base, key_base) for t in targets],
        "verify": [
            {"url": f"https://127.0.0.1:{t.port}/api/system/status", "server_name": t.server_name}
            for t in targets
        ],
    }
    return write_manifest(root / "manifest.json", lineages.live_dir, root / "state", [certificate])


# -- measuring --------------------------------------------------------------------------------
def _check_served(targets: Sequence[Target], new_sha256: str, who: str) -> None:
    wrong = [t.service for t in targets if served_sha256(t.port, t.server_name) != new_sha256]
    if wrong:
        raise BenchError(
            f"{who}: {len(wrong)} service(s) not serving the renewed leaf afterwards, "
            f"so the run is not timed: {wrong[:5]}"
        )


def _since(stamp: str | None, started: float) -> float | None:
    if not stamp or stamp.startswith("0001-"):
        return None
    return parse_time(stamp).timestamp() - started


def swarm_times(swarm: BenchSwarm, targets: Sequence[Target], started: float) -> list[SwarmTimes]:
    """For each service: when swarm took the update, ran the new task, completed it."""
    times = []
    for t in targets:
        raw: dict[str, Any] = swarm.api.inspect_service(t.service_id)
        status = raw.get("UpdateStatus") or {}
        running = [
            parse_time(task["Status"].get("Timestamp")).timestamp() - started
            for task in swarm.tasks(t.service_id)
            if task["DesiredState"] == "running" and task["Status"]["State"] == "running"
        ]
        times.append(
            SwarmTimes(
                _since(status.get("StartedAt"), started),
                max(running) if running else None,
                _since(status.get("CompletedAt"), started),
            )
        )
    return times


def _through_proxy(
    proxy: CountingProxy, argv: Sequence[str | Path], timeout_s: float, what: str
) -> tuple[Run, tuple[tuple[float, str], ...]]:
    proxy.reset()
    run = run_measured(argv, timeout_s=timeout_s, env={"DOCKER_HOST": proxy.docker_host})
    run.check(what)
    timeline = tuple((t - run.started_epoch, what) for t, what in proxy.timeline())
    if proxy.uncertain:
        raise BenchError(f"{what}: the proxy lost track of a request stream; counts unknown")
    return run, timeline


def measure(swarm: BenchSwarm, image: str, policy: UpdatePolicy, k: int, out: Output) -> Measured:
    with tempfile.TemporaryDirectory(prefix="phxbench-fanout-") as tmp, CountingProxy() as proxy:
        root = Path(tmp)
        lineages = Lineages(root)
        out.note(f"K={k}: deploying 2 x {k} stand-in services")
        base_targets, our_targets, new_sha256 = _deploy(swarm, image, policy, k, lineages)

        script = root / "baseline.sh"
        script.write_text(baseline_script(base_targets, lineages, swarm, k, new_sha256))
        out.note(f"K={k}: baseline (shell, sequential)")
        base_run, base_timeline = _through_proxy(
            proxy, ["bash", script], 60 + 90 * k, "baseline script"
        )
        _check_served(base_targets, new_sha256, "baseline")
        baseline = PathRun(
            base_run,
            tuple(swarm_times(swarm, base_targets, base_run.started_epoch)),
            base_timeline,
        )

        manifest = _ours_manifest(our_targets, lineages, swarm, k, root)
        out.note(f"K={k}: phoenix-cert rotate --all")
        our_run, our_timeline = _through_proxy(
            proxy,
            [PHOENIX_CERT, "-v", "rotate", "--all", "--manifest", manifest],
            120 + 10 * k,
            "phoenix-cert rotate --all",
        )
        _check_served(our_targets, new_sha256, "phoenix-cert")
        ours = PathRun(
            our_run, tuple(swarm_times(swarm, our_targets, our_run.started_epoch)), our_timeline
        )
        out.note(f"K={k}: swarm alone ({k} forced updates at once, nobody waiting)")
        alone = swarm_alone(swarm, base_targets, timeout_s=60 + 2 * k)
        out.note(f"K={k}: done, load {load_average()}")
        return Measured(k, baseline, ours, alone)


def swarm_alone(
    swarm: BenchSwarm, targets: Sequence[Target], timeout_s: float
) -> tuple[SwarmTimes, ...]:
    """Restart every service at once (ForceUpdate + 1, sent from K threads) and let swarm
    finish; its own records say when. The services serve the same leaf throughout."""
    started = time.time()

    def force(t: Target) -> None:
        raw = swarm.api.inspect_service(t.service_id)
        template = raw["Spec"]["TaskTemplate"]
        template["ForceUpdate"] = int(template.get("ForceUpdate", 0)) + 1
        swarm.api.update_service(
            t.service_id, raw["Version"]["Index"], task_template=template, fetch_current_spec=True
        )

    parallel(force, targets, workers=len(targets))

    def completed() -> bool:
        return all(
            (swarm.api.inspect_service(t.service_id).get("UpdateStatus") or {}).get("State")
            == "completed"
            for t in targets
        )

    poll_until("swarm alone: every forced update completed", completed, timeout_s, 1.0)
    return tuple(swarm_times(swarm, targets, started))


# -- reporting --------------------------------------------------------------------------------
def _values(times: Sequence[float | None]) -> list[float]:
    return sorted(t for t in times if t is not None)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _median_last(times: Sequence[float | None]) -> str:
    values = _values(times)
    if not values:
        return "-"
    return f"{statistics.median(values):.2f}/{values[-1]:.2f}"


def profile_row(k: int, who: str, path: PathRun) -> list[str]:
    started = _values([s.started for s in path.swarm])
    completed = _values([s.completed for s in path.swarm])
    last_completed = completed[-1] if completed else None
    return [
        str(k),
        who,
        _fmt(started[0] if started else None),
        _fmt(started[-1] if started else None),
        _median_last([s.running for s in path.swarm]),
        _median_last([s.completed for s in path.swarm]),
        _fmt(None if last_completed is None else path.run.wall_s - last_completed),
        secs(path.run.wall_s),
    ]


def _span(times: Sequence[SwarmTimes]) -> float | None:
    """From the first update swarm took to the last it completed."""
    started = _values([t.started for t in times])
    completed = _values([t.completed for t in times])
    return completed[-1] - started[0] if started and completed else None


def alone_row(k: int, times: Sequence[SwarmTimes]) -> list[str]:
    started = _values([t.started for t in times])
    completed = _values([t.completed for t in times])
    return [
        str(k),
        "swarm alone",
        _fmt(started[0] if started else None),
        _fmt(started[-1] if started else None),
        _median_last([t.running for t in times]),
        _median_last([t.completed for t in times]),
        "-",
        secs(completed[-1]) if completed else "-",
    ]


def ours_critical_path(path: PathRun) -> list[tuple[str, float | None]]:
    """Milestones of one of our runs, from the transport and from swarm."""
    timeline = path.timeline
    updates = [t for t, what in timeline if what == "POST /services/{id}/update"]
    creates = [t for t, what in timeline if what.endswith("/create")]
    first_update = updates[0] if updates else None
    before = [t for t, _ in timeline if first_update is None or t < first_update]
    after = [t for t, what in timeline if first_update is not None and t > first_update]
    completed = _values([s.completed for s in path.swarm])
    running = _values([s.running for s in path.swarm])
    polls_after = [
        t for t, what in timeline if completed and t >= completed[-1] and what.startswith("GET")
    ]
    return [
        ("first API request", timeline[0][0] if timeline else None),
        ("first object created", creates[0] if creates else None),
        ("requests before the first update", float(len(before))),
        ("first update sent", first_update),
        ("last update sent", updates[-1] if updates else None),
        ("new task running (last)", running[-1] if running else None),
        ("swarm completed (last)", completed[-1] if completed else None),
        ("first request after that", polls_after[0] if polls_after else None),
        ("last API request", after[-1] if after else None),
        ("exit", path.run.wall_s),
    ]


def _top(counts: Counter[str], n: int = 6) -> str:
    return ", ".join(f"{what} {count}" for what, count in counts.most_common(n))


def run(out: Output, image: str, policy: UpdatePolicy, sizes: Sequence[int]) -> None:
    out.begin("fanout", "one (wildcard) certificate mounted by K services, renewed once")
    out.line(policy.services())
    results = per_size(out, sizes, lambda swarm, k: measure(swarm, image, policy, k, out))
    report(out, results, policy)


def report(out: Output, results: Sequence[Measured], policy: UpdatePolicy) -> None:
    one = results[0]
    out.table(
        [
            "K",
            "baseline",
            "ours",
            "ours/baseline",
            f"ours/ours(K={one.k})",
            "API requests base/ours",
            "peak RSS base/ours",
            "CPU base/ours",
            "load base, ours",
        ],
        [
            [
                str(m.k),
                secs(m.baseline.run.wall_s),
                secs(m.ours.run.wall_s),
                f"{m.ours.run.wall_s / m.baseline.run.wall_s:.2f}",
                f"{m.ours.run.wall_s / one.ours.run.wall_s:.2f}",
                f"{len(m.baseline.timeline)}/{len(m.ours.timeline)}",
                f"{m.baseline.run.max_rss_kib // 1024}/{m.ours.run.max_rss_kib // 1024} MiB",
                f"{m.baseline.run.cpu_s:.1f}/{m.ours.run.cpu_s:.1f} s",
                f"{m.baseline.run.load_text}, {m.ours.run.load_text}",
            ]
            for m in results
        ],
    )
    out.line(
        "(CPU: user + system seconds of the process and its children; load: the 1-minute "
        "load average when each run started/ended)"
    )
    out.line("")
    out.line(
        "where the time goes (s from start; swarm's own records: UpdateStatus.StartedAt and "
        "CompletedAt, task running; median/last over services):"
    )
    rows = []
    for m in results:
        rows.append(profile_row(m.k, "baseline", m.baseline))
        rows.append(profile_row(m.k, "ours", m.ours))
        if m.alone:
            rows.append(alone_row(m.k, m.alone))
    out.table(
        ["K", "path", "1st update", "last update", "running", "completed", "after", "end"],
        rows,
    )
    out.line(
        f"('completed' = swarm ended the monitor={policy.monitor_s:g}s period; 'after' = "
        "end - last completed: noticing it, verifying, pruning, recording, exiting; "
        "'swarm alone' = the same K services restarted by K forced updates sent at once, "
        "nobody waiting: the daemon's own time, whoever the client)"
    )
    for m in results:
        ours_span = _span(m.ours.swarm)
        alone_span = _span(m.alone)
        if ours_span is not None and alone_span is not None:
            out.line(
                f"K={m.k}: first update to last completed: ours {ours_span:.2f} s, swarm alone "
                f"{alone_span:.2f} s"
            )
    out.line("")
    out.line(f"ours at K={one.k}, critical path (s from start; from the transport and swarm):")
    out.table(
        ["milestone", "at"],
        [[name, _fmt(value)] for name, value in ours_critical_path(one.ours)],
    )
    base_marks = _marks(one.baseline.run)
    out.line(
        f"baseline at K={one.k}: secrets created {_fmt(base_marks.get('created'))}, "
        f"update returned {_fmt(base_marks.get('updated'))}, checked "
        f"{_fmt(base_marks.get('checked'))}, exit {one.baseline.run.wall_s:.2f}"
    )
    out.line("")
    out.line("Docker API requests by endpoint (ours):")
    for m in results:
        out.line(f"  K={m.k}: {len(m.ours.timeline)}: {_top(m.ours.requests)}")
    out.line("Docker API requests by endpoint (baseline):")
    for m in results:
        out.line(f"  K={m.k}: {len(m.baseline.timeline)}: {_top(m.baseline.requests)}")

    biggest = results[-1]
    out.ratio(
        "fanout",
        biggest.ours.run.wall_s / one.ours.run.wall_s,
        GOAL_SCALING,
        f"ours(K={biggest.k})/ours(K={one.k})",
    )
    out.ratio(
        f"fanout K={biggest.k}",
        biggest.ours.run.wall_s / biggest.baseline.run.wall_s,
        GOAL_VS_BASELINE,
    )
    out.ratio(
        f"one service K={one.k}",
        one.ours.run.wall_s / one.baseline.run.wall_s,
        GOAL_ONE,
    )
    _floors(out, one, biggest)
    _requests_verdict(out, results)


def _floors(out: Output, one: Measured, biggest: Measured) -> None:
    """The same ratios for swarm alone (no client start-up, no waiting, no verifying): a
    lower bound for any client on this machine. A goal below it cannot be met here."""
    alone_one, alone_big = _last_completed(one.alone), _last_completed(biggest.alone)
    if alone_one is None or alone_big is None:
        return
    out.line(
        f"FLOOR swarm alone ({one.k} and {biggest.k} forced updates sent at once, s to the last "
        f"completed): K={biggest.k} {alone_big:.2f} s, K={one.k} {alone_one:.2f} s; "
        f"alone(K={biggest.k})/alone(K={one.k}) = {alone_big / alone_one:.2f} "
        f"(goal for ours {GOAL_SCALING:g}), alone(K={one.k})/baseline(K={one.k}) = "
        f"{alone_one / one.baseline.run.wall_s:.2f} (goal for ours {GOAL_ONE:g})"
    )


def _last_completed(times: Sequence[SwarmTimes]) -> float | None:
    completed = _values([t.completed for t in times])
    return completed[-1] if completed else None


def _requests_verdict(out: Output, results: Sequence[Measured]) -> None:
    """At most linear in K: whole-swarm listings must not grow with K, and the total per
    service must not grow either."""
    whole = {m.k: sum(m.ours.requests[w] for w in WHOLE_SWARM_READS) for m in results}
    total = {m.k: len(m.ours.timeline) for m in results}
    first, last = results[0].k, results[-1].k
    linear = whole[last] <= whole[first] and total[last] / last <= total[first] / first
    listing = "/".join(str(whole[m.k]) for m in results)
    per_service = "/".join(f"{total[m.k] / m.k:.1f}" for m in results)
    out.line(
        f"REQUESTS fanout ours, K={'/'.join(str(m.k) for m in results)}: total "
        f"{'/'.join(str(total[m.k]) for m in results)}, per service {per_service}, "
        f"whole-swarm listings {listing} (goal: at most linear in K, listings constant) "
        f"{'MET' if linear else 'NOT MET'}"
    )


def _marks(run: Run) -> dict[str, float]:
    """The baseline's last `@@` mark of each kind, in s since start."""
    marks: dict[str, float] = {}
    for _, line in run.stderr_lines:
        parts = line.split(" ", 2)
        if line.startswith("@@ ") and len(parts) == 3:
            kind = parts[2].split(" ", 1)[0]
            marks[kind] = float(parts[1]) - run.started_epoch
    return marks
