"""One rotation run, start to end: lock, preflight, plan, apply, prune, record.

Used by `phoenix-cert rotate`, the deploy and post hooks, and the certbot installer.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from phoenix_certbot import failpoints
from phoenix_certbot.certs import CertificateMaterial, check_material, check_payload, load_material
from phoenix_certbot.errors import (
    BadInput,
    NothingValid,
    OperationFailed,
    PhoenixError,
    UsageError,
)
from phoenix_certbot.fsutil import resolve_owner
from phoenix_certbot.manifest.model import CertificateEntry, Manifest, ObjectKind, Source
from phoenix_certbot.rotation.apply import Engine, Reporter
from phoenix_certbot.rotation.journal import Journal
from phoenix_certbot.rotation.lease import SwarmLease, run_lock, swarm_lease
from phoenix_certbot.rotation.legacy_commands import run_legacy_command
from phoenix_certbot.rotation.outcome import Outcome, RunResult, ServiceResult, Waiting
from phoenix_certbot.rotation.plan import CertDigest, Plan, build_plan
from phoenix_certbot.rotation.prune import prunable
from phoenix_certbot.rotation.recovery import resolve_intents
from phoenix_certbot.rotation.state import StateStore
from phoenix_certbot.swarm.client import SwarmClient
from phoenix_certbot.swarm.model import SwarmSnapshot

log = logging.getLogger(__name__)
LEGACY_COMMAND_KEY = "!post_renewal_command"


@dataclass(frozen=True)
class RunOptions:
    force: bool = False
    # `rotate --all`: a certificate that fails its checks is reported and left as it is
    # deployed, instead of stopping the rotation of every other certificate.
    skip_invalid: bool = False
    dry_run: bool = False
    run_legacy_commands: bool = False
    verify_timeout_s: float = 60.0
    lock_timeout_s: float = 600.0


def select(manifest: Manifest, names: Sequence[str], all_: bool) -> tuple[CertificateEntry, ...]:
    if all_ and names:
        raise UsageError("give certificate names or --all, not both")
    if all_:
        return manifest.certificates
    if not names:
        raise UsageError("name at least one certificate, or pass --all")
    chosen = []
    for name in names:
        entry = manifest.by_name(name)
        if entry is None:
            known = ", ".join(e.name for e in manifest.certificates)
            raise UsageError(f"{manifest.path}: no certificate named {name!r} (known: {known})")
        chosen.append(entry)
    return tuple(dict.fromkeys(chosen))


def preflight(
    entries: Sequence[CertificateEntry], now: dt.datetime | None = None
) -> dict[str, CertificateMaterial]:
    """Read and check every certificate before anything changes (bad input: exit 2)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    materials: dict[str, CertificateMaterial] = {}
    for entry in entries:
        material = load_material(entry)
        check_material(material, entry.sans, now)
        for binding in entry.services:
            for source in {o.source for o in binding.objects} | {f.source for f in binding.files}:
                check_payload(material, source)
            for target in binding.files:
                _check_owner(entry, target.path, target.owner)
        materials[entry.name] = material
    return materials


def _check_owner(entry: CertificateEntry, path: Path, owner: str | None) -> None:
    """An owner this host does not know would fail after other files were written."""
    try:
        resolve_owner(owner)
    except (KeyError, ValueError):
        raise BadInput(
            f"certificate {entry.name}: files[{path}].owner: {owner!r} is not a user "
            "(or user:group) on this host"
        ) from None


def split_valid(
    entries: Sequence[CertificateEntry],
) -> tuple[tuple[CertificateEntry, ...], dict[str, str]]:
    """Entries that pass preflight, and one line for each that does not. All failing is
    still bad input (exit 2, `NothingValid`): then nothing at all would change."""
    valid: list[CertificateEntry] = []
    invalid: dict[str, str] = {}
    first: BadInput | None = None
    for entry in entries:
        try:
            preflight((entry,))
        except BadInput as exc:
            first = first or exc
            invalid[entry.name] = f"certificate {entry.name} skipped: {exc}"
            continue
        valid.append(entry)
    if not valid and first is not None:
        raise NothingValid(first, invalid)
    return tuple(valid), invalid


