"""What we read from the swarm, as values. The Docker adapter builds these; nothing past
it sees an API dictionary."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property

from phoenix_certbot.manifest.model import ObjectKind

LABEL_PREFIX = "io.phoenix-certbot."
LABEL_MANAGED = LABEL_PREFIX + "managed"
LABEL_CERT = LABEL_PREFIX + "cert"
LABEL_BASE = LABEL_PREFIX + "base"
LABEL_SOURCE = LABEL_PREFIX + "source"
LABEL_SHA256 = LABEL_PREFIX + "sha256"
LABEL_NOT_AFTER = LABEL_PREFIX + "not-after"
# The leaf certificate's fingerprint: what a TLS handshake must present once this version
# is mounted (the payload hash above differs for fullchain/privkey payloads).
LABEL_LEAF_SHA256 = LABEL_PREFIX + "leaf-sha256"
# Marks the swarm-wide run lease (a config, see rotation/lease.py): never a certificate
# version, so `SwarmClient.snapshot` leaves it out and nothing else sees it.
LABEL_LEASE = LABEL_PREFIX + "lease"

# Names of the parts of a service spec (`ServiceState.spec_parts`) that a rotation changes:
# the mount at one target, and the forced-restart counter. Someone else's change to any
# other part is a concurrent deploy.
FORCE_UPDATE_PART = "TaskTemplate.ForceUpdate"
_MOUNT_LISTS = {ObjectKind.SECRET: "Secrets", ObjectKind.CONFIG: "Configs"}


def mount_part(kind: ObjectKind, target: str) -> str:
    return f"TaskTemplate.ContainerSpec.{_MOUNT_LISTS[kind]}[{target}]"


@dataclass(frozen=True)
class DeployedObject:
    """A secret or config that exists in the swarm."""

    kind: ObjectKind
    id: str
    name: str
    created: dt.datetime
    labels: tuple[tuple[str, str], ...] = ()

    def label(self, key: str) -> str | None:
        return dict(self.labels).get(key)

    @property
    def managed(self) -> bool:
        return self.label(LABEL_MANAGED) == "true"


@dataclass(frozen=True)
class VersionedConfig:
    """A config with its version index: Docker changes its labels only if the index
    given with the change is still the current one (optimistic concurrency)."""

    id: str
    name: str
    version: int
    labels: tuple[tuple[str, str], ...] = ()

    def label(self, key: str) -> str | None:
        return dict(self.labels).get(key)


@dataclass(frozen=True)
class MountRef:
    """A service's reference to a secret or config: which object, mounted where."""

    kind: ObjectKind
    object_id: str
    object_name: str
    target: str
    uid: str = "0"
    gid: str = "0"
    mode: int = 0o444

    def same_as(self, other: MountRef | None) -> bool:
        """The same object mounted the same way (by name: ids are not known before the
        object exists, and a name belongs to one object at a time)."""
        return other is not None and (
            self.kind,
            self.object_name,
            self.target,
            self.uid,
            self.gid,
            self.mode,
        ) == (other.kind, other.object_name, other.target, other.uid, other.gid, other.mode)


@dataclass(frozen=True)
class MountSlot:
    """What a service mounts at one target: a reference, or nothing."""

    kind: ObjectKind
    target: str
    mount: MountRef | None

    @property
    def part(self) -> str:
        return mount_part(self.kind, self.target)

    def holds(self, mount: MountRef | None) -> bool:
        return mount is None if self.mount is None else self.mount.same_as(mount)


class UpdateState(str, Enum):
    NONE = ""
    UPDATING = "updating"
    PAUSED = "paused"
    COMPLETED = "completed"
    ROLLBACK_STARTED = "rollback_started"
    ROLLBACK_PAUSED = "rollback_paused"
    ROLLBACK_COMPLETED = "rollback_completed"

    @property
    def failed(self) -> bool:
        return self in {
            UpdateState.PAUSED,
            UpdateState.ROLLBACK_STARTED,
            UpdateState.ROLLBACK_PAUSED,
            UpdateState.ROLLBACK_COMPLETED,
        }

    @property
    def final(self) -> bool:
        """Swarm is done with the service: nothing it does by itself will change its tasks.
        Paused states count: swarm waits for someone else there."""
        return self not in {UpdateState.UPDATING, UpdateState.ROLLBACK_STARTED}


