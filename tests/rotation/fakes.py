"""Small in-memory values for the pure rotation core: manifests, digests and snapshots."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from phoenix_certbot.manifest.model import (
    CertificateEntry,
    CertificatePaths,
    FileTarget,
    ObjectKind,
    ServiceBinding,
    Source,
    SwarmObjectRef,
    VerifyTarget,
)
from phoenix_certbot.naming import versioned_name
from phoenix_certbot.rotation.plan import CertDigest
from phoenix_certbot.swarm import model as sm

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def digest(name: str, generation: int = 1) -> CertDigest:
    return CertDigest(
        name=name,
        leaf_sha256=sha(f"{name}-leaf-{generation}"),
        not_after=T0 + dt.timedelta(days=90),
        payload_sha256={s: sha(f"{name}-{s.value}-{generation}") for s in Source},
    )


def secret(
    base: str, source: Source, target: str | None = None, mode: int = 0o444
) -> SwarmObjectRef:
    return SwarmObjectRef(
        kind=ObjectKind.SECRET, name=base, source=source, target=target or base, mode=mode
    )


def entry(name: str, *bindings: ServiceBinding, verify: tuple[str, ...] = ()) -> CertificateEntry:
    lineage = Path("/le/live") / name
    return CertificateEntry(
        name=name,
        sans=(f"{name}.test",),
        paths=CertificatePaths(
            cert=lineage / "cert.pem", key=lineage / "privkey.pem", lineage=lineage
        ),
        services=bindings,
        verify=tuple(VerifyTarget(url=u) for u in verify),
    )


def binding(
    service: str, *refs: SwarmObjectRef, files: tuple[FileTarget, ...] = ()
) -> ServiceBinding:
    return ServiceBinding(
        service=service,
        secrets=tuple(r for r in refs if r.kind is ObjectKind.SECRET),
        configs=tuple(r for r in refs if r.kind is ObjectKind.CONFIG),
        files=files,
    )


def deployed(
    base: str,
    d: CertDigest,
    source: Source,
    *,
    minutes: int = 0,
    managed: bool = True,
    kind: ObjectKind = ObjectKind.SECRET,
) -> sm.DeployedObject:
    payload = d.payload_sha256[source]
    name = versioned_name(base, payload)
    labels = {sm.LABEL_SHA256: payload, sm.LABEL_LEAF_SHA256: d.leaf_sha256, sm.LABEL_BASE: base}
    if managed:
        labels[sm.LABEL_MANAGED] = "true"
    return sm.DeployedObject(
        kind=kind,
        id=f"id-{name}",
        name=name,
        created=T0 + dt.timedelta(minutes=minutes),
        labels=tuple(sorted(labels.items())),
    )


def foreign(name: str, minutes: int = 0, kind: ObjectKind = ObjectKind.SECRET) -> sm.DeployedObject:
    return sm.DeployedObject(
        kind=kind, id=f"id-{name}", name=name, created=T0 + dt.timedelta(minutes=minutes)
    )


def mount(obj: sm.DeployedObject, target: str, mode: int = 0o444) -> sm.MountRef:
    return sm.MountRef(
        kind=obj.kind, object_id=obj.id, object_name=obj.name, target=target, mode=mode
    )


def service(
    name: str, *refs: sm.MountRef, previous: tuple[sm.MountRef, ...] = (), version: int = 10
) -> sm.ServiceState:
    return sm.ServiceState(
        id=f"svc-{name}", name=name, version=version, refs=refs, previous_refs=previous, replicas=1
    )
