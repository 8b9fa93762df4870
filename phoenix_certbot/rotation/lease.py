"""The swarm-wide run lease: runs that change the swarm take turns across every manager.

The lease is one config (`DEFAULT_LEASE_NAME`) whose labels say who holds it and until
when (`rotation.lease_terms`). Every write is atomic in swarm's raft store:

- taking a free name: `create` fails with a conflict when the name exists;
- renewing, taking over an expired lease and releasing: a label update that carries the
  version index read before; swarm refuses it ("update out of sequence") when anyone
  wrote in between, so of two waiters taking over the same expired lease only one wins.

The object is never removed by us: removing by id cannot be made conditional, and a
release followed by a removal could delete a lease someone else had just taken.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Protocol

from phoenix_certbot.errors import LockTimeout, PartialFailure, PhoenixError, WriteConflict
from phoenix_certbot.rotation import lease_terms as terms_
from phoenix_certbot.rotation.lease_terms import DEFAULT_LEASE_NAME, DEFAULT_TTL_S, Holder, Terms
from phoenix_certbot.rotation.state import DEFAULT_LOCK_TIMEOUT_S, StateStore
from phoenix_certbot.swarm.model import VersionedConfig

log = logging.getLogger(__name__)

LEASE_ENV = "PHOENIX_CERT_LEASE"  # another lease name: tests, or two tools on one swarm
POLL_S = 1.0
_DATA = b"phoenix-certbot run lease; see docs/operations.md (Swarm-wide lease)\n"
_SUBCOMMAND = re.compile(r"[a-z][a-z-]{0,30}")


class LeaseLost(PartialFailure):
    """Another run holds the swarm lease now (ours expired, say while Docker was away):
    this run sends no further service update and stops; its intents stay for the next."""


def unfenced() -> None:
    """The fence of steps that run without a lease (tests of the engine alone)."""


class LeaseStore(Protocol):
    """The `SwarmClient` calls the lease needs."""

    def read_config(self, name: str) -> VersionedConfig | None: ...

    def create_config(
        self, name: str, data: bytes, labels: Mapping[str, str]
    ) -> VersionedConfig: ...

    def relabel_config(self, config: VersionedConfig, labels: Mapping[str, str]) -> None: ...


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# -- who we are, and whether a holder on this machine still runs -------------------------
def _machine() -> str:
    """Boot id and pid namespace: a pid means the same process only where both match."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
        return f"{boot}/{Path('/proc/self/ns/pid').stat().st_ino}"
    except OSError:
        return ""


