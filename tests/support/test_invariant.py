"""The serving invariant's checker, on hand-made traces and task timelines (pure)."""

from __future__ import annotations

from tests.support.invariant import (
    Kind,
    Observation,
    TaskSpan,
    Window,
    check,
    serving_windows,
    summarise,
)

OLD, NEW, WRONG = "a" * 64, "b" * 64, "c" * 64
VALID = {OLD: "old", NEW: "new"}


def trace(*items: tuple[float, Kind | str]) -> list[Observation]:
    """(time, leaf or error kind) -> observations of 5 ms each."""
    seen = []
    for at, what in items:
        if isinstance(what, Kind):
            seen.append(Observation(at, 0.005, what, None, what.value))
        else:
            seen.append(Observation(at, 0.005, Kind.LEAF, what))
    return seen


def every(
    start: float, end: float, what: Kind | str, step: float = 0.05
) -> list[tuple[float, Kind | str]]:
    count = round((end - start) / step)
    return [(start + i * step, what) for i in range(count)]


# A stop-first update: task t1 runs from 1.0, t2 is created at 10.0 (t1 told to stop),
# t1 leaves running at 10.4, t2 runs from 11.0.
UPDATE = [
    TaskSpan("t1", "1", created=0.5, running=1.0, ended=10.4),
    TaskSpan("t2", "1", created=10.0, running=11.0, ended=None),
]


def test_serving_windows_of_a_stop_first_update() -> None:
    windows = serving_windows(UPDATE, ready_grace_s=2.0, stop_lead_s=0.5)
    assert [(w.start, w.end) for w in windows] == [(3.0, 9.5), (13.0, float("inf"))]


def test_serving_stops_at_the_crash_when_it_comes_before_any_replacement() -> None:
    crashed = [
        TaskSpan("t1", "1", created=0.0, running=1.0, ended=6.0),
        TaskSpan("t2", "1", created=6.5, running=None, ended=6.8),  # failed at start
        TaskSpan("t3", "1", created=7.3, running=8.0, ended=None),
    ]
    windows = serving_windows(crashed, ready_grace_s=2.0, stop_lead_s=0.5)
    assert [(w.start, w.end) for w in windows] == [(3.0, 5.5), (10.0, float("inf"))]


def test_a_stopped_daemon_ends_the_serving_of_every_task_running_then() -> None:
    # t1's end is only recorded at 30.0, once the daemon is back; it was stopped at 20.0.
    tasks = [
        TaskSpan("t1", "1", created=0.0, running=1.0, ended=30.0),
        TaskSpan("t2", "1", created=30.2, running=31.0, ended=None),
    ]
    windows = serving_windows(tasks, ready_grace_s=2.0, stop_lead_s=0.5, daemon_stops=[20.0])
    assert [(w.start, w.end) for w in windows] == [(3.0, 20.0), (33.0, float("inf"))]


def test_slots_are_independent() -> None:
    tasks = [
        TaskSpan("a1", "1", created=0.0, running=1.0, ended=None),
        TaskSpan("b1", "2", created=5.0, running=6.0, ended=None),
    ]
    windows = serving_windows(tasks, ready_grace_s=0.0, stop_lead_s=0.0)
    assert sorted((w.start, w.end) for w in windows) == [(1.0, float("inf")), (6.0, float("inf"))]


def test_old_then_new_with_a_refusal_during_the_restart_holds() -> None:
    seen = trace(*every(3.0, 10.0, OLD), *every(10.0, 12.0, Kind.REFUSED), *every(12.0, 15.0, NEW))
    verdict = check(seen, VALID, serving_windows(UPDATE))
    assert verdict.ok, verdict.explain()
    assert verdict.summary.longest_without_valid_s == 2.0
    assert verdict.summary.leaves == {"old": 140, "new": 60}
    assert verdict.summary.first_seen["new"] == 12.0


def test_every_kind_without_a_certificate_counts_as_refused_during_a_restart() -> None:
    seen = trace(
        *every(3.0, 10.0, OLD),
        (10.1, Kind.TLS),
        (10.2, Kind.TIMEOUT),
        (11.2, Kind.REFUSED),
        *every(12.0, 14.0, NEW),
    )
    assert check(seen, VALID, serving_windows(UPDATE)).ok


def test_a_refusal_while_a_task_serves_is_a_violation() -> None:
    seen = trace(*every(3.0, 5.0, OLD), (5.0, Kind.REFUSED), *every(5.05, 9.0, OLD))
    verdict = check(seen, VALID, serving_windows(UPDATE))
    assert not verdict.ok
    assert [v.observation.at for v in verdict.violations] == [5.0]
    assert "task t1 serving" in verdict.violations[0].reason


def test_a_wrong_leaf_is_a_violation_even_during_a_restart() -> None:
    seen = trace(*every(3.0, 10.0, OLD), (10.5, WRONG), *every(12.0, 14.0, NEW))
    verdict = check(seen, VALID, serving_windows(UPDATE))
    assert [v.reason for v in verdict.violations] == [
        f"served leaf {WRONG[:16]} is neither old nor new"
    ]
    assert verdict.summary.leaves[WRONG[:12]] == 1


def test_other_errors_are_violations_anywhere() -> None:
    seen = trace(*every(3.0, 10.0, OLD), (10.5, Kind.OTHER), *every(12.0, 14.0, NEW))
    assert not check(seen, VALID, serving_windows(UPDATE)).ok


def test_an_outage_the_test_caused_allows_refusals_while_a_task_serves() -> None:
    seen = trace(*every(3.0, 5.0, OLD), *every(5.0, 7.0, Kind.REFUSED), *every(7.0, 9.0, OLD))
    serving = serving_windows(UPDATE)
    assert not check(seen, VALID, serving).ok
    assert check(seen, VALID, serving, allowed=[Window(4.9, 7.1, "daemon stopped")]).ok


def test_a_hole_in_the_trace_is_a_violation() -> None:
    seen = trace(*every(3.0, 5.0, OLD), *every(7.0, 9.0, OLD))
    verdict = check(seen, VALID, serving_windows(UPDATE), max_hole_s=1.5)
    assert [round(v.observation.at, 2) for v in verdict.violations] == [7.0]
    assert round(verdict.summary.longest_hole_s, 2) == 2.05


def test_an_empty_trace_proves_nothing() -> None:
    verdict = check([], VALID, [])
    assert not verdict.ok
    assert "empty trace" in verdict.explain()


def test_longest_without_a_valid_leaf_runs_to_the_end_when_it_never_comes_back() -> None:
    seen = trace(*every(0.0, 1.0, OLD), *every(1.0, 3.0, Kind.REFUSED))
    summary = summarise(seen, VALID)
    assert round(summary.longest_without_valid_s, 3) == round(2.95 + 0.005 - 1.0, 3)
    assert summary.by_kind == {"leaf": 20, "refused": 40}