def with_companions(
    manifest: Manifest, entries: Sequence[CertificateEntry]
) -> tuple[tuple[CertificateEntry, ...], dict[str, CertificateMaterial]]:
    """The chosen entries plus every entry that shares a service with them, and their
    checked materials.

    A service is updated once for all the certificates it uses: a run for one lineage
    also brings the service's other certificates up to date, so a second run (another
    deploy hook) finds nothing left to do instead of restarting the service again. The
    chosen entries must pass preflight (bad input: exit 2); a companion that does not is
    left as it is deployed, with a warning.
    """
    chosen = tuple(dict.fromkeys(entries))
    materials = preflight(chosen)
    services = {b.service for e in chosen for b in e.services}
    taken = {e.name for e in chosen}  # names, not entries: comparing dataclasses is slow
    companions: list[CertificateEntry] = []
    grown = True
    while grown:  # a companion's other services bring their certificates along too
        grown = False
        for entry in manifest.certificates:
            if entry.name in taken:
                continue
            if services & {b.service for b in entry.services}:
                companions.append(entry)
                taken.add(entry.name)
                services |= {b.service for b in entry.services}
                grown = True
    kept: list[CertificateEntry] = []
    for entry in companions:
        try:
            materials.update(preflight((entry,)))
        except BadInput as exc:
            log.warning(
                "certificate %s shares a service but is left as deployed: %s", entry.name, exc
            )
            continue
        kept.append(entry)
    # In manifest order, so that `plan NAME` reads like `plan --all`.
    selected = {e.name for e in chosen} | {e.name for e in kept}
    ordered = [e for e in manifest.certificates if e.name in selected]
    placed = {e.name for e in ordered}
    ordered += [e for e in chosen if e.name not in placed]
    return tuple(ordered), materials


def digest(material: CertificateMaterial) -> CertDigest:
    return CertDigest(
        name=material.name,
        leaf_sha256=material.info.sha256,
        not_after=material.info.not_after,
        payload_sha256={
            s: material.payload_sha256(s)
            for s in Source
            if s is not Source.CHAIN or material.chain_pem
        },
    )


def file_hashes(
    entries: Sequence[CertificateEntry], *, strict: bool = True
) -> dict[Path, str | None]:
    """SHA-256 of each file target's content; None when it does not exist. An unreadable
    file stops a rotation (`strict`), and is only left out (with a warning) for reports."""
    hashes: dict[Path, str | None] = {}
    for entry in entries:
        for binding in entry.services:
            for target in binding.files:
                try:
                    hashes[target.path] = hashlib.sha256(target.path.read_bytes()).hexdigest()
                except FileNotFoundError:
                    hashes[target.path] = None
                except OSError as exc:
                    if strict:
                        raise OperationFailed(
                            f"{target.path}: cannot read: {exc.strerror}"
                        ) from None
                    log.warning("%s: cannot read: %s", target.path, exc.strerror)
    return hashes


def make_plan(
    entries: Sequence[CertificateEntry],
    swarm: SwarmClient,
    store: StateStore,
    force: bool = False,
    materials: dict[str, CertificateMaterial] | None = None,
    seen: SwarmSnapshot | None = None,
) -> tuple[Plan, dict[str, CertificateMaterial]]:
    """`seen`: the swarm as just read, if the caller has it (the engine reuses it)."""
    materials = materials if materials is not None else preflight(entries)
    plan = build_plan(
        entries,
        {n: digest(m) for n, m in materials.items()},
        seen or swarm.snapshot(),
        file_hashes=file_hashes(entries),
        state=store.recorded(),
        force=force,
    )
    return plan, materials


def resolve(store: StateStore, manifest: Manifest, report: Reporter) -> Outcome:
    """Under the state directory's lock: only resolve what an interrupted run left (a hook
    that has nothing to deploy). Docker is reached only if there is something to resolve;
    the swarm lease is taken then too, as finishing or undoing changes services."""
    with contextlib.ExitStack() as held:
        leases: list[SwarmLease] = []

        def connect() -> SwarmClient:
            swarm = SwarmClient.connect(manifest.settings.docker_timeout_s)
            leases.append(held.enter_context(swarm_lease(swarm)))
            return swarm

        def fence() -> None:
            for lease in leases:
                lease.check()

        recovered = resolve_intents(
            store,
            connect,
            update_timeout_s=manifest.settings.update_timeout_s,
            verify_timeout_s=RunOptions.verify_timeout_s,
            report=report,
            fence=fence,
        )
    return Outcome(plan=NOTHING, recovered=recovered)


