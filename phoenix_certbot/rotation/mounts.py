"""Is this mount current? One answer for plan, status and verify (pure).

A service's mount at a manifest target is compared with the content the certificate on
disk gives that target (its SHA-256); `classify` says how it stands, with what is needed to
explain it. Current means the right bytes with the right owner and mode: the mounted
object carries our content label for them (or is named `<base>_<hash>` for them), whatever
its base, so a service already holding the right bytes is never restarted to rename them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from phoenix_certbot.manifest.model import SwarmObjectRef
from phoenix_certbot.naming import versioned_name
from phoenix_certbot.swarm.model import (
    LABEL_BASE,
    LABEL_SHA256,
    DeployedObject,
    MountRef,
    ServiceState,
    SwarmSnapshot,
)


class MountState(str, Enum):
    CURRENT = "current"  # the right content with the manifest's uid, gid and mode
    WRONG_FILE_ATTRS = "wrong_file_attrs"  # the right content, another uid, gid or mode
    BEHIND = "behind"  # another managed version of the same base: an older certificate
    # Not one of our versions of this base (a fixed stack-file name, another base's
    # version) while our version of the wanted content exists: a redeploy reverted it.
    # Also when the wanted content is unknown: then only "not ours" is known.
    FOREIGN = "foreign"
    UNROTATED = "unrotated"  # not ours, and no version of the wanted content exists yet
    MISSING = "missing"  # nothing mounted at the target
    UNKNOWN = "unknown"  # one of our versions, but nothing on disk to compare it with


@dataclass(frozen=True)
class MountVerdict:
    state: MountState
    mount: MountRef | None = None  # what the service mounts at the target
    mounted: DeployedObject | None = None  # that object, when the snapshot has it
    expected: str | None = None  # `<base>_<hash>` of the wanted content
    wanted: DeployedObject | None = None  # our version of the wanted content, if it exists

    @property
    def current(self) -> bool:
        return self.state is MountState.CURRENT


def file_attrs(uid: str, gid: str, mode: int) -> str:
    return f"{uid}:{gid} {mode:04o}"


def _expected(ref: SwarmObjectRef, sha: str) -> str | None:
    try:
        return versioned_name(ref.name, sha)
    except ValueError:  # a base too long for a version name: only the label can match
        return None


def classify(
    ref: SwarmObjectRef, sha: str | None, service: ServiceState, snapshot: SwarmSnapshot
) -> MountVerdict:
    """How `service`'s mount at `ref.target` stands against content `sha` (None: the
    certificate on disk could not be read, or has no such payload)."""
    mount = service.mount_at(ref.kind, ref.target)
    if mount is None:
        return MountVerdict(MountState.MISSING)
    mounted = snapshot.object_by_id(mount.object_id)
    ours = mounted is not None and mounted.managed and mounted.label(LABEL_BASE) == ref.name
    if sha is None:
        return MountVerdict(MountState.UNKNOWN if ours else MountState.FOREIGN, mount, mounted)
    expected = _expected(ref, sha)
    if mount.object_name == expected or (
        mounted is not None and mounted.label(LABEL_SHA256) == sha
    ):
        right = (mount.uid, mount.gid, mount.mode) == (ref.uid, ref.gid, ref.mode)
        state = MountState.CURRENT if right else MountState.WRONG_FILE_ATTRS
        return MountVerdict(state, mount, mounted, expected)
    wanted = snapshot.object_by_name(ref.kind, expected) if expected else None
    wanted = wanted if wanted is not None and wanted.managed else None
    if ours:
        state = MountState.BEHIND
    elif wanted is not None:
        state = MountState.FOREIGN
    else:
        state = MountState.UNROTATED
    return MountVerdict(state, mount, mounted, expected, wanted)
