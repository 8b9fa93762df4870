"""The Docker adapter: the only module that talks to the Docker Engine.

It turns API dictionaries into `swarm.model` values and Docker's exceptions into ours.
Service specs stay raw in here: the rest of the tool only says which mounts to set.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import hashlib
import json
import logging
import os
import re
import socket
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from phoenix_certbot.errors import (
    DockerUnavailable,
    NotSwarmManager,
    OperationFailed,
    WriteConflict,
)
from phoenix_certbot.manifest.model import ObjectKind
from phoenix_certbot.swarm.model import (
    FORCE_UPDATE_PART,
    LABEL_LEASE,
    DeployedObject,
    MountRef,
    MountSlot,
    NodeInfo,
    OverlayNetwork,
    ServiceState,
    SwarmSnapshot,
    TaskState,
    UpdateState,
    VersionedConfig,
    mount_part,
)

log = logging.getLogger(__name__)

_OUT_OF_SEQUENCE = "update out of sequence"
MTU_OPTION = "com.docker.network.driver.mtu"
_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def parse_time(text: str | None) -> dt.datetime:
    """Docker's RFC 3339 times carry nanoseconds; Python takes at most microseconds."""
    if not text:
        return dt.datetime.fromtimestamp(0, dt.timezone.utc)
    cleaned = _FRACTION.sub(r"\1", text.replace("Z", "+00:00"), count=1)
    return dt.datetime.fromisoformat(cleaned)


def _labels(raw: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((raw or {}).items()))


_ID_KEY = {
    ObjectKind.SECRET: ("SecretID", "SecretName", "Secrets"),
    ObjectKind.CONFIG: ("ConfigID", "ConfigName", "Configs"),
}


def _refs(container_spec: Mapping[str, Any]) -> tuple[MountRef, ...]:
    refs: list[MountRef] = []
    for kind, (id_key, name_key, list_key) in _ID_KEY.items():
        for item in container_spec.get(list_key) or ():
            file = item.get("File")
            if not file:  # a config used as a credential spec has no file
                continue
            refs.append(
                MountRef(
                    kind=kind,
                    object_id=item[id_key],
                    object_name=item[name_key],
                    target=file["Name"],
                    uid=file.get("UID", "0"),
                    gid=file.get("GID", "0"),
                    mode=int(file.get("Mode", 0o444)),
                )
            )
    return tuple(refs)