NOTHING = Plan(certs=(), creates=(), changes=(), checks=(), up_to_date=(), problems=())


def _bases(entries: Sequence[CertificateEntry]) -> set[tuple[ObjectKind, str]]:
    return {(o.kind, o.name) for e in entries for b in e.services for o in b.objects}


def rotate(
    manifest: Manifest,
    entries: Sequence[CertificateEntry],
    options: RunOptions,
    report: Reporter,
    swarm: SwarmClient | None = None,
) -> Outcome:
    store = StateStore(manifest.settings.state_dir)
    skipped: dict[str, str] = {}
    if options.skip_invalid:
        entries, skipped = split_valid(entries)
        for line in skipped.values():
            log.error("%s", line)
    asked = {e.name for e in entries}
    # Bad input fails before we even wait for the lock.
    entries, materials = with_companions(manifest, entries)
    swarm = swarm or SwarmClient.connect(manifest.settings.docker_timeout_s)
    if options.dry_run:  # only reads: no need to wait for a run in progress
        entries = _not_held(entries, materials, store, options.force, release=False)
        entries, waiting = _not_backing_off(entries, asked, materials, store, options.force)
        plan, _ = make_plan(entries, swarm, store, options.force, materials)
        return Outcome(plan=plan, waiting=waiting)
    with run_lock(store, swarm, options.lock_timeout_s) as lease:
        recovered = resolve_intents(
            store,
            lambda: swarm,
            update_timeout_s=manifest.settings.update_timeout_s,
            verify_timeout_s=options.verify_timeout_s,
            report=report,
            fence=lease.check,
        )
        entries = _not_held(entries, materials, store, options.force)
        entries, waiting = _not_backing_off(entries, asked, materials, store, options.force)
        # Plan under the lock: another run may have deployed these versions meanwhile.
        seen = swarm.snapshot()
        plan, materials = make_plan(entries, swarm, store, options.force, materials, seen)
        engine = Engine(
            swarm,
            Journal(store.directory),
            update_timeout_s=manifest.settings.update_timeout_s,
            verify_timeout_s=options.verify_timeout_s,
            report=report,
            max_parallel_updates=manifest.settings.max_parallel_updates,
            fence=lease.check,
        )
        outcome = engine.apply(plan, materials, seen)
        failpoints.hit("before-prune")
        # Nothing new: nothing can have become prunable. A service left unverified (Docker
        # away, someone else's deploy): nothing is removed until a run has settled it.
        settled = outcome.result is not RunResult.PARTIAL
        if (plan.creates or plan.changes) and settled:
            outcome = replace(
                outcome, pruned=_prune(swarm, entries, manifest.settings.keep_versions, report)
            )
        failpoints.hit("before-record")
        try:
            errors = _legacy_commands(entries, materials, outcome, options, store)
            _record(store, entries, materials, outcome)
        except (PhoenixError, OSError) as exc:
            # Every service is settled; only the history is missing. The intents stay, so
            # the next run's recovery verifies and records what this one did.
            errors = (f"{store.directory}: the run could not be recorded: {exc}",)
        else:
            engine.close(outcome)
        return replace(
            outcome,
            errors=outcome.errors + tuple(skipped.values()) + errors,
            skipped=tuple(skipped),
            recovered=recovered,
            waiting=waiting,
        )


def _not_held(
    entries: Sequence[CertificateEntry],
    materials: dict[str, CertificateMaterial],
    store: StateStore,
    force: bool,
    *,
    release: bool = True,
) -> tuple[CertificateEntry, ...]:
    """Leave out certificates an operator rolled back while the same leaf is on disk: the
    timer must not undo a manual rollback. A new leaf (a renewal) or --force lifts it.
    `release` (under the run lock only) removes a lifted hold from state.json."""
    held = store.held()
    kept = []
    for entry in entries:
        leaf = materials[entry.name].info.sha256
        if entry.name in held and (force or held[entry.name] != leaf):
            if release:
                store.release(entry.name)
        elif held.get(entry.name) == leaf:
            log.warning(
                "certificate %s is held after `phoenix-cert rollback`; not deployed "
                "(`phoenix-cert rotate %s --force` deploys it)",
                entry.name,
                entry.name,
            )
            continue
        kept.append(entry)
    return tuple(kept)


