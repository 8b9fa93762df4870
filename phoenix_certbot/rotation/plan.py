"""The rotation plan: what must change so that every service mounts the certificates on
disk. Pure: manifest, certificate digests, swarm snapshot and recorded state in; a `Plan`
value out. `apply` executes exactly this value; `phoenix-cert plan` prints it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from phoenix_certbot.errors import OperationFailed
from phoenix_certbot.manifest.model import (
    CertificateEntry,
    ObjectKind,
    ServiceBinding,
    Source,
    SwarmObjectRef,
)
from phoenix_certbot.naming import versioned_name
from phoenix_certbot.rotation.mounts import classify
from phoenix_certbot.swarm.model import LABEL_SHA256, ServiceState, SwarmSnapshot


class NameConflict(OperationFailed):
    """A versioned name exists already but holds other content (or is not ours)."""


@dataclass(frozen=True)
class CertDigest:
    """What the plan needs to know of a certificate on disk: hashes, never the bytes."""

    name: str
    leaf_sha256: str
    not_after: dt.datetime
    payload_sha256: Mapping[Source, str]


@dataclass(frozen=True)
class NewObject:
    kind: ObjectKind
    base: str
    name: str
    cert: str
    source: Source
    sha256: str
    leaf_sha256: str
    not_after: dt.datetime


@dataclass(frozen=True)
class MountChange:
    kind: ObjectKind
    base: str
    target: str
    old_name: str | None  # None: the service does not mount anything there yet
    new_name: str
    uid: str
    gid: str
    mode: int
    cert: str


@dataclass(frozen=True)
class FileWrite:
    path: Path
    cert: str
    source: Source
    mode: int
    owner: str | None
    sha256: str


@dataclass(frozen=True)
class ServiceChange:
    service: str
    certs: tuple[str, ...]  # every certificate the service uses
    mounts: tuple[MountChange, ...] = ()
    files: tuple[FileWrite, ...] = ()
    force: bool = False  # bump ForceUpdate: files written in place, restart-only, --force
    # The certificates this update deploys (a mount, a file, or a restart for them): only
    # their failures roll the service back. Empty means all of `certs` (plain --force).
    changed: tuple[str, ...] = ()
    restart_for: tuple[str, ...] = ()  # restart-only certificates restarted for a new leaf

    @property
    def changed_certs(self) -> tuple[str, ...]:
        return self.changed or self.certs


@dataclass(frozen=True)
class Check:
    cert: str
    url: str
    server_name: str
    expected_sha256: str


@dataclass(frozen=True)
class RecordedState:
    """From the state directory: what was last deployed/verified, by leaf fingerprint."""

    restarted: Mapping[tuple[str, str], str] = field(default_factory=dict)  # (cert, service)
    verified: Mapping[str, str] = field(default_factory=dict)  # cert -> leaf sha256


@dataclass(frozen=True)
class Plan:
    certs: tuple[str, ...]
    creates: tuple[NewObject, ...]
    changes: tuple[ServiceChange, ...]
    checks: tuple[Check, ...]
    up_to_date: tuple[str, ...]  # services that already mount the current versions
    problems: tuple[str, ...]  # e.g. a service named in the manifest that does not exist
    leaves: tuple[tuple[str, str], ...] = ()  # (certificate, leaf SHA-256 it deploys)

    @property
    def empty(self) -> bool:
        return not self.creates and not self.changes and not self.checks

    def leaf_of(self, cert: str) -> str | None:
        return dict(self.leaves).get(cert)


def server_name_of(url: str, server_name: str | None) -> str:
    return server_name or urlsplit(url).hostname or ""


@dataclass
class _Builder:
    """Accumulates one service's changes across every certificate it uses."""

    mounts: list[MountChange] = field(default_factory=list)
    files: list[FileWrite] = field(default_factory=list)
    certs: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    restart_for: list[str] = field(default_factory=list)
    force: bool = False


