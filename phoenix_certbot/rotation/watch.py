"""One view of swarm shared by every service the engine waits for.

Each waiting service says when it next needs to look (`read(service_id, not_before)`); one
poll serves every waiter that is due then, with two API calls whatever their number
(`SwarmClient.watch`: the services by id, then their tasks). Thirty-two services waited for
at once cost two requests per poll instead of sixty-four, which leaves the daemon's CPU to
restarting their tasks. No thread of its own: the first due waiter polls for all, the
others wait for its result. Due times (and "now") are rounded up to the next point of a
grid of GRID_S, so that waiters whose updates went out a few milliseconds apart still meet
at the same poll.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from phoenix_certbot.swarm.client import NotFound, SwarmClient
from phoenix_certbot.swarm.model import ServiceState, TaskState

GRID_S = 0.05


@dataclass(frozen=True)
class Seen:
    """A service and its tasks as one poll saw them."""

    state: ServiceState
    tasks: tuple[TaskState, ...]
    at: float  # when that poll began (the watch's clock)


@dataclass(frozen=True)
class _Failed:
    error: Exception
    at: float


class Watch:
    def __init__(self, swarm: SwarmClient, clock: Callable[[], float] = time.monotonic) -> None:
        self._swarm = swarm
        self._clock = clock
        self._cond = threading.Condition()
        self._due: dict[str, list[float]] = {}  # service id -> not_before of each waiter
        self._seen: dict[str, Seen | _Failed] = {}
        self._polling = False
        self.polls = 0

    def now(self) -> float:
        return self._clock()

    def read(self, service_id: str, not_before: float) -> Seen:
        """The service as seen by the first poll that begins at or after `not_before` (the
        watch's clock); raises what that poll raised, or NotFound if the service is gone."""
        not_before = math.ceil(max(not_before, self._clock()) / GRID_S) * GRID_S
        with self._cond:
            self._due.setdefault(service_id, []).append(not_before)
            try:
                while True:
                    found = self._seen.get(service_id)
                    if found is not None and found.at >= not_before:
                        if isinstance(found, _Failed):
                            raise found.error
                        return found
                    if self._polling:
                        self._cond.wait()
                        continue
                    wait = self._next_due() - self._clock()
                    if wait > 0:
                        self._cond.wait(wait)
                        continue
                    self._polling = True
                    ids = self._due_ids()
                    self._cond.release()
                    try:
                        self._poll(ids)
                    finally:
                        self._cond.acquire()
                        self._polling = False
                        self._cond.notify_all()
            finally:
                waiting = self._due[service_id]
                waiting.remove(not_before)
                if not waiting:
                    del self._due[service_id]

    def _next_due(self) -> float:
        """The earliest time a waiter needs a poll for, among those the last poll did not
        satisfy yet (a satisfied waiter may not have woken up to take its result)."""
        return min(
            due
            for ident, dues in self._due.items()
            for due in dues
            if (found := self._seen.get(ident)) is None or found.at < due
        )

    def _due_ids(self) -> set[str]:
        """The services some unsatisfied waiter needs now: the others' answers would be
        too old for them by the time they are due."""
        now = self._clock()
        return {
            ident
            for ident, dues in self._due.items()
            for due in dues
            if due <= now and ((found := self._seen.get(ident)) is None or found.at < due)
        }

    def _poll(self, ids: set[str]) -> None:
        """Called without the lock; records its findings under it."""
        began = self._clock()
        self.polls += 1
        try:
            services, tasks = self._swarm.watch(ids)
        except Exception as exc:  # every waiter of this poll gets it
            with self._cond:
                for ident in ids:
                    self._seen[ident] = _Failed(exc, began)
            return
        with self._cond:
            for ident in ids:
                state = services.get(ident)
                if state is None:
                    gone = NotFound(f"{self._swarm.where}: service {ident} no longer exists")
                    self._seen[ident] = _Failed(gone, began)
                else:
                    self._seen[ident] = Seen(state, tasks.get(ident, ()), began)
