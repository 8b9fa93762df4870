"""`phoenix-cert rollback NAME`: back to the previous managed version of each mount."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace

from phoenix_certbot.errors import PhoenixError, UsageError
from phoenix_certbot.manifest.model import (
    CertificateEntry,
    Manifest,
    ServiceBinding,
    Source,
    SwarmObjectRef,
)
from phoenix_certbot.rotation.apply import Engine, Reporter
from phoenix_certbot.rotation.journal import Journal, Origin
from phoenix_certbot.rotation.lease import run_lock
from phoenix_certbot.rotation.outcome import Outcome
from phoenix_certbot.rotation.plan import Check, MountChange, Plan, ServiceChange, server_name_of
from phoenix_certbot.rotation.recovery import resolve_intents
from phoenix_certbot.rotation.state import StateStore
from phoenix_certbot.swarm.client import SwarmClient
from phoenix_certbot.swarm.model import (
    LABEL_BASE,
    LABEL_LEAF_SHA256,
    DeployedObject,
    SwarmSnapshot,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Mounted:
    binding: ServiceBinding
    ref: SwarmObjectRef
    current: DeployedObject
    older: tuple[DeployedObject, ...]  # managed versions of the same base, created before
    prior: DeployedObject | None  # one of `older` that the service's previous spec mounts
    kept: bool  # the previous spec mounts `current` too: the last update left it alone


def _age(obj: DeployedObject) -> tuple[dt.datetime, str]:
    return obj.created, obj.name


def _previous_leaf(found: list[_Mounted]) -> tuple[str | None, bool]:
    """The leaf served before the one mounted now, and whether it is the one the service's
    previous spec mounted (else: the newest older version's). A mount that carries the leaf
    (cert or fullchain) is asked first. None without history.

    The previous spec comes first because the newest older version may be one that never
    ran: a renewal the engine rolled back is created, refused, and stays behind."""
    leaf_first = ({Source.CERT, Source.FULLCHAIN}, set(Source))
    for sources in leaf_first:
        priors = [m.prior for m in found if m.prior is not None and m.ref.source in sources]
        if priors:
            return max(priors, key=_age).label(LABEL_LEAF_SHA256), True
    for sources in leaf_first:
        newest = [max(m.older, key=_age) for m in found if m.older and m.ref.source in sources]
        if newest:
            return max(newest, key=_age).label(LABEL_LEAF_SHA256), False
    return None, False


def _target(mounted: _Mounted, leaf: str | None, from_previous_spec: bool) -> DeployedObject | None:
    """The version to go back to; `mounted.current` when this payload did not change with
    the renewal (a key kept by certbot --reuse-key, an unchanged chain); None if unknown."""
    if mounted.prior is not None and mounted.prior.label(LABEL_LEAF_SHA256) == leaf:
        return mounted.prior
    if from_previous_spec and mounted.kept:
        return mounted.current
    same_leaf = [
        o for o in (*mounted.older, mounted.current) if leaf and o.label(LABEL_LEAF_SHA256) == leaf
    ]
    if same_leaf:
        return max(same_leaf, key=_age)
    if mounted.older:
        return max(mounted.older, key=_age)
    # No older version at all: the previous leaf was deployed with this very payload.
    return mounted.current if leaf else None


def rollback_plan(entry: CertificateEntry, snapshot: SwarmSnapshot) -> Plan:
    """Pure: for every mount of `entry`, the managed version that went with the leaf served
    before the one mounted now. Files and restart-only services have no history to go
    back to."""
    problems: list[str] = []
    found: list[_Mounted] = []
    for binding in entry.services:
        service = snapshot.service(binding.service)
        if service is None:
            problems.append(f"service {binding.service} does not exist")
            continue
        for ref in binding.objects:
            mount = service.mount_at(ref.kind, ref.target)
            current = snapshot.object_by_id(mount.object_id) if mount else None
            if current is None or not current.managed:
                problems.append(f"{binding.service}: {ref.target} is not on a managed version")
                continue
            older = tuple(
                o
                for o in snapshot.objects
                if o.kind is ref.kind
                and o.managed
                and o.label(LABEL_BASE) == ref.name
                and _age(o) < _age(current)
            )
            before = service.mount_at(ref.kind, ref.target, previous=True)
            prior = next((o for o in older if before and o.id == before.object_id), None)
            kept = before is not None and before.object_id == current.id
            found.append(_Mounted(binding, ref, current, older, prior, kept))
        if binding.files or binding.restart_only:
            problems.append(
                f"{binding.service}: files and restart-only services cannot be rolled back"
            )
    leaf, from_previous_spec = _previous_leaf(found)
    changes: list[ServiceChange] = []
    for binding in entry.services:
        mounts = []
        for m in (m for m in found if m.binding is binding):
            previous = _target(m, leaf, from_previous_spec)
            if previous is None:
                problems.append(
                    f"{binding.service}: no version of {m.ref.name} older than {m.current.name}"
                )
                continue
            if previous.id == m.current.id:
                continue
            mounts.append(
                MountChange(
                    kind=m.ref.kind,
                    base=m.ref.name,
                    target=m.ref.target,
                    old_name=m.current.name,
                    new_name=previous.name,
                    uid=m.ref.uid,
                    gid=m.ref.gid,
                    mode=m.ref.mode,
                    cert=entry.name,
                )
            )
        if mounts:
            changes.append(
                ServiceChange(service=binding.service, certs=(entry.name,), mounts=tuple(mounts))
            )
    checks = (
        tuple(
            Check(
                cert=entry.name,
                url=v.url,
                server_name=server_name_of(v.url, v.server_name),
                expected_sha256=leaf,
            )
            for v in entry.verify
        )
        if leaf and changes
        else ()
    )
    return Plan(
        certs=(entry.name,),
        creates=(),
        changes=tuple(changes),
        checks=checks,
        up_to_date=(),
        problems=tuple(problems),
        leaves=((entry.name, leaf),) if leaf else (),
    )


def roll_back(manifest: Manifest, name: str, verify_timeout_s: float, report: Reporter) -> Outcome:
    entry = manifest.by_name(name)
    if entry is None:
        raise UsageError(f"{manifest.path}: no certificate named {name!r}")
    swarm = SwarmClient.connect(manifest.settings.docker_timeout_s)
    store = StateStore(manifest.settings.state_dir)
    update_timeout_s = manifest.settings.update_timeout_s
    with run_lock(store, swarm) as lease:
        recovered = resolve_intents(
            store,
            lambda: swarm,
            update_timeout_s=update_timeout_s,
            verify_timeout_s=verify_timeout_s,
            report=report,
            fence=lease.check,
        )
        seen = swarm.snapshot()
        plan = rollback_plan(entry, seen)
        on_disk = _leaf_on_disk(entry)
        engine = Engine(
            swarm,
            Journal(store.directory),
            update_timeout_s=update_timeout_s,
            verify_timeout_s=verify_timeout_s,
            report=report,
            origin=Origin.ROLLBACK,
            holds={entry.name: on_disk} if on_disk else {},
            max_parallel_updates=manifest.settings.max_parallel_updates,
            fence=lease.check,
        )
        outcome = replace(engine.apply(plan, {}, seen), recovered=recovered)
        if plan.changes and outcome.exit_code == 0:
            if plan.checks:
                store.record_verification(
                    entry.name,
                    {c.check.url: c.ok for c in outcome.checks},
                    plan.checks[0].expected_sha256,
                )
            if on_disk:
                _hold(store, entry, on_disk)
        engine.close(outcome)
        return outcome


def _leaf_on_disk(entry: CertificateEntry) -> str | None:
    from phoenix_certbot.certs import load_material

    try:
        return load_material(entry).info.sha256
    except PhoenixError:
        return None  # nothing on disk that a later run could deploy


def _hold(store: StateStore, entry: CertificateEntry, leaf: str) -> None:
    """Keep the timer and hooks from rolling forward to the same certificate again."""
    store.hold(entry.name, leaf)
    log.warning(
        "certificate %s is held: `rotate` skips it until a new certificate is on disk; "
        "`phoenix-cert rotate %s --force` deploys the current one again",
        entry.name,
        entry.name,
    )