def _mount_change(
    entry: CertificateEntry,
    digest: CertDigest,
    service: ServiceState,
    ref: SwarmObjectRef,
    snapshot: SwarmSnapshot,
    creates: dict[tuple[ObjectKind, str], NewObject],
) -> MountChange | None:
    sha = digest.payload_sha256[ref.source]
    name = versioned_name(ref.name, sha)
    verdict = classify(ref, sha, service, snapshot)
    if verdict.current:
        return None
    mount = verdict.mount
    existing = snapshot.object_by_name(ref.kind, name)
    if existing is not None and existing.label(LABEL_SHA256) != sha:
        raise NameConflict(
            f"{ref.kind.value} {name} exists but is not the {ref.source.value} of "
            f"{entry.name} (label {LABEL_SHA256}={existing.label(LABEL_SHA256)}); "
            "remove or rename it"
        )
    if existing is None:
        creates.setdefault(
            (ref.kind, name),
            NewObject(
                kind=ref.kind,
                base=ref.name,
                name=name,
                cert=entry.name,
                source=ref.source,
                sha256=sha,
                leaf_sha256=digest.leaf_sha256,
                not_after=digest.not_after,
            ),
        )
    return MountChange(
        kind=ref.kind,
        base=ref.name,
        target=ref.target,
        old_name=mount.object_name if mount else None,
        new_name=name,
        uid=ref.uid,
        gid=ref.gid,
        mode=ref.mode,
        cert=entry.name,
    )


def _file_writes(
    entry: CertificateEntry,
    digest: CertDigest,
    binding: ServiceBinding,
    file_hashes: Mapping[Path, str | None],
) -> list[FileWrite]:
    writes = []
    for target in binding.files:
        sha = digest.payload_sha256[target.source]
        if file_hashes.get(target.path) != sha:
            writes.append(
                FileWrite(
                    path=target.path,
                    cert=entry.name,
                    source=target.source,
                    mode=target.mode,
                    owner=target.owner,
                    sha256=sha,
                )
            )
    return writes


def build_plan(
    entries: Sequence[CertificateEntry],
    digests: Mapping[str, CertDigest],
    snapshot: SwarmSnapshot,
    *,
    file_hashes: Mapping[Path, str | None] | None = None,
    state: RecordedState | None = None,
    force: bool = False,
) -> Plan:
    file_hashes = file_hashes or {}
    state = state or RecordedState()
    creates: dict[tuple[ObjectKind, str], NewObject] = {}
    per_service: dict[str, _Builder] = {}
    problems: list[str] = []

    for entry in entries:
        digest = digests[entry.name]
        for binding in entry.services:
            service = snapshot.service(binding.service)
            if service is None:
                problems.append(
                    f"certificate {entry.name}: service {binding.service} does not exist"
                )
                continue
            builder = per_service.setdefault(binding.service, _Builder())
            builder.certs.append(entry.name)
            mounts = [
                change
                for ref in binding.objects
                if (change := _mount_change(entry, digest, service, ref, snapshot, creates))
            ]
            files = _file_writes(entry, digest, binding, file_hashes)
            builder.mounts.extend(mounts)
            builder.files.extend(files)
            restarted = state.restarted.get((entry.name, binding.service))
            restart = binding.restart_only and (force or restarted != digest.leaf_sha256)
            if mounts or files or restart:
                builder.changed.append(entry.name)
            if restart:
                builder.restart_for.append(entry.name)
            builder.force = builder.force or force or restart

    changes = [
        ServiceChange(
            service=name,
            certs=tuple(dict.fromkeys(b.certs)),
            mounts=tuple(b.mounts),
            files=tuple(b.files),
            force=b.force or bool(b.files),
            changed=tuple(dict.fromkeys(b.changed)),
            restart_for=tuple(dict.fromkeys(b.restart_for)),
        )
        for name, b in sorted(per_service.items())
        if b.mounts or b.files or b.force
    ]
    changed_certs = {c for change in changes for c in change.certs}
    checks = [
        Check(
            cert=entry.name,
            url=v.url,
            server_name=server_name_of(v.url, v.server_name),
            expected_sha256=digests[entry.name].leaf_sha256,
        )
        for entry in entries
        if entry.name in changed_certs
        or state.verified.get(entry.name) != digests[entry.name].leaf_sha256
        for v in entry.verify
    ]
    changed = {c.service for c in changes}
    return Plan(
        certs=tuple(e.name for e in entries),
        creates=tuple(creates.values()),
        changes=tuple(changes),
        checks=tuple(checks),
        up_to_date=tuple(n for n in sorted(per_service) if n not in changed),
        problems=tuple(problems),
        leaves=tuple((e.name, digests[e.name].leaf_sha256) for e in entries),
    )
