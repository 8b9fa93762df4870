"""`phoenix-cert rollback NAME`: back to the previous managed version of each mount."""

from __future__ import annotations

from phoenix_certbot.errors import UsageError
from phoenix_certbot.manifest.model import CertificateEntry, Manifest
from phoenix_certbot.rotation.apply import Engine, Outcome, Reporter
from phoenix_certbot.rotation.plan import Check, MountChange, Plan, ServiceChange, server_name_of
from phoenix_certbot.rotation.state import StateStore
from phoenix_certbot.swarm.client import SwarmClient
from phoenix_certbot.swarm.model import LABEL_BASE, LABEL_LEAF_SHA256, SwarmSnapshot


def rollback_plan(entry: CertificateEntry, snapshot: SwarmSnapshot) -> Plan:
    """Pure: for every mount of `entry`, the managed version created just before the one
    mounted now. Files and restart-only services have no history to go back to."""
    changes: list[ServiceChange] = []
    problems: list[str] = []
    leaf: str | None = None
    for binding in entry.services:
        service = snapshot.service(binding.service)
        if service is None:
            problems.append(f"service {binding.service} does not exist")
            continue
        mounts = []
        for ref in binding.objects:
            mount = next(
                (m for m in service.refs if m.kind is ref.kind and m.target == ref.target), None
            )
            current = snapshot.object_by_id(mount.object_id) if mount else None
            if current is None or not current.managed:
                problems.append(f"{binding.service}: {ref.target} is not on a managed version")
                continue
            older = [
                o
                for o in snapshot.objects
                if o.kind is ref.kind
                and o.managed
                and o.label(LABEL_BASE) == ref.name
                and (o.created, o.name) < (current.created, current.name)
            ]
            if not older:
                problems.append(
                    f"{binding.service}: no version of {ref.name} older than {current.name}"
                )
                continue
            previous = max(older, key=lambda o: (o.created, o.name))
            leaf = previous.label(LABEL_LEAF_SHA256) or leaf
            mounts.append(
                MountChange(
                    kind=ref.kind,
                    base=ref.name,
                    target=ref.target,
                    old_name=current.name,
                    new_name=previous.name,
                    uid=ref.uid,
                    gid=ref.gid,
                    mode=ref.mode,
                    cert=entry.name,
                )
            )
        if binding.files or binding.restart_only:
            problems.append(
                f"{binding.service}: files and restart-only services cannot be rolled back"
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
    )


def roll_back(manifest: Manifest, name: str, verify_timeout_s: float, report: Reporter) -> Outcome:
    entry = manifest.by_name(name)
    if entry is None:
        raise UsageError(f"{manifest.path}: no certificate named {name!r}")
    swarm = SwarmClient.connect()
    store = StateStore(manifest.settings.state_dir)
    with store.locked():
        plan = rollback_plan(entry, swarm.snapshot())
        engine = Engine(
            swarm,
            update_timeout_s=manifest.settings.update_timeout_s,
            verify_timeout_s=verify_timeout_s,
            report=report,
        )
        outcome = engine.apply(plan, {})
        if plan.changes and outcome.exit_code == 0 and plan.checks:
            store.record_verification(
                entry.name,
                {c.check.url: c.ok for c in outcome.checks},
                plan.checks[0].expected_sha256,
            )
        return outcome
