"""Value types of `phoenix-cert status`: one certificate, its services, its last runs.

Built by the pure `build.build_status`; rendered by `render` (text, JSON) and `metrics`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from phoenix_certbot.rotation.journal import OpenIntent
from phoenix_certbot.rotation.plan import CertDigest


class Deployment(str, Enum):
    """Where a service stands against the certificate on disk."""

    UP_TO_DATE = "up_to_date"
    WRONG_FILE_ATTRS = "wrong_file_attrs"  # the right version, another uid, gid or mode
    BEHIND = "behind"  # mounts an older managed version (or an old file, an old restart)
    REVERTED = "reverted"  # mounts an object that is not one of our versions (a redeploy)
    MISSING = "missing"  # the service, or the mount, is not there
    UNKNOWN = "unknown"  # the certificate on disk cannot be read: nothing to compare with

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")

    @property
    def severity(self) -> int:
        """Worst first: a service with several mounts is as bad as its worst mount."""
        return _SEVERITY[self]


_SEVERITY = {
    Deployment.UP_TO_DATE: 0,
    Deployment.WRONG_FILE_ATTRS: 1,
    Deployment.BEHIND: 2,
    Deployment.UNKNOWN: 3,
    Deployment.REVERTED: 4,
    Deployment.MISSING: 5,
}


@dataclass(frozen=True)
class DiskProblem:
    """A certificate whose files could not be used. `digest` is set when the files were
    read but a check failed (expired, key mismatch, SAN...): what is there is still shown."""

    message: str
    check: str
    digest: CertDigest | None = None


@dataclass(frozen=True)
class RunRecord:
    """One recorded run from the state directory: a rotation or a verification."""

    time: dt.datetime | None
    result: str  # "ok" | "failed" | whatever an older or newer version wrote
    urls: tuple[tuple[str, bool], ...] = ()  # verification only: URL -> served the leaf


@dataclass(frozen=True)
class CertHistory:
    last_rotation: RunRecord | None = None
    last_verify: RunRecord | None = None
    held_leaf: str | None = None  # set by `phoenix-cert rollback`: rotate leaves this leaf alone
    # Failed rollouts since the last good one, and the backoff they earned; None when the
    # state directory does not say.
    failures: int | None = None
    backoff_until: dt.datetime | None = None
    backoff_leaf: str | None = None  # the leaf whose rollouts failed


@dataclass(frozen=True)
class History:
    """What the state directory says, as values (see `history.history_from_state`)."""

    certs: Mapping[str, CertHistory] = field(default_factory=dict)
    # (certificate, service) -> leaf SHA-256 the service was last force-restarted for
    restarted: Mapping[tuple[str, str], str] = field(default_factory=dict)


@dataclass(frozen=True)
class DiskStatus:
    not_after: dt.datetime | None = None
    sha256: str | None = None  # leaf SHA-256
    error: str | None = None
    check: str | None = None  # which certificate check failed, see errors.CertificateError

    @property
    def ok(self) -> bool:
        return self.error is None

    def days_left(self, now: dt.datetime) -> float | None:
        if self.not_after is None:
            return None
        return (self.not_after - now).total_seconds() / 86400.0


@dataclass(frozen=True)
class MountStatus:
    """One thing a service gets from a certificate: a secret, a config, a host file, or a
    forced restart (services that read the certificate files through a bind mount)."""

    kind: str  # "secret" | "config" | "file" | "restart"
    target: str  # mount target or file path; "" for a restart
    base: str  # base name of the object, or the file path; "" for a restart
    mounted: str | None  # what is there now: object name, or None
    state: Deployment
    detail: str = ""
    # The leaf certificate that version carries (our label), or that the service was last
    # restarted for: comparable with the SHA-256 of the certificate on disk.
    leaf_sha256: str | None = None


@dataclass(frozen=True)
class ServiceStatus:
    service: str
    state: Deployment
    mounts: tuple[MountStatus, ...] = ()
    detail: str = ""  # service-level, e.g. "service does not exist"

    @property
    def details(self) -> tuple[str, ...]:
        found = [self.detail] if self.detail else []
        found.extend(
            m.detail for m in self.mounts if m.detail and m.state is not Deployment.UP_TO_DATE
        )
        return tuple(found)


@dataclass(frozen=True)
class CertStatus:
    name: str
    disk: DiskStatus
    services: tuple[ServiceStatus, ...]
    history: CertHistory

    @property
    def up_to_date(self) -> bool:
        return self.disk.ok and all(s.state is Deployment.UP_TO_DATE for s in self.services)


@dataclass(frozen=True)
class StatusReport:
    manifest: Path
    now: dt.datetime  # when the report was made; days left count from here
    certificates: tuple[CertStatus, ...]
    # Left in the journal by a run that did not finish (or written by one running now):
    # the next run that takes the lock finishes or undoes each.
    open_intents: tuple[OpenIntent, ...] = ()

    @property
    def ok(self) -> bool:
        return all(c.up_to_date for c in self.certificates) and not self.open_intents
