"""Where a service stands against an intent of ours (pure): our update in place, as before
it, our rollback in place, or changed by someone else.

Judged on the spec's content: swarm moves `Version.Index` and `UpdatedAt` at every change of
its update status too, so they cannot tell our update from anyone else's. The parts our
update touches (mounts at our targets, ForceUpdate) must hold our values; every other part
must be as it was before the update.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from phoenix_certbot.rotation.journal import Intent
from phoenix_certbot.swarm.model import FORCE_UPDATE_PART, MountSlot, ServiceState


class Match(str, Enum):
    AFTER = "after"  # our update is in place
    BEFORE = "before"  # as before our update: it never landed, or swarm rolled it back
    RESTORED = "restored"  # our rollback is in place
    FOREIGN = "foreign"  # someone else changed the service since we read it
    GONE = "gone"  # the service no longer exists


@dataclass(frozen=True)
class SpecMatch:
    match: Match
    changed: tuple[str, ...] = ()  # FOREIGN: the spec parts someone else changed

    def describe(self) -> str:
        return ", ".join(self.changed)


def _holds(state: ServiceState, slots: Sequence[MountSlot]) -> bool:
    return all(slot.holds(state.mount_at(slot.kind, slot.target)) for slot in slots)


def classify(state: ServiceState | None, intent: Intent) -> SpecMatch:
    if state is None:
        return SpecMatch(Match.GONE)
    ours = {slot.part for slot in intent.mounts_after} | {FORCE_UPDATE_PART}
    before, now = dict(intent.spec_before), dict(state.spec_parts)
    changed = sorted(
        part
        for part in before.keys() | now.keys()
        if part not in ours and before.get(part) != now.get(part)
    )
    if changed:
        return SpecMatch(Match.FOREIGN, tuple(changed))
    force = state.force_update
    if _holds(state, intent.mounts_after) and force == intent.force_after:
        return SpecMatch(Match.AFTER)
    if _holds(state, intent.mounts_before):
        if force == intent.force_before:
            return SpecMatch(Match.BEFORE)
        if force == intent.force_restore:
            return SpecMatch(Match.RESTORED)
    touched = [
        after.part
        for after, old in zip(intent.mounts_after, intent.mounts_before, strict=True)
        if not after.holds(state.mount_at(after.kind, after.target))
        and not old.holds(state.mount_at(old.kind, old.target))
    ]
    if force not in {intent.force_before, intent.force_after, intent.force_restore}:
        touched.append(FORCE_UPDATE_PART)
    return SpecMatch(Match.FOREIGN, tuple(touched) or (FORCE_UPDATE_PART,))
