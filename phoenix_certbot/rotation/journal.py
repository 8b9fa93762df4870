"""The intent journal: before a service update, what it will change and how to undo it,
written durably (file, then directory, fsynced), so that the next run can finish or undo an
update that a kill, a crash or an outage interrupted.

One file per service being updated, `state_dir/journal/<service id>.json`, mode 0600 in a
0700 folder: it holds the previous bytes of `files` targets, which may be a private key.
Nothing of it is ever logged; `FileBackup.previous` stays out of `repr`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from phoenix_certbot.errors import OperationFailed, PartialFailure
from phoenix_certbot.fsutil import remove_durable_all, write_durable_all
from phoenix_certbot.manifest.model import ObjectKind
from phoenix_certbot.swarm.model import MountRef, MountSlot

log = logging.getLogger(__name__)
FORMAT = 1


class Phase(str, Enum):
    UPDATE = "update"  # the rollout: from mounts_before to mounts_after
    ROLLBACK = "rollback"  # decided to go back to mounts_before


class Origin(str, Enum):
    ROTATE = "rotate"  # a failure counts towards the certificate's backoff
    ROLLBACK = "rollback"  # `phoenix-cert rollback`: holds the certificate when finished


def now_text() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class FileBackup:
    path: Path
    mode: int
    owner: str | None
    previous: bytes | None = field(repr=False)  # None: the file did not exist
    written_sha256: str  # what the rollout writes

    @property
    def previous_sha256(self) -> str | None:
        return hashlib.sha256(self.previous).hexdigest() if self.previous is not None else None


@dataclass(frozen=True)
class LeafCheck:
    """One URL of a changed certificate: the leaf it must serve after the update, and what it
    served before anything changed (None: nothing answered with a certificate)."""

    cert: str
    url: str
    server_name: str
    expected: str
    before: str | None
    before_ok: bool  # answered 2xx before the run


@dataclass(frozen=True)
class Intent:
    service_id: str
    service: str
    origin: Origin
    phase: Phase
    leaves: tuple[tuple[str, str], ...]  # (certificate, leaf the rollout deploys) changed here
    spec_before: tuple[tuple[str, str], ...]  # ServiceState.spec_parts before the update
    version_before: int
    mounts_before: tuple[MountSlot, ...]
    mounts_after: tuple[MountSlot, ...]
    force_before: int
    force_after: int
    files: tuple[FileBackup, ...] = ()
    checks: tuple[LeafCheck, ...] = ()
    restarted: tuple[str, ...] = ()  # certificates of restart-only bindings
    hold: tuple[tuple[str, str], ...] = ()  # rollback command: (certificate, leaf on disk)
    version_after: int | None = None  # the service version right after our update
    force_restore: int | None = None  # ForceUpdate our rollback writes
    created: str = field(default_factory=now_text)
    # The run's rollout, shared by the intents it writes: its failure is counted once for
    # the backoff, whichever run (the one that failed, or the one that finishes its
    # rollback) records it first (`StateStore.record_rotation`).
    rollout: str = ""

    @property
    def certs(self) -> tuple[str, ...]:
        return tuple(cert for cert, _ in self.leaves)


class IntentUnreadable(PartialFailure):
    """An intent file that cannot be read: what the interrupted run did is unknown."""


@dataclass(frozen=True)
class OpenIntent:
    """An intent still in the journal, as `status` and `verify` show it: who, what and
    since when, never the bytes it backs up. `error`: the file cannot be read (then only
    `path` is known)."""

    path: Path
    service_id: str = ""
    service: str = ""
    certs: tuple[str, ...] = ()
    phase: Phase | None = None
    created: dt.datetime | None = None
    error: str = ""

    def age_s(self, now: dt.datetime) -> float | None:
        return None if self.created is None else (now - self.created).total_seconds()


def _created(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


class Journal:
    def __init__(self, state_dir: Path) -> None:
        self.directory = state_dir / "journal"

    def path(self, service_id: str) -> Path:
        return self.directory / f"{service_id}.json"

    def write(self, intent: Intent) -> None:
        """Durable when this returns, or OperationFailed (a full disk, say) and nothing
        else happened."""
        self.write_all((intent,))

    def write_all(self, intents: Sequence[Intent]) -> None:
        """`write` for a wave of services: each file fsynced, the folder once for all."""
        if not intents:
            return
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.directory.chmod(0o700)  # made by hand with other modes: key bytes go in here
            write_durable_all([(self.path(i.service_id), _encode(i)) for i in intents], 0o600)
        except OSError as exc:
            where = self.path(intents[0].service_id) if len(intents) == 1 else self.directory
            names = ", ".join(i.service for i in intents)
            raise OperationFailed(
                f"{where}: cannot write the intent of an update of {names}: {exc.strerror or exc}"
            ) from None

    def clear(self, service_id: str) -> None:
        self.clear_all((service_id,))

    def clear_all(self, service_ids: Sequence[str]) -> None:
        remove_durable_all([self.path(i) for i in service_ids])

    def read_all(self) -> tuple[Intent, ...]:
        if not self.directory.is_dir():
            return ()
        intents = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                intents.append(_decode(path.read_bytes()))
            except _UNREADABLE as exc:
                raise IntentUnreadable(
                    f"{path}: cannot read the intent of an interrupted update ({exc}); check "
                    "that the service it names serves a valid certificate, then delete the file"
                ) from None
        return tuple(sorted(intents, key=lambda i: (i.created, i.service)))

    def peek(self) -> tuple[OpenIntent, ...]:
        """The intents a run left that did not finish (or that a run writes now), for
        `status` and `verify`: read without the lock and never resolved, so never raises.
        A file removed while we read was resolved meanwhile; one that cannot be read, or a
        folder that cannot be listed, is shown with its error. Writes are atomic renames:
        no half-written file is ever read."""
        try:  # not glob: it hides a folder we may not list
            paths = sorted(p for p in self.directory.iterdir() if p.name.endswith(".json"))
        except FileNotFoundError:
            return ()
        except OSError as exc:
            return (OpenIntent(self.directory, error=f"cannot list: {exc.strerror or exc}"),)
        found = []
        for path in paths:
            try:
                intent = _decode(path.read_bytes())
            except FileNotFoundError:
                continue
            except _UNREADABLE as exc:  # messages name positions and keys, never content
                found.append(OpenIntent(path, error=str(exc) or type(exc).__name__))
                continue
            found.append(
                OpenIntent(
                    path,
                    intent.service_id,
                    intent.service,
                    intent.certs,
                    intent.phase,
                    _created(intent.created),
                )
            )
        return tuple(found)


_UNREADABLE = (OSError, ValueError, KeyError, TypeError)


# -- JSON ----------------------------------------------------------------------------------
def _mount(ref: MountRef | None) -> dict[str, Any] | None:
    if ref is None:
        return None
    return {
        "id": ref.object_id,
        "name": ref.object_name,
        "uid": ref.uid,
        "gid": ref.gid,
        "mode": ref.mode,
    }


def _slot(slot: MountSlot) -> dict[str, Any]:
    return {"kind": slot.kind.value, "target": slot.target, "mount": _mount(slot.mount)}


def _read_slot(raw: dict[str, Any]) -> MountSlot:
    kind = ObjectKind(raw["kind"])
    mount = raw["mount"]
    ref = (
        None
        if mount is None
        else MountRef(
            kind=kind,
            object_id=str(mount["id"]),
            object_name=str(mount["name"]),
            target=str(raw["target"]),
            uid=str(mount["uid"]),
            gid=str(mount["gid"]),
            mode=int(mount["mode"]),
        )
    )
    return MountSlot(kind, str(raw["target"]), ref)


def _encode(intent: Intent) -> bytes:
    document = {
        "format": FORMAT,
        "service_id": intent.service_id,
        "service": intent.service,
        "origin": intent.origin.value,
        "phase": intent.phase.value,
        "leaves": [list(pair) for pair in intent.leaves],
        "spec_before": dict(intent.spec_before),
        "version_before": intent.version_before,
        "version_after": intent.version_after,
        "mounts_before": [_slot(s) for s in intent.mounts_before],
        "mounts_after": [_slot(s) for s in intent.mounts_after],
        "force_before": intent.force_before,
        "force_after": intent.force_after,
        "force_restore": intent.force_restore,
        "files": [
            {
                "path": str(f.path),
                "mode": f.mode,
                "owner": f.owner,
                "previous": None if f.previous is None else base64.b64encode(f.previous).decode(),
                "written_sha256": f.written_sha256,
            }
            for f in intent.files
        ],
        "checks": [
            {
                "cert": c.cert,
                "url": c.url,
                "server_name": c.server_name,
                "expected": c.expected,
                "before": c.before,
                "before_ok": c.before_ok,
            }
            for c in intent.checks
        ],
        "restarted": list(intent.restarted),
        "hold": [list(pair) for pair in intent.hold],
        "created": intent.created,
        "rollout": intent.rollout,
    }
    # No indent: only then does json use its C encoder. Each service of a wildcard carries
    # every URL of the certificate, so a wave of 32 journals 32 x 32 checks, on the
    # critical path (`python -m json.tool FILE` shows one indented).
    return (json.dumps(document, sort_keys=True) + "\n").encode()


def _decode(data: bytes) -> Intent:
    raw = json.loads(data)
    if raw.get("format") != FORMAT:
        raise ValueError(f"unknown format {raw.get('format')!r}")
    return Intent(
        service_id=str(raw["service_id"]),
        service=str(raw["service"]),
        origin=Origin(raw["origin"]),
        phase=Phase(raw["phase"]),
        leaves=tuple((str(c), str(leaf)) for c, leaf in raw["leaves"]),
        spec_before=tuple(sorted((str(k), str(v)) for k, v in raw["spec_before"].items())),
        version_before=int(raw["version_before"]),
        version_after=None if raw["version_after"] is None else int(raw["version_after"]),
        mounts_before=tuple(_read_slot(s) for s in raw["mounts_before"]),
        mounts_after=tuple(_read_slot(s) for s in raw["mounts_after"]),
        force_before=int(raw["force_before"]),
        force_after=int(raw["force_after"]),
        force_restore=None if raw["force_restore"] is None else int(raw["force_restore"]),
        files=tuple(
            FileBackup(
                path=Path(f["path"]),
                mode=int(f["mode"]),
                owner=f["owner"],
                previous=None if f["previous"] is None else base64.b64decode(f["previous"]),
                written_sha256=str(f["written_sha256"]),
            )
            for f in raw["files"]
        ),
        checks=tuple(
            LeafCheck(
                cert=str(c["cert"]),
                url=str(c["url"]),
                server_name=str(c["server_name"]),
                expected=str(c["expected"]),
                before=c["before"],
                before_ok=bool(c["before_ok"]),
            )
            for c in raw["checks"]
        ),
        restarted=tuple(str(c) for c in raw["restarted"]),
        hold=tuple((str(c), str(leaf)) for c, leaf in raw["hold"]),
        created=str(raw["created"]),
        rollout=str(raw.get("rollout", "")),  # absent in intents of earlier versions
    )
