"""Failure backoff (pure): a leaf whose rollout failed waits before it is tried again.

One hour after the first failure, doubling with each further failure of the same leaf, at
most a day, as cert-manager does for failed issuance. A different leaf on disk (a renewal)
or `--force` lifts it; a successful rollout clears it. Without it the hourly timer would
update and roll back the same service every hour, forever.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

FIRST = dt.timedelta(hours=1)
LONGEST = dt.timedelta(hours=24)


@dataclass(frozen=True)
class Backoff:
    leaf: str  # SHA-256 of the leaf whose rollouts failed
    failures: int  # consecutive failed rollouts of that leaf
    until: dt.datetime

    def holds_back(self, leaf: str, now: dt.datetime) -> bool:
        return leaf == self.leaf and now < self.until


def after_failure(previous: Backoff | None, leaf: str, now: dt.datetime) -> Backoff:
    failures = previous.failures + 1 if previous is not None and previous.leaf == leaf else 1
    delay = min(FIRST * 2 ** min(failures - 1, 16), LONGEST)
    return Backoff(leaf, failures, now + delay)