def _started(pid: int) -> str | None:
    """The start time of process `pid` (clock ticks since boot), None if there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def _process(pid: int) -> str:
    machine, started = _machine(), _started(pid)
    return f"{machine}/{started}" if machine and started else ""


def holder_gone(holder: Holder | None) -> bool:
    """True only when the holder ran on this machine, in this pid namespace, and that
    process no longer exists (its pid is gone or now belongs to a younger process)."""
    if holder is None or not holder.process:
        return False
    machine = _machine()
    if not machine or not holder.process.startswith(machine + "/"):
        return False  # another host or container: only the expiry tells
    return _process(holder.pid) != holder.process


def _command() -> str:
    """`phoenix-cert rotate`, `certbot renew`: argv's program and subcommand, nothing else
    (a later argument may be a secret, such as certbot's --eab-hmac-key)."""
    words = [Path(sys.argv[0]).name] if sys.argv and sys.argv[0] else []
    if len(sys.argv) > 1 and _SUBCOMMAND.fullmatch(sys.argv[1]):
        words.append(sys.argv[1])
    return " ".join(words)


def this_run() -> Holder:
    pid = os.getpid()
    return Holder(
        host=socket.gethostname(),
        pid=pid,
        run=secrets.token_hex(6),
        command=_command(),
        process=_process(pid),
    )


def lease_name() -> str:
    return os.environ.get(LEASE_ENV) or DEFAULT_LEASE_NAME


# -- the lease -----------------------------------------------------------------------------
class SwarmLease:
    """`acquire()` waits (bounded) for the lease, a thread renews it, `release()` frees it.

    A run killed hard leaves the lease to expire after its TTL (sooner for a waiter on
    the same machine, which sees the holder's process is gone)."""

    def __init__(
        self,
        swarm: LeaseStore,
        name: str = DEFAULT_LEASE_NAME,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        poll_s: float = POLL_S,
        holder: Holder | None = None,
        now: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.swarm = swarm
        self.name = name
        self.ttl_s = ttl_s
        self.poll_s = poll_s
        self.holder = holder or this_run()
        self._now = now
        self._config: VersionedConfig | None = None
        self._acquired: dt.datetime | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self.lost_to: Terms | None = None  # set when someone else took the lease from us

    # -- acquiring -----------------------------------------------------------------------
    def acquire(self, timeout_s: float) -> None:
        """Take the lease, waiting at most `timeout_s` (one try even at 0): LockTimeout
        naming the holder when it is still held then."""
        deadline = time.monotonic() + timeout_s
        seen: tuple[int, float] | None = None  # (version, when first seen): staleness
        waiting_said = False
        last: Terms | None = None
        while True:
            found = self.swarm.read_config(self.name)
            if found is None:
                if self._try_create():
                    break
            else:
                if seen is None or seen[0] != found.version:
                    seen = (found.version, time.monotonic())
                last = terms_.from_labels(dict(found.labels))
                standing = terms_.judge(
                    last,
                    unchanged_for_s=time.monotonic() - seen[1],
                    holder_gone=holder_gone(last.holder),
                )
                if standing.takeable:
                    if self._try_take(found, last, standing):
                        break
                elif not waiting_said:
                    log.warning(
                        "%s; waiting up to %.0f s", terms_.describe(self.name, last), timeout_s
                    )
                    waiting_said = True
            left = deadline - time.monotonic()
            if left <= 0:
                held = terms_.describe(self.name, last) if last else f"swarm lease {self.name}"
                raise LockTimeout(
                    f"{held}: still held after waiting {timeout_s:.0f} s "
                    "(see docs/operations.md, Swarm-wide lease)"
                )
            time.sleep(min(self.poll_s, left))
        if waiting_said:
            log.warning("swarm lease %s taken; going on", self.name)
        self._start_renewing()

    def _try_create(self) -> bool:
        now = self._now()
        terms = terms_.held(self.holder, now, self.ttl_s)
        try:
            self._config = self.swarm.create_config(self.name, _DATA, terms_.to_labels(terms))
        except WriteConflict:
            return False  # another run created it a moment ago: read it again
        self._acquired = now
        log.debug("swarm lease %s created", self.name)
        return True

    def _try_take(self, found: VersionedConfig, last: Terms, standing: terms_.Standing) -> bool:
        now = self._now()
        terms = terms_.held(self.holder, now, self.ttl_s)
        try:
            self.swarm.relabel_config(found, terms_.to_labels(terms))
        except WriteConflict:
            return False  # another waiter took it first (or its holder renewed it)
        if not self._confirm():
            return False
        self._acquired = now
        if standing is not terms_.Standing.FREE:
            log.warning(
                "took over swarm lease %s from %s (%s)",
                self.name,
                terms_.holder_of(last),
                standing.value,
            )
        return True

    def _confirm(self) -> bool:
        """Read our write back for its new version; False when someone wrote after us."""
        found = self.swarm.read_config(self.name)
        if found is None or self._run_of(found) != self.holder.run:
            return False
        self._config = found
        return True

    @staticmethod
    def _run_of(config: VersionedConfig) -> str | None:
        holder = terms_.from_labels(dict(config.labels)).holder
        return holder.run if holder else None

    # -- renewing ------------------------------------------------------------------------
    def _start_renewing(self) -> None:
        self._renewer = threading.Thread(
            target=self._renew_loop, name=f"lease-{self.name}", daemon=True
        )
        self._renewer.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(terms_.renewal_interval(self.ttl_s)):
            if not self.renew():
                return

    def renew(self) -> bool:
        """Extend the lease by a TTL; False once it is lost (taken over, removed)."""
        config = self._config
        if config is None:
            return False
        terms = terms_.held(self.holder, self._now(), self.ttl_s, self._acquired)
        try:
            self.swarm.relabel_config(config, terms_.to_labels(terms))
            if self._confirm():
                return True
        except WriteConflict:
            pass
        except PhoenixError as exc:  # Docker away for a moment: try again next time
            log.warning("swarm lease %s not renewed: %s", self.name, exc)
            return True
        found = self._read_quietly()
        if found is not None and self._run_of(found) == self.holder.run:
            self._config = found  # our earlier write landed; its answer was lost
            return True
        self.lost_to = terms_.from_labels(dict(found.labels)) if found else None
        self._config = None
        log.error(
            "swarm lease %s lost: %s",
            self.name,
            terms_.describe(self.name, self.lost_to) if self.lost_to else "it was removed",
        )
        return False

    def _read_quietly(self) -> VersionedConfig | None:
        try:
            return self.swarm.read_config(self.name)
        except PhoenixError:
            return None

    # -- fencing -------------------------------------------------------------------------
    def check(self) -> None:
        """The fence before each service update (forward or back): LeaseLost, naming who
        holds the lease now, unless this run still does. One read of the lease; once lost,
        lost for good (the renewal stops, the release writes nothing)."""
        if self._config is not None:
            found = self.swarm.read_config(self.name)
            terms = terms_.from_labels(dict(found.labels)) if found else None
            holder = terms.holder if terms is not None else None
            ours = holder is not None and holder.run == self.holder.run
            if ours and terms is not None and terms.state == terms_.HELD:
                return
            self.lost_to, self._config = terms, None
        now = terms_.describe(self.name, self.lost_to) if self.lost_to else "it was removed"
        raise LeaseLost(
            f"swarm lease {self.name} lost ({now}): this run sent no further service update; "
            "the next run finishes or undoes what it left (see docs/operations.md, "
            "Swarm-wide lease)"
        )

    # -- releasing -----------------------------------------------------------------------
    def release(self) -> None:
        """Free the lease for the next run. Never raises: if the write fails, the lease
        expires by itself."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=60)
        config, self._config = self._config, None
        if config is None:
            return
        mine = terms_.held(self.holder, self._now(), self.ttl_s, self._acquired)
        try:
            self.swarm.relabel_config(config, terms_.to_labels(terms_.released(mine, self._now())))
        except PhoenixError as exc:
            log.warning("swarm lease %s not released (%s); it expires by itself", self.name, exc)


@contextlib.contextmanager
def swarm_lease(
    swarm: LeaseStore, timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
) -> Iterator[SwarmLease]:
    """Hold the swarm-wide lease (named by $PHOENIX_CERT_LEASE, else the default) for the
    block: for a change to the swarm made under the state directory's lock alone."""
    lease = SwarmLease(swarm, lease_name())
    lease.acquire(timeout_s)
    try:
        yield lease
    finally:
        lease.release()


@contextlib.contextmanager
def run_lock(
    store: StateStore, swarm: LeaseStore, timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
) -> Iterator[SwarmLease]:
    """What every run that changes the swarm holds: the state directory's lock (cheap,
    serialises runs of this host), then the swarm-wide lease (serialises every manager).
    Both waits together take at most `timeout_s`."""
    started = time.monotonic()
    with (
        store.locked(timeout_s),
        swarm_lease(swarm, max(0.0, timeout_s - (time.monotonic() - started))) as lease,
    ):
        yield lease
