"""`build_status`: where every certificate and service stands (pure).

Manifest, what was read from disk, one swarm snapshot and the recorded history in; a
`StatusReport` out. Mounts are judged by `rotation.mounts.classify`, as the plan and
verify judge them (files by hash, restarts recorded per leaf), so a service shown "up to
date" is one that `phoenix-cert plan` leaves alone. Unlike the plan, it also tells why the
others differ: an older managed version, another owner or mode, a foreign object, or
nothing at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from phoenix_certbot.manifest.model import (
    CertificateEntry,
    FileTarget,
    Manifest,
    ServiceBinding,
    SwarmObjectRef,
)
from phoenix_certbot.naming import HASH_CHARS
from phoenix_certbot.rotation.mounts import MountState, classify, file_attrs
from phoenix_certbot.rotation.plan import CertDigest
from phoenix_certbot.status.model import (
    CertHistory,
    CertStatus,
    Deployment,
    DiskProblem,
    DiskStatus,
    History,
    MountStatus,
    ServiceStatus,
    StatusReport,
)
from phoenix_certbot.swarm.model import LABEL_LEAF_SHA256, ServiceState, SwarmSnapshot

DiskReading = CertDigest | DiskProblem
_UNREADABLE = "the certificate on disk cannot be read; nothing to compare with"


def _disk(reading: DiskReading | None) -> tuple[DiskStatus, CertDigest | None]:
    if reading is None:
        return DiskStatus(error="not read", check="unknown"), None
    if isinstance(reading, CertDigest):
        return DiskStatus(not_after=reading.not_after, sha256=reading.leaf_sha256), reading
    found = reading.digest
    return (
        DiskStatus(
            not_after=found.not_after if found else None,
            sha256=found.leaf_sha256 if found else None,
            error=reading.message,
            check=reading.check,
        ),
        found,
    )


def _object_mount(
    ref: SwarmObjectRef, service: ServiceState, digest: CertDigest | None, snapshot: SwarmSnapshot
) -> MountStatus:
    sha = digest.payload_sha256.get(ref.source) if digest is not None else None
    verdict = classify(ref, sha, service, snapshot)
    mount, mounted = verdict.mount, verdict.mounted
    name = mount.object_name if mount else None
    leaf = mounted.label(LABEL_LEAF_SHA256) if mounted is not None else None

    def status(state: Deployment, detail: str = "", leaf: str | None = leaf) -> MountStatus:
        return MountStatus(ref.kind.value, ref.target, ref.name, name, state, detail, leaf)

    state = verdict.state
    if mount is None or state is MountState.MISSING:
        return status(Deployment.MISSING, f"no {ref.kind.value} mounted at {ref.target}")
    if state in {MountState.FOREIGN, MountState.UNROTATED}:
        return status(
            Deployment.REVERTED,
            f"{ref.target} mounts {name}, not a managed version of {ref.name}",
            leaf=None,
        )
    if state is MountState.UNKNOWN:
        why = _UNREADABLE if digest is None else f"no {ref.source.value} on disk to compare with"
        return status(Deployment.UNKNOWN, why)
    if state is MountState.BEHIND:
        return status(
            Deployment.BEHIND,
            f"{ref.target} mounts {name}; the certificate on disk is {verdict.expected}",
        )
    if state is MountState.WRONG_FILE_ATTRS:
        return status(
            Deployment.WRONG_FILE_ATTRS,
            f"{ref.target} mounted as {file_attrs(mount.uid, mount.gid, mount.mode)}; "
            f"the manifest says {file_attrs(ref.uid, ref.gid, ref.mode)}",
        )
    return status(Deployment.UP_TO_DATE)


def _file_mount(
    target: FileTarget, digest: CertDigest | None, file_hashes: Mapping[Path, str | None]
) -> MountStatus:
    path = str(target.path)

    def status(state: Deployment, mounted: str | None, detail: str = "") -> MountStatus:
        return MountStatus("file", path, path, mounted, state, detail)

    if target.path not in file_hashes:
        return status(Deployment.UNKNOWN, None, f"{path} could not be read")
    found = file_hashes[target.path]
    if found is None:
        return status(Deployment.MISSING, None, f"{path} does not exist")
    shown = f"sha256:{found[:HASH_CHARS]}"
    if digest is None:
        return status(Deployment.UNKNOWN, shown, _UNREADABLE)
    if digest.payload_sha256.get(target.source) != found:
        return status(
            Deployment.BEHIND, shown, f"{path} differs from the {target.source.value} on disk"
        )
    return status(Deployment.UP_TO_DATE, shown)


def _restart(
    cert: str, service: str, digest: CertDigest | None, restarted: Mapping[tuple[str, str], str]
) -> MountStatus:
    last = restarted.get((cert, service))
    shown = f"restarted for {last[:HASH_CHARS]}" if last else None
    if digest is None:
        return MountStatus("restart", "", "", shown, Deployment.UNKNOWN, _UNREADABLE, last)
    if last == digest.leaf_sha256:
        return MountStatus("restart", "", "", shown, Deployment.UP_TO_DATE, leaf_sha256=last)
    why = f"last restarted for {last[:HASH_CHARS]}" if last else "never restarted by us"
    return MountStatus(
        "restart",
        "",
        "",
        shown,
        Deployment.BEHIND,
        f"reads the certificate files but was not restarted since they changed ({why})",
        last,
    )


def _service(
    entry: CertificateEntry,
    binding: ServiceBinding,
    digest: CertDigest | None,
    snapshot: SwarmSnapshot,
    history: History,
    file_hashes: Mapping[Path, str | None],
) -> ServiceStatus:
    service = snapshot.service(binding.service)
    if service is None:
        return ServiceStatus(binding.service, Deployment.MISSING, detail="service does not exist")
    mounts = [_object_mount(ref, service, digest, snapshot) for ref in binding.objects]
    mounts.extend(_file_mount(f, digest, file_hashes) for f in binding.files)
    if binding.restart_only:
        mounts.append(_restart(entry.name, binding.service, digest, history.restarted))
    worst = max((m.state for m in mounts), key=lambda s: s.severity)
    return ServiceStatus(binding.service, worst, tuple(mounts))


def build_status(
    manifest: Manifest,
    digests_or_errors: Mapping[str, DiskReading],
    snapshot: SwarmSnapshot,
    state: History,
    *,
    now: dt.datetime,
    file_hashes: Mapping[Path, str | None] | None = None,
) -> StatusReport:
    """One `CertStatus` per manifest entry, in manifest order, one `ServiceStatus` per
    service binding. `file_hashes` maps each file target to the SHA-256 of its content
    (None: no such file); a target left out could not be read."""
    hashes = file_hashes or {}
    certs = []
    for entry in manifest.certificates:
        disk, digest = _disk(digests_or_errors.get(entry.name))
        services = tuple(
            _service(entry, b, digest, snapshot, state, hashes) for b in entry.services
        )
        certs.append(
            CertStatus(
                name=entry.name,
                disk=disk,
                services=services,
                history=_backoff_now(state.certs.get(entry.name, CertHistory()), disk, now),
            )
        )
    return StatusReport(manifest=manifest.path, now=now, certificates=tuple(certs))


def _backoff_now(history: CertHistory, disk: DiskStatus, now: dt.datetime) -> CertHistory:
    """A backoff holds only for the leaf whose rollout failed, and only until its time."""
    until = history.backoff_until
    if until is None:
        return history
    other_leaf = history.backoff_leaf is not None and history.backoff_leaf != disk.sha256
    if other_leaf or until <= now:
        return replace(history, backoff_until=None)
    return history
