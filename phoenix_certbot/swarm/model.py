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
class MountRef:
    """A service's reference to a secret or config: which object, mounted where."""

    kind: ObjectKind
    object_id: str
    object_name: str
    target: str
    uid: str = "0"
    gid: str = "0"
    mode: int = 0o444


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

    def mount_at(self, kind: ObjectKind, target: str, *, previous: bool = False) -> MountRef | None:
        """What the service mounts at `target` (in its previous spec when `previous`)."""
        refs = self.previous_refs if previous else self.refs
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


@dataclass(frozen=True)
class NodeInfo:
    id: str
    address: str
    role: str
    availability: str
    state: str
    labels: tuple[tuple[str, str], ...] = ()


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
