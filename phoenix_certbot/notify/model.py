"""Value types of notifications: what happened to one certificate, and a message."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import Enum

from phoenix_certbot.manifest.model import NotifyOn


class EventKind(str, Enum):
    ROTATED = "rotated"
    ROLLED_BACK = "rolled back"
    ROLLBACK_FAILED = "rollback failed"
    UPDATE_FAILED = "update failed"
    SKIPPED_INVALID = "skipped: fails its checks"

    @property
    def failed(self) -> bool:
        return self is not EventKind.ROTATED


@dataclass(frozen=True)
class Event:
    """What one run did to one certificate in one service ("" for a certificate skipped
    before any service was touched)."""

    certificate: str
    service: str
    kind: EventKind
    reason: str = ""


@dataclass(frozen=True)
class RunSummary:
    """A rotation run as far as notifications care (`outcome.summarize`)."""

    events: tuple[Event, ...] = ()

    @property
    def failures(self) -> tuple[Event, ...]:
        return tuple(e for e in self.events if e.kind.failed)

    @property
    def rotations(self) -> tuple[Event, ...]:
        return tuple(e for e in self.events if not e.kind.failed)


@dataclass(frozen=True)
class Expiring:
    certificate: str
    not_after: dt.datetime
    days_left: float


@dataclass(frozen=True)
class Message:
    """One notification. `kind` None is `notify-test`. `certificates` are the ones it is
    about, for the once-a-day memory."""

    kind: NotifyOn | None
    title: str
    body: str
    certificates: tuple[str, ...] = ()
