"""Cheap checks of the benchmarks' measuring parts (no Docker, a few seconds): they return
numbers, and the request-counting proxy counts what passes through it. No speed asserted."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench import fanout
from bench import window as window_mod
from bench.common import PHOENIX_CERT, VENV_BIN, Output, Run
from bench.proxy import CountingProxy, endpoint
from bench.startup import Command, time_commands
from bench.swarm_env import UpdatePolicy
from tests.support.invariant import Kind, Observation


def test_time_commands_returns_wall_times_and_peak_rss() -> None:
    timings = time_commands(
        {
            "python": Command((str(VENV_BIN / "python"), "-c", "pass")),
            "help": Command((str(PHOENIX_CERT), "--help")),
        },
        repeat=2,
        warmup=0,
    )
    assert set(timings) == {"python", "help"}
    for timing in timings.values():
        assert len(timing.wall.values) == 2
        assert all(0 < v < 30 for v in timing.wall.values)
        # The launcher keeps the benchmark's own size out of the child's peak RSS.
        assert all(1024 < v < 1024 * 1024 for v in timing.rss_kib.values)


def _sink(listener: socket.socket, received: list[bytes]) -> None:
    """A stand-in engine: takes one connection and reads it to the end."""
    conn, _ = listener.accept()
    with conn:
        while chunk := conn.recv(65536):
            received.append(chunk)


def test_counting_proxy_counts_requests_and_skips_bodies(tmp_path: Path) -> None:
    engine = tmp_path / "engine.sock"
    received: list[bytes] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(engine))
        listener.listen(1)
        sink = threading.Thread(target=_sink, args=(listener, received), daemon=True)
        sink.start()
        body = b'{"Name": "x\\r\\n\\r\\nGET /fake HTTP/1.1"}'
        stream = (
            b"GET /v1.41/info HTTP/1.1\r\nHost: docker\r\n\r\n"
            b"POST /v1.41/secrets/create HTTP/1.1\r\nHost: docker\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            + b"GET /v1.41/services/abc123?insertDefaults=false HTTP/1.1\r\nHost: docker\r\n\r\n"
        )  # fmt: skip
        with CountingProxy(upstream=str(engine)) as proxy:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.connect(str(proxy.path))
                for i in range(0, len(stream), 7):  # split anywhere, as TCP may
                    client.sendall(stream[i : i + 7])
                client.shutdown(socket.SHUT_WR)
                sink.join(10)
            deadline = time.monotonic() + 10
            while proxy.total() < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            counts = proxy.counts()
    assert b"".join(received) == stream
    assert counts == {"GET /info": 1, "POST /secrets/create": 1, "GET /services/{id}": 1}
    assert not proxy.uncertain


def test_endpoint_names_collections_not_objects() -> None:
    assert endpoint("/v1.41/services/abc/update?version=3") == "/services/{id}/update"
    assert endpoint("/version") == "/version"
    assert endpoint("/v1.41/secrets/create") == "/secrets/create"
    assert endpoint("/v1.41/tasks?filters=x") == "/tasks?filters"
    assert endpoint("/v1.41/services?status=1&filters=%7B%7D") == "/services?filters"


# -- fan-out and restart window: the pure parts of their reports ------------------------------
def _run(wall_s: float, stderr: tuple[tuple[float, str], ...] = (), epoch: float = 1000.0) -> Run:
    return Run(("x",), 0, wall_s, 50 * 1024, "", stderr, started_epoch=epoch)


def _path(wall_s: float, k: int, polls_per_service: int) -> fanout.PathRun:
    timeline: list[tuple[float, str]] = [(0.2, "GET /version"), (0.21, "GET /info")]
    timeline += [(0.22 + i / 100, w) for i, w in enumerate(sorted(fanout.WHOLE_SWARM_READS))]
    timeline += [(0.3, "POST /secrets/create"), (0.31, "POST /secrets/create")]
    timeline += [(0.4 + i / 1000, "POST /services/{id}/update") for i in range(k)]
    timeline += [(1.0 + i / 1000, "GET /tasks") for i in range(k * polls_per_service)]
    swarm = tuple(fanout.SwarmTimes(0.41, 2.1 + i / 10, 7.1 + i / 10) for i in range(k))
    return fanout.PathRun(_run(wall_s), swarm, tuple(timeline))


def test_fanout_report_prints_every_goal_and_the_critical_path(
    capsys: pytest.CaptureFixture[str],
) -> None:
    results = [
        fanout.Measured(k, _path(7.0 * k, k, 30), _path(6.8 + k / 10, k, 10), _path(7, k, 0).swarm)
        for k in (1, 8)
    ]
    out = Output()
    fanout.report(out, results, UpdatePolicy())
    printed = capsys.readouterr().out
    assert "RATIO fanout ours(K=8)/ours(K=1) = 1.10 (goal <= 1.5) MET" in printed
    assert "RATIO fanout K=8 ours/baseline = 0.14 (goal <= 0.1) NOT MET" in printed
    assert "RATIO one service K=1 ours/baseline = 0.99 (goal <= 0.95) NOT MET" in printed
    assert "whole-swarm listings 3/3" in printed and printed.count(" MET") >= 2
    assert "K=8: first update to last completed: ours 7.39 s, swarm alone 7.39 s" in printed
    assert (
        "FLOOR swarm alone (1 and 8 forced updates sent at once, s to the last completed): "
        "K=8 7.80 s, K=1 7.10 s; alone(K=8)/alone(K=1) = 1.10 (goal for ours 1.5), "
        "alone(K=1)/baseline(K=1) = 1.01 (goal for ours 0.95)"
    ) in printed
    milestones = dict(fanout.ours_critical_path(results[0].ours))
    assert milestones["first update sent"] == pytest.approx(0.4)
    assert milestones["swarm completed (last)"] == pytest.approx(7.1)
    assert milestones["requests before the first update"] == 7


def test_fanout_requests_verdict_fails_when_listings_grow_with_k(
    capsys: pytest.CaptureFixture[str],
) -> None:
    small, big = _path(7, 1, 10), _path(8, 8, 10)
    grown = fanout.PathRun(big.run, big.swarm, big.timeline + ((5.0, "GET /services"),) * 8)
    fanout._requests_verdict(
        Output(), [fanout.Measured(1, small, small), fanout.Measured(8, big, grown)]
    )
    assert "listings 3/11" in capsys.readouterr().out.replace("whole-swarm ", "")


def test_fanout_baseline_script_is_valid_bash(tmp_path: Path) -> None:
    swarm = SimpleNamespace(name=lambda suffix: f"phxbench-0-{suffix}")
    lineages = SimpleNamespace(fullchain=lambda _: tmp_path / "f.pem", privkey=lambda _: tmp_path)
    targets = [fanout.Target(f"phxbench-0-s{i}", f"id{i}", 4000 + i, "s.test") for i in range(3)]
    script = fanout.baseline_script(targets, lineages, swarm, 3, "ab" * 32)  # type: ignore[arg-type]
    assert script.count("docker secret create") == 2
    assert script.count("docker service update --detach=false") == 3
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)


def test_window_is_the_longest_stretch_without_a_valid_leaf_during_the_run() -> None:
    good, other = "a" * 64, "b" * 64
    trace = [Observation(1000.0 + i * 0.05, 0.004, Kind.LEAF, good) for i in range(20)]
    trace += [Observation(1001.0 + i * 0.05, 0.004, Kind.REFUSED) for i in range(30)]
    trace += [Observation(1002.5 + i * 0.05, 0.004, Kind.LEAF, other) for i in range(20)]
    trace += [Observation(1010.0, 0.004, Kind.REFUSED)]  # after the run: not counted
    window, probes = window_mod.window_of(trace, _run(5.0), {good, other})
    assert window == pytest.approx(1.5)
    assert probes == 70
