"""The serving invariant, as a pure check over a probe trace.

    At every instant each managed service serves a valid certificate, old or new, never
    none: every probe sees a valid leaf, or a connection refused only during a task restart.

A trace is what `tests.support.prober.Prober` observed: one `Observation` per TLS handshake
attempt (time, the leaf's SHA-256 or the kind of error). The check needs two more facts:
which leaves are valid (old and new, by SHA-256) and when the service had a task *serving*.

**A connection refused** is any failed attempt that showed no certificate at all: refused,
timed out, or closed during the handshake. With Docker's default userland proxy in front of
a host-mode port, a stopped task's port is not simply refused: the proxy accepts and closes
(a TLS EOF) or the connection hangs while the next container starts. What never counts as
one is a certificate that is neither old nor new.

**During a task restart**, precisely: such a failure at time t is allowed when no task of
the service was serving at t. A task serves from `ready_grace_s` after Docker
reports it running (the server inside binds its port a moment after its process starts)
until it is told to stop, minus `stop_lead_s`. "Told to stop" is the earlier of two times
Docker records: the creation of the next task in the same slot (swarm creates the
replacement in the same store transaction in which it sets the old task's desired state to
shutdown) and the time the task left the running state (a crash, a kill). `stop_lead_s`
covers the moment between a process dying and Docker recording it. The spans come from the
task timeline read from Docker (`TaskSpan`, built by `tests.support.prober.TaskWatcher`).
A test that stops the daemon of the service's node (which stops its containers) passes the
time it did: a task running then serves no longer (Docker only records that task's end once
the daemon is back); one that adds an outage of its own passes it as a `Window`.

Everything else is a violation: a leaf that is neither old nor new, a failed connection
while a task was serving, any other error (no route to the host, say), and a hole in the
trace longer than `max_hole_s` (a trace with holes proves nothing).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

READY_GRACE_S = 2.0
STOP_LEAD_S = 0.5
MAX_HOLE_S = 1.5


class Kind(enum.Enum):
    LEAF = "leaf"  # a handshake completed: `Observation.leaf` says which leaf
    REFUSED = "refused"
    TIMEOUT = "timeout"
    TLS = "tls"  # connected, but the handshake failed (reset, EOF, alert)
    OTHER = "other"


# Failed attempts that showed no certificate: "connection refused" in the module docstring.
NO_CERTIFICATE = frozenset({Kind.REFUSED, Kind.TIMEOUT, Kind.TLS})


@dataclass(frozen=True)
class Observation:
    at: float  # wall-clock start of the attempt (time.time(), comparable with Docker's)
    duration: float
    kind: Kind
    leaf: str | None = None  # SHA-256 of the DER leaf, for Kind.LEAF
    detail: str = ""


@dataclass(frozen=True)
class Window:
    start: float
    end: float
    why: str = ""

    def holds(self, at: float) -> bool:
        return self.start <= at <= self.end


@dataclass(frozen=True)
class TaskSpan:
    """One task of the service as Docker recorded it (times are wall-clock seconds)."""

    task_id: str
    slot: str  # the slot number, or the node id for a global service
    created: float
    running: float | None  # when it entered the running state, if it ever did
    ended: float | None  # when it left the running state (or failed before), if it did


def serving_windows(
    tasks: Iterable[TaskSpan],
    ready_grace_s: float = READY_GRACE_S,
    stop_lead_s: float = STOP_LEAD_S,
    daemon_stops: Sequence[float] = (),
) -> list[Window]:
    """When some task was serving, by the definition in the module docstring;
    `daemon_stops`: times the node's daemon was stopped (ending every task running then)."""
    by_slot: dict[str, list[TaskSpan]] = {}
    for task in tasks:
        by_slot.setdefault(task.slot, []).append(task)
    windows: list[Window] = []
    for spans in by_slot.values():
        spans.sort(key=lambda s: s.created)
        for index, span in enumerate(spans):
            if span.running is None:
                continue
            stops = [s.created for s in spans[index + 1 :] if s.created >= span.created][:1]
            if span.ended is not None:
                stops.append(span.ended)
            stops += [t + stop_lead_s for t in daemon_stops if t >= span.running]
            end = min(stops) - stop_lead_s if stops else float("inf")
            start = span.running + ready_grace_s
            if end > start:
                windows.append(Window(start, end, f"task {span.task_id[:12]} serving"))
    return windows


