"""The swarm-wide run lease as values (pure): who holds it, until when, may a waiter take it.

The lease is one config in the swarm whose labels carry these terms (`rotation.lease`
reads and writes it). Time is passed in, so tests drive it with a fake clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from phoenix_certbot.swarm.model import LABEL_LEASE

DEFAULT_LEASE_NAME = "phoenix-certbot-lease"
DEFAULT_TTL_S = 30.0
RENEWALS_PER_TTL = 3  # a holder renews three times per TTL: two missed renewals are fine

HELD = "held"
RELEASED = "released"
_HOST = LABEL_LEASE + ".host"
_PID = LABEL_LEASE + ".pid"
_RUN = LABEL_LEASE + ".run"
_COMMAND = LABEL_LEASE + ".command"
_PROCESS = LABEL_LEASE + ".process"
_ACQUIRED = LABEL_LEASE + ".acquired"
_RENEWED = LABEL_LEASE + ".renewed"
_EXPIRES = LABEL_LEASE + ".expires"


@dataclass(frozen=True)
class Holder:
    """One run: `run` is random, so two runs of one process are told apart. `process`
    (boot id, pid namespace, start time) lets a waiter on the same machine see that the
    holder is gone without waiting for the expiry."""

    host: str
    pid: int
    run: str
    command: str = ""
    process: str = ""

    def describe(self) -> str:
        what = f"{self.command} " if self.command else ""
        return f"{what}(pid {self.pid} on {self.host}, run {self.run})"


@dataclass(frozen=True)
class Terms:
    holder: Holder | None  # the holder, or the last one once released; None if unreadable
    state: str  # HELD | RELEASED | anything else (damaged labels): takeable
    acquired: dt.datetime | None = None
    renewed: dt.datetime | None = None
    expires: dt.datetime | None = None

    @property
    def ttl_s(self) -> float:
        """The holder's own TTL: how long a renewal extends the lease."""
        if self.renewed is None or self.expires is None:
            return DEFAULT_TTL_S
        return max(0.0, (self.expires - self.renewed).total_seconds())


class Standing(str, Enum):
    FREE = "free"  # released by its last holder
    HELD = "held"  # a live holder: wait
    EXPIRED = "expired"  # seen unchanged (not renewed) for a whole TTL
    ABANDONED = "abandoned"  # its holder ran on this machine and has exited
    DAMAGED = "damaged"  # labels we cannot read (edited by hand)

    @property
    def takeable(self) -> bool:
        return self is not Standing.HELD


def held(
    holder: Holder, now: dt.datetime, ttl_s: float, acquired: dt.datetime | None = None
) -> Terms:
    """The terms a holder writes when it takes (or renews, with `acquired`) the lease."""
    return Terms(
        holder=holder,
        state=HELD,
        acquired=acquired or now,
        renewed=now,
        expires=now + dt.timedelta(seconds=ttl_s),
    )


def released(terms: Terms, now: dt.datetime) -> Terms:
    """The terms left behind by a clean release: the last holder stays, for operators."""
    return Terms(terms.holder, RELEASED, terms.acquired, now, now)


def judge(terms: Terms, *, unchanged_for_s: float, holder_gone: bool = False) -> Standing:
    """Whether a waiter may take the lease.

    `unchanged_for_s` is how long the waiter has seen the same version of the lease object,
    by its own monotonic clock: a live holder renews it several times per TTL, so one not
    renewed for a whole TTL is expired. The written expiry time is for operators only:
    judged by the waiter's wall clock, a manager whose clock runs ahead (a VM's drifts)
    would take over a live lease. `holder_gone` is the waiter's own check that a holder on
    this machine has exited.
    """
    if terms.state == RELEASED:
        return Standing.FREE
    if terms.state != HELD or terms.holder is None or terms.expires is None:
        return Standing.DAMAGED
    if holder_gone:
        return Standing.ABANDONED
    if unchanged_for_s >= terms.ttl_s:
        return Standing.EXPIRED
    return Standing.HELD


def renewal_interval(ttl_s: float) -> float:
    return ttl_s / RENEWALS_PER_TTL


# -- labels ----------------------------------------------------------------------------
def _time(moment: dt.datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds")


def _parse_time(text: str | None) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(text or "")
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def to_labels(terms: Terms) -> dict[str, str]:
    labels = {LABEL_LEASE: terms.state}
    if terms.holder is not None:
        h = terms.holder
        labels.update(
            {_HOST: h.host, _PID: str(h.pid), _RUN: h.run, _COMMAND: h.command, _PROCESS: h.process}
        )
    labels.update(
        {
            _ACQUIRED: _time(terms.acquired),
            _RENEWED: _time(terms.renewed),
            _EXPIRES: _time(terms.expires),
        }
    )
    return labels


def from_labels(labels: Mapping[str, str]) -> Terms:
    """Terms from the config's labels. Damaged labels give terms that `judge` finds
    takeable: a lease nobody can read must not block every run forever."""
    holder = None
    pid = labels.get(_PID, "")
    if labels.get(_RUN) and pid.isdigit():
        holder = Holder(
            host=labels.get(_HOST, ""),
            pid=int(pid),
            run=labels[_RUN],
            command=labels.get(_COMMAND, ""),
            process=labels.get(_PROCESS, ""),
        )
    return Terms(
        holder=holder,
        state=labels.get(LABEL_LEASE, ""),
        acquired=_parse_time(labels.get(_ACQUIRED)),
        renewed=_parse_time(labels.get(_RENEWED)),
        expires=_parse_time(labels.get(_EXPIRES)),
    )


# -- what an operator reads ------------------------------------------------------------
def holder_of(terms: Terms) -> str:
    return terms.holder.describe() if terms.holder else "an unknown holder"


def describe(name: str, terms: Terms) -> str:
    """`swarm lease NAME held by rotate (pid 12 on host, run ab12) since ...; expires ...`"""
    who = holder_of(terms)
    since = f" since {_time(terms.acquired)}" if terms.acquired else ""
    until = f"; expires {_time(terms.expires)} unless renewed" if terms.expires else ""
    return f"swarm lease {name} held by {who}{since}{until}"