def _ref_to_api(ref: MountRef) -> dict[str, Any]:
    id_key, name_key, _ = _ID_KEY[ref.kind]
    return {
        "File": {"Name": ref.target, "UID": ref.uid, "GID": ref.gid, "Mode": ref.mode},
        id_key: ref.object_id,
        name_key: ref.object_name,
    }


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def _spec_parts(spec: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """A digest of each part of a service spec, the mounts one per target: enough to name
    what someone else changed, without keeping values (an Env may hold a password)."""
    parts: dict[str, str] = {}
    for key, value in spec.items():
        if key != "TaskTemplate":
            parts[key] = _digest(value)
            continue
        for tkey, tvalue in (value or {}).items():
            if tkey != "ContainerSpec":
                parts[f"TaskTemplate.{tkey}"] = _digest(tvalue)
                continue
            for ckey, cvalue in (tvalue or {}).items():
                kind = next((k for k, keys in _ID_KEY.items() if keys[2] == ckey), None)
                if kind is None:
                    parts[f"TaskTemplate.ContainerSpec.{ckey}"] = _digest(cvalue)
                    continue
                for item in cvalue or ():
                    file = item.get("File") or {}
                    # A config used as a credential spec has no file: named by the config.
                    target = file.get("Name") or f"runtime:{item.get(_ID_KEY[kind][1])}"
                    parts[mount_part(kind, target)] = _digest(item)
    parts.setdefault(FORCE_UPDATE_PART, _digest(0))  # absent and 0 are the same to swarm
    return tuple(sorted(parts.items()))


def _service_state(raw: Mapping[str, Any]) -> ServiceState:
    spec = raw.get("Spec", {})
    template = spec.get("TaskTemplate", {})
    mode = spec.get("Mode", {})
    replicas = mode["Replicated"].get("Replicas", 1) if "Replicated" in mode else None
    status = raw.get("UpdateStatus") or {}
    monitor_ns = (spec.get("UpdateConfig") or {}).get("Monitor")
    ports = (spec.get("EndpointSpec") or {}).get("Ports") or ()
    previous = (raw.get("PreviousSpec") or {}).get("TaskTemplate", {}).get("ContainerSpec", {})
    return ServiceState(
        id=raw["ID"],
        name=spec.get("Name", ""),
        version=int(raw["Version"]["Index"]),
        refs=_refs(template.get("ContainerSpec", {})),
        previous_refs=_refs(previous),
        replicas=replicas,
        update_state=UpdateState(status.get("State", "")),
        update_message=status.get("Message", ""),
        monitor_s=5.0 if monitor_ns is None else monitor_ns / 1e9,
        force_update=int(template.get("ForceUpdate", 0)),
        published_host_ports=tuple(
            int(p["PublishedPort"])
            for p in ports
            if p.get("PublishMode") == "host" and p.get("PublishedPort")
        ),
        labels=_labels(spec.get("Labels")),
        spec_parts=_spec_parts(spec),
    )


def _object(kind: ObjectKind, raw: Mapping[str, Any]) -> DeployedObject:
    spec = raw.get("Spec", {})
    return DeployedObject(
        kind=kind,
        id=raw["ID"],
        name=spec.get("Name", ""),
        created=parse_time(raw.get("CreatedAt")),
        labels=_labels(spec.get("Labels")),
    )


def _versioned(raw: Mapping[str, Any]) -> VersionedConfig:
    spec = raw.get("Spec", {})
    return VersionedConfig(
        id=raw["ID"],
        name=spec.get("Name", ""),
        version=int(raw["Version"]["Index"]),
        labels=_labels(spec.get("Labels")),
    )


def _task(raw: Mapping[str, Any]) -> TaskState:
    status = raw.get("Status", {})
    spec = raw.get("Spec", {})
    return TaskState(
        id=raw["ID"],
        service_id=raw.get("ServiceID", ""),
        node_id=raw.get("NodeID", ""),
        desired_state=raw.get("DesiredState", ""),
        state=status.get("State", ""),
        since=parse_time(status.get("Timestamp")),
        refs=_refs(spec.get("ContainerSpec", {})),
        force_update=int(spec.get("ForceUpdate", 0)),
        error=status.get("Err", ""),
    )


def _node(raw: Mapping[str, Any]) -> NodeInfo:
    spec, status = raw.get("Spec") or {}, raw.get("Status") or {}
    manager = raw.get("ManagerStatus") or {}
    return NodeInfo(
        id=raw["ID"],
        address=status.get("Addr", ""),
        role=spec.get("Role", ""),
        availability=spec.get("Availability", ""),
        state=status.get("State", ""),
        labels=_labels(spec.get("Labels")),
        hostname=(raw.get("Description") or {}).get("Hostname", ""),
        reachability=manager.get("Reachability", ""),
        manager_address=manager.get("Addr", ""),
        leader=bool(manager.get("Leader")),
    )


def _overlay(raw: Mapping[str, Any]) -> OverlayNetwork:
    option = (raw.get("Options") or {}).get(MTU_OPTION)
    try:
        mtu = int(option) if option else None
    except ValueError:
        mtu = None  # the daemon would refuse such a network; treat as unset
    return OverlayNetwork(
        id=raw.get("Id", ""),
        name=raw.get("Name", ""),
        mtu_option=mtu,
        ingress=bool(raw.get("Ingress")),
    )


@dataclass(frozen=True)
class SpecHandle:
    """A service as read once: its state, and the raw spec that an update changes. Only
    this module looks inside `_spec`; an update sends it back with its version, so swarm
    refuses the update if anyone changed the service since this read."""

    state: ServiceState
    _spec: Mapping[str, Any] = field(repr=False, compare=False)


class UpdateOutOfSequence(OperationFailed):
    """The service changed between our read and our update (swarm's status changes too)."""


class NotFound(OperationFailed):
    """The object asked for does not exist (any more)."""


class SwarmClient:
    def __init__(self, api: Any, where: str = "Docker", timeout_s: float = 30.0) -> None:
        self._api = api  # docker.APIClient; its stubs are untyped, so Any at this boundary
        self.where = where
        self.timeout_s = timeout_s  # of each API request

    # -- connecting ------------------------------------------------------------------
    @classmethod
    def connect(cls, timeout_s: float = 30.0) -> SwarmClient:
        """Reach the engine named by DOCKER_HOST (default the local socket) and make sure it
        is an active swarm manager. Raises before anything could change."""
        import docker
        import docker.errors

        _check_socket(os.environ.get("DOCKER_HOST", DEFAULT_SOCKET), timeout_s)
        try:
            # Passed on to requests, which takes a float (the stubs say int).
            api = docker.from_env(timeout=timeout_s).api  # type: ignore[arg-type]
            info = api.info()
        except docker.errors.DockerException as exc:
            raise DockerUnavailable(f"cannot reach Docker: {_short(exc)}") from None
        client = cls(api, where=str(api.base_url), timeout_s=timeout_s)
        swarm = info.get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active":
            raise NotSwarmManager(
                f"{client.where}: this Docker Engine is not part of an active swarm"
            )
        if not swarm.get("ControlAvailable"):
            raise NotSwarmManager(f"{client.where}: this node is not a swarm manager")
        return client

    @contextlib.contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        """Docker's and the transport's exceptions as ours. A timeout or a broken
        connection says nothing about whether the daemon acted on a request: callers that
        changed something treat DockerUnavailable from here as an unknown outcome."""
        import docker.errors
        import requests.exceptions
        import urllib3.exceptions

        try:
            yield
        except docker.errors.APIError as exc:
            text = _short(exc)
            if "not a swarm manager" in text or "not part of a swarm" in text:
                raise NotSwarmManager(f"{self.where}: {what}: {text}") from None
            if _OUT_OF_SEQUENCE in text:
                raise UpdateOutOfSequence(f"{self.where}: {what}: {text}") from None
            if exc.status_code == 404:
                raise NotFound(f"{self.where}: {what}: {text}") from None
            raise OperationFailed(f"{self.where}: {what}: {text}") from None
        except requests.exceptions.Timeout as exc:
            raise DockerUnavailable(
                f"{self.where}: {what}: no answer within {self.timeout_s:g} s ({_short(exc)})"
            ) from None
        except (
            requests.exceptions.RequestException,  # ConnectionError, ChunkedEncodingError, ...
            urllib3.exceptions.HTTPError,
            docker.errors.DockerException,
            OSError,  # a socket error the HTTP stack did not wrap
        ) as exc:
            raise DockerUnavailable(f"{self.where}: {what}: {_short(exc)}") from None

    # -- reading -----------------------------------------------------------------------
    def snapshot(self) -> SwarmSnapshot:
        """Services, secrets and configs in three API calls, whatever their number."""
        with self._translate("reading swarm state"):
            services = tuple(_service_state(s) for s in self._api.services())
            secrets = tuple(_object(ObjectKind.SECRET, s) for s in self._api.secrets())
            configs = tuple(
                _object(ObjectKind.CONFIG, c)
                for c in self._api.configs()
                # The run lease is no certificate version: nothing past here may see it.
                if LABEL_LEASE not in (c.get("Spec", {}).get("Labels") or {})
            )
        return SwarmSnapshot(services=services, objects=secrets + configs)

    def service(self, name_or_id: str) -> ServiceState:
        with self._translate(f"reading service {name_or_id}"):
            return _service_state(self._api.inspect_service(name_or_id))

    def tasks(self, service_id: str) -> tuple[TaskState, ...]:
        with self._translate("listing tasks"):
            return tuple(_task(t) for t in self._api.tasks(filters={"service": service_id}))

    def services_by_id(self, service_ids: Collection[str]) -> dict[str, ServiceState]:
        """The services with these ids that exist, in one API call whatever their number
        (swarm matches an id filter by prefix; a whole id is only itself)."""
        if not service_ids:
            return {}
        with self._translate("reading services"):
            raw = self._api.services(filters={"id": sorted(service_ids)})
        return {s.id: s for s in map(_service_state, raw) if s.id in service_ids}

    def watch(
        self, service_ids: Collection[str]
    ) -> tuple[dict[str, ServiceState], dict[str, tuple[TaskState, ...]]]:
        """The services with these ids that exist, and their tasks: two API calls whatever
        their number."""
        for attempt in (1, 2):
            services = self.services_by_id(service_ids)
            tasks: dict[str, list[TaskState]] = {i: [] for i in services}
            if not services:
                break
            try:
                # Every service a task filter names must exist, or swarm refuses the
                # listing: one removed in between is read again, without it.
                with self._translate("listing tasks"):
                    raw = self._api.tasks(filters={"service": sorted(services)})
            except NotFound:
                if attempt == 2:
                    raise
                continue
            for task in map(_task, raw):
                if task.service_id in tasks:
                    tasks[task.service_id].append(task)
            break
        return services, {i: tuple(t) for i, t in tasks.items()}

    def nodes(self) -> tuple[NodeInfo, ...]:
        with self._translate("listing nodes"):
            raw_nodes = self._api.nodes()
        return tuple(_node(n) for n in raw_nodes)

    def overlay_networks(self) -> tuple[OverlayNetwork, ...]:
        with self._translate("listing networks"):
            raw = self._api.networks(filters={"driver": "overlay"})
        return tuple(_overlay(n) for n in raw if n.get("Driver") == "overlay")

    def advertise_address(self) -> str:
        """The address this node gives the swarm (Swarm.NodeAddr); "" when unknown."""
        with self._translate("reading the engine's info"):
            info = self._api.info()
        return str((info.get("Swarm") or {}).get("NodeAddr") or "")

    # -- changing ----------------------------------------------------------------------
    def create_object(
        self, kind: ObjectKind, name: str, data: bytes, labels: Mapping[str, str]
    ) -> DeployedObject:
        with self._translate(f"creating {kind.value} {name}"):
            if kind is ObjectKind.SECRET:
                result = self._api.create_secret(name, data, labels=dict(labels))
                raw = self._api.inspect_secret(result["ID"])
            else:
                result = self._api.create_config(name, data, labels=dict(labels))
                raw = self._api.inspect_config(result["ID"])
        return _object(kind, raw)

    def remove_object(self, obj: DeployedObject) -> None:
        with self._translate(f"removing {obj.kind.value} {obj.name}"):
            if obj.kind is ObjectKind.SECRET:
                self._api.remove_secret(obj.id)
            else:
                self._api.remove_config(obj.id)

    # -- labelled configs, changed with a version check (the run lease) -------------------
    @contextlib.contextmanager
    def _conflicts(self, what: str) -> Iterator[None]:
        """Inside `_translate`: the answers that mean "another writer came first"."""
        import docker.errors

        try:
            yield
        except docker.errors.APIError as exc:
            text = _short(exc)
            if exc.status_code in {404, 409} or _OUT_OF_SEQUENCE in text:
                raise WriteConflict(f"{self.where}: {what}: {text}") from None
            raise

    def read_config(self, name: str) -> VersionedConfig | None:
        """The config named `name` with its version index, or None when there is none."""
        try:
            with self._translate(f"reading config {name}"):
                raw = self._api.inspect_config(name)
        except NotFound:
            return None
        found = _versioned(raw)
        # The engine also resolves IDs and ID prefixes: only the exact name counts.
        return found if found.name == name else None

    def create_config(self, name: str, data: bytes, labels: Mapping[str, str]) -> VersionedConfig:
        """Create `name`; raft makes the name unique: WriteConflict when it exists."""
        what = f"creating config {name}"
        with self._translate(what), self._conflicts(what):
            result = self._api.create_config(name, data, labels=dict(labels))
        with self._translate(f"reading config {name}"):
            return _versioned(self._api.inspect_config(result["ID"]))

    def relabel_config(self, config: VersionedConfig, labels: Mapping[str, str]) -> None:
        """Replace the labels of `config` if it is still at `config.version`; else
        WriteConflict (changed or removed meanwhile). docker-py has no call for this
        endpoint (POST /configs/{id}/update, API 1.30+); only labels may change."""
        what = f"updating config {config.name}"
        with self._translate(what), self._conflicts(what):
            response = self._api._post_json(
                self._api._url("/configs/{0}/update", config.id),
                params={"version": config.version},
                data={"Name": config.name, "Labels": dict(labels)},
            )
            self._api._raise_for_status(response)

    def read_spec(self, service: str) -> SpecHandle:
        with self._translate(f"reading service {service}"):
            raw = self._api.inspect_service(service)
        return SpecHandle(_service_state(raw), copy.deepcopy(raw.get("Spec") or {}))

    def write_mounts(
        self, handle: SpecHandle, slots: Sequence[MountSlot], force_update: int
    ) -> None:
        """Update the service to `handle`'s spec with only these changes: each slot's target
        mounts the slot's reference (or nothing), and ForceUpdate is `force_update`.

        The whole spec goes back as it was read, at the version it was read: no merge with a
        later read (docker-py's `fetch_current_spec` keeps keys absent from what it is
        given), and swarm refuses the update if the service changed meanwhile
        (UpdateOutOfSequence)."""
        spec = copy.deepcopy(dict(handle._spec))
        template = spec.setdefault("TaskTemplate", {})
        container = template.setdefault("ContainerSpec", {})
        for kind, (_, _, list_key) in _ID_KEY.items():
            wanted = {slot.target: slot.mount for slot in slots if slot.kind is kind}
            if not wanted:
                continue
            items = []
            for item in container.get(list_key) or ():
                target = (item.get("File") or {}).get("Name")
                if target not in wanted:
                    items.append(item)
                    continue
                mount = wanted.pop(target)  # replaced in place: the list keeps its order
                if mount is not None:
                    items.append(_ref_to_api(mount))
            items += [_ref_to_api(m) for m in wanted.values() if m is not None]
            if items:
                container[list_key] = items
            else:
                container.pop(list_key, None)
        template["ForceUpdate"] = force_update
        state = handle.state
        with self._translate(f"updating service {state.name}"):
            # APIClient.update_service rebuilds the spec from its arguments (and drops what
            # it does not know); this posts the spec as read, changed only as above.
            response = self._api._post_json(
                self._api._url("/services/{0}/update", state.id),
                data=spec,
                params={"version": state.version},
            )
            self._api._result(response, json=True)


DEFAULT_SOCKET = "unix:///var/run/docker.sock"


def _check_socket(host: str, timeout_s: float) -> None:
    """Try a local socket before the SDK does: the SDK leaves its socket open when the
    daemon is not there, and the error it gives names no path."""
    if not host.startswith("unix://"):
        return
    path = host[len("unix://") :]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(min(timeout_s, 5.0))
        try:
            probe.connect(path)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise DockerUnavailable(f"cannot reach Docker at {path}: {reason}") from None


def _short(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    text = str(explanation or exc)
    return " ".join(text.split())[:300]