@dataclass(frozen=True)
class Violation:
    observation: Observation
    reason: str

    def __str__(self) -> str:
        o = self.observation
        return f"{o.at:.3f} (+{o.duration * 1000:.0f} ms) {o.kind.value}: {self.reason}"


@dataclass(frozen=True)
class Summary:
    probes: int
    by_kind: Mapping[str, int]
    leaves: Mapping[str, int]  # label (or SHA-256 prefix) -> probes that saw it
    longest_without_valid_s: float  # first probe without a valid leaf -> next probe with one
    longest_hole_s: float  # the longest time between two probe starts
    first_seen: Mapping[str, float]  # label -> time of the first probe that saw it

    def line(self) -> str:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.by_kind.items()))
        return (
            f"{self.probes} probes ({kinds}); longest without a valid leaf "
            f"{self.longest_without_valid_s:.2f} s; longest hole {self.longest_hole_s:.2f} s"
        )


@dataclass(frozen=True)
class Verdict:
    violations: tuple[Violation, ...]
    summary: Summary
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.summary.probes > 0 and not self.violations

    def explain(self, limit: int = 12) -> str:
        lines = [self.summary.line(), *self.notes]
        lines += [str(v) for v in self.violations[:limit]]
        if len(self.violations) > limit:
            lines.append(f"... and {len(self.violations) - limit} more violations")
        return "\n".join(lines)


def summarise(trace: Sequence[Observation], valid: Mapping[str, str]) -> Summary:
    """Counts and the longest windows; `valid` maps SHA-256 -> label ("old", "new")."""
    ordered = sorted(trace, key=lambda o: o.at)
    by_kind: dict[str, int] = {}
    leaves: dict[str, int] = {}
    first_seen: dict[str, float] = {}
    longest = 0.0
    bad_since: float | None = None
    hole = 0.0
    for index, o in enumerate(ordered):
        if index:
            hole = max(hole, o.at - ordered[index - 1].at)
        by_kind[o.kind.value] = by_kind.get(o.kind.value, 0) + 1
        if o.kind is Kind.LEAF and o.leaf is not None:
            label = valid.get(o.leaf, o.leaf[:12])
            leaves[label] = leaves.get(label, 0) + 1
            first_seen.setdefault(label, o.at)
        if o.kind is Kind.LEAF and o.leaf in valid:
            if bad_since is not None:
                longest = max(longest, o.at - bad_since)
                bad_since = None
        elif bad_since is None:
            bad_since = o.at
    if bad_since is not None and ordered:
        last = ordered[-1]
        longest = max(longest, last.at + last.duration - bad_since)
    return Summary(len(ordered), by_kind, leaves, longest, hole, first_seen)


def check(
    trace: Sequence[Observation],
    valid: Mapping[str, str],
    serving: Sequence[Window],
    allowed: Sequence[Window] = (),
    max_hole_s: float = MAX_HOLE_S,
) -> Verdict:
    """Every probe saw a valid leaf, or was refused while no task was serving (`serving`,
    from `serving_windows`) or inside an outage the test caused itself (`allowed`)."""
    ordered = sorted(trace, key=lambda o: o.at)
    violations: list[Violation] = []
    notes: list[str] = []
    if not ordered:
        notes.append("empty trace")
    for index, o in enumerate(ordered):
        quiet = o.at - ordered[index - 1].at if index else 0.0
        if quiet > max_hole_s:
            violations.append(Violation(o, f"no probe for {quiet:.2f} s before this one"))
        if o.kind is Kind.LEAF:
            if o.leaf not in valid:
                leaf = str(o.leaf)[:16]
                violations.append(Violation(o, f"served leaf {leaf} is neither old nor new"))
            continue
        if o.kind in NO_CERTIFICATE:
            if any(w.holds(o.at) for w in allowed):
                continue
            during = [w for w in serving if w.holds(o.at)]
            if not during:
                continue
            violations.append(Violation(o, f"{o.detail} while {during[0].why}"))
            continue
        violations.append(Violation(o, o.detail or o.kind.value))
    return Verdict(tuple(violations), summarise(ordered, valid), tuple(notes))