def _not_backing_off(
    entries: Sequence[CertificateEntry],
    asked: set[str],
    materials: dict[str, CertificateMaterial],
    store: StateStore,
    force: bool,
) -> tuple[tuple[CertificateEntry, ...], tuple[Waiting, ...]]:
    """Leave out certificates whose rollout of the same leaf failed recently
    (`rotation.backoff`). Those the command was asked for are reported (exit 1); one that
    only shares a service with them is left as deployed, with a log line."""
    if force:
        return tuple(entries), ()
    now = dt.datetime.now(dt.timezone.utc)
    backoffs = store.backoffs()
    kept: list[CertificateEntry] = []
    waiting: list[Waiting] = []
    for entry in entries:
        backoff = backoffs.get(entry.name)
        if backoff is None or not backoff.holds_back(materials[entry.name].info.sha256, now):
            kept.append(entry)
            continue
        log.warning(
            "certificate %s: its rollout failed %d time(s); not tried again before %s "
            "(a new certificate on disk, or `phoenix-cert rotate %s --force`, tries now)",
            entry.name,
            backoff.failures,
            backoff.until.isoformat(timespec="minutes"),
            entry.name,
        )
        if entry.name in asked:
            waiting.append(Waiting(entry.name, backoff.failures, backoff.until))
    return tuple(kept), tuple(waiting)


def _prune(
    swarm: SwarmClient, entries: Sequence[CertificateEntry], keep: int, report: Reporter
) -> tuple[str, ...]:
    """Old versions go; a failure here leaves every service as it is: a warning only."""
    removed: list[str] = []
    try:
        doomed = prunable(swarm.snapshot(), _bases(entries), keep)
    except PhoenixError as exc:
        log.warning("could not look for versions to prune: %s", exc)
        return ()
    for obj in doomed:
        try:
            swarm.remove_object(obj)
        except PhoenixError as exc:  # in use by a service outside the manifest, say
            log.warning("could not prune %s %s: %s", obj.kind.value, obj.name, exc)
            continue
        removed.append(obj.name)
        report(f"pruned {obj.kind.value} {obj.name}")
    return tuple(removed)


def _legacy_commands(
    entries: Sequence[CertificateEntry],
    materials: dict[str, CertificateMaterial],
    outcome: Outcome,
    options: RunOptions,
    store: StateStore,
) -> tuple[str, ...]:
    errors: list[str] = []
    recorded = store.recorded().restarted
    for entry in entries:
        if not entry.legacy_command or entry.name in outcome.failed_certs():
            continue
        leaf = materials[entry.name].info.sha256
        if recorded.get((entry.name, LEGACY_COMMAND_KEY)) == leaf and not options.force:
            continue
        if not options.run_legacy_commands:
            log.warning(
                "certificate %s: post_renewal_command not run (pass --run-legacy-commands): %s",
                entry.name,
                entry.legacy_command,
            )
            continue
        try:
            run_legacy_command(entry.name, entry.legacy_command)
        except PhoenixError as exc:
            errors.append(str(exc))
            continue
        store.record_rotation(
            entry.name, leaf, "ok", verified=False, restarted_services=(LEGACY_COMMAND_KEY,)
        )
    return tuple(errors)


def _record(
    store: StateStore,
    entries: Sequence[CertificateEntry],
    materials: dict[str, CertificateMaterial],
    outcome: Outcome,
) -> None:
    failed = outcome.failed_certs()
    rolled_back = outcome.rolled_back_certs()
    checked = {c.check.cert for c in outcome.checks}
    for entry in entries:
        leaf = materials[entry.name].info.sha256
        if entry.name in checked:
            urls = {c.check.url: c.ok for c in outcome.checks if c.check.cert == entry.name}
            store.record_verification(entry.name, urls, leaf)
        # A service someone else changed meanwhile (conflict) records no rotation at all.
        results = {s.result for s in outcome.services if entry.name in s.certs}
        if entry.name in rolled_back:  # counts for the backoff, once per rollout
            store.record_rotation(
                entry.name, leaf, "failed", verified=False, rollout=outcome.rollout
            )
        elif results == {ServiceResult.UPDATED}:
            services = tuple(b.service for b in entry.services if b.restart_only)
            store.record_rotation(
                entry.name,
                leaf,
                "ok",
                verified=entry.name not in failed,
                restarted_services=services,
            )
        elif not entry.verify and entry.name not in failed:
            # Nothing to probe: converged is as verified as it gets.
            store.record_verification(entry.name, {}, leaf)