@dataclass(frozen=True)
class ServiceState:
    id: str
    name: str
    version: int
    refs: tuple[MountRef, ...]
    previous_refs: tuple[MountRef, ...] = ()
    replicas: int | None = None  # None for global services
    update_state: UpdateState = UpdateState.NONE
    update_message: str = ""
    monitor_s: float = 5.0  # UpdateConfig.Monitor; swarm's default is 5 s
    force_update: int = 0
    published_host_ports: tuple[int, ...] = ()  # host-mode published ports
    labels: tuple[tuple[str, str], ...] = field(default=())
    # A digest of each part of the spec (see FORCE_UPDATE_PART, mount_part): tells which
    # parts someone changed between two reads. Status changes do not touch the spec, while
    # they do move `version` (swarm's store index) and the service's UpdatedAt.
    spec_parts: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def mount_at(self, kind: ObjectKind, target: str, *, previous: bool = False) -> MountRef | None:
        """What the service mounts at `target` (in its previous spec when `previous`)."""
        return ref_at(self.previous_refs if previous else self.refs, kind, target)


def ref_at(refs: tuple[MountRef, ...], kind: ObjectKind, target: str) -> MountRef | None:
    """The reference among `refs` mounted at `target`, if any."""
    return next((m for m in refs if m.kind is kind and m.target == target), None)


@dataclass(frozen=True)
class TaskState:
    id: str
    service_id: str
    node_id: str
    desired_state: str
    state: str
    since: dt.datetime  # when it entered `state`
    refs: tuple[MountRef, ...]
    force_update: int
    error: str = ""

    def mount_at(self, kind: ObjectKind, target: str) -> MountRef | None:
        """What the task mounts at `target`."""
        return ref_at(self.refs, kind, target)


@dataclass(frozen=True)
class NodeInfo:
    id: str
    address: str  # Status.Addr: where the node is reached (7946, published ports)
    role: str
    availability: str  # active | pause | drain
    state: str  # ready | down | unknown | disconnected
    labels: tuple[tuple[str, str], ...] = ()
    hostname: str = ""  # Description.Hostname: what Portainer's agent targets
    reachability: str = ""  # ManagerStatus.Reachability (managers only): reachable | unreachable
    manager_address: str = ""  # ManagerStatus.Addr, "HOST:2377" (managers only)
    leader: bool = False

    @property
    def name(self) -> str:
        """How findings name the node: its hostname and short id."""
        return f"{self.hostname} ({self.id[:12]})" if self.hostname else self.id[:12]


VXLAN_OVERHEAD = 50
DEFAULT_UNDERLAY_MTU = 1500


@dataclass(frozen=True)
class OverlayNetwork:
    """An overlay network and its `com.docker.network.driver.mtu` option (None: unset)."""

    id: str
    name: str
    mtu_option: int | None = None
    ingress: bool = False

    @property
    def mtu(self) -> int:
        """The MTU its containers get: the option (default 1500) less the VXLAN header,
        since the driver sizes the option as the packet on the wire."""
        return (self.mtu_option or DEFAULT_UNDERLAY_MTU) - VXLAN_OVERHEAD


@dataclass(frozen=True)
class SwarmSnapshot:
    services: tuple[ServiceState, ...]
    objects: tuple[DeployedObject, ...]

    # Indexes: a plan for hundreds of certificates looks objects up thousands of times.
    @cached_property
    def _services(self) -> dict[str, ServiceState]:
        return {s.name: s for s in self.services}

    @cached_property
    def _by_id(self) -> dict[str, DeployedObject]:
        return {o.id: o for o in self.objects}

    @cached_property
    def _by_name(self) -> dict[tuple[ObjectKind, str], DeployedObject]:
        return {(o.kind, o.name): o for o in self.objects}

    def service(self, name: str) -> ServiceState | None:
        return self._services.get(name)

    def object_by_id(self, object_id: str) -> DeployedObject | None:
        return self._by_id.get(object_id)

    def object_by_name(self, kind: ObjectKind, name: str) -> DeployedObject | None:
        return self._by_name.get((kind, name))
