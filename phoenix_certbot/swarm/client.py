"""The Docker adapter: the only module that talks to the Docker Engine.

It turns API dictionaries into `swarm.model` values and Docker's exceptions into ours.
Service specs stay raw in here: the rest of the tool only says which mounts to set.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from phoenix_certbot.errors import DockerUnavailable, NotSwarmManager, OperationFailed
from phoenix_certbot.manifest.model import ObjectKind
from phoenix_certbot.swarm.model import (
    DeployedObject,
    MountRef,
    NodeInfo,
    ServiceState,
    SwarmSnapshot,
    TaskState,
    UpdateState,
)

log = logging.getLogger(__name__)

_OUT_OF_SEQUENCE = "update out of sequence"
UPDATE_RETRIES = 5
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


@dataclass(frozen=True)
class TemplateToken:
    """A service's task template as it was before our update, to put it back on failure."""

    service_id: str
    template: Mapping[str, Any]


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
            api = docker.from_env(timeout=int(timeout_s)).api
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
            configs = tuple(_object(ObjectKind.CONFIG, c) for c in self._api.configs())
        return SwarmSnapshot(services=services, objects=secrets + configs)

    def service(self, name_or_id: str) -> ServiceState:
        with self._translate(f"reading service {name_or_id}"):
            return _service_state(self._api.inspect_service(name_or_id))

    def tasks(self, service_id: str) -> tuple[TaskState, ...]:
        with self._translate("listing tasks"):
            return tuple(_task(t) for t in self._api.tasks(filters={"service": service_id}))

    def nodes(self) -> tuple[NodeInfo, ...]:
        with self._translate("listing nodes"):
            raw_nodes = self._api.nodes()
        return tuple(
            NodeInfo(
                id=n["ID"],
                address=(n.get("Status") or {}).get("Addr", ""),
                role=(n.get("Spec") or {}).get("Role", ""),
                availability=(n.get("Spec") or {}).get("Availability", ""),
                state=(n.get("Status") or {}).get("State", ""),
                labels=_labels((n.get("Spec") or {}).get("Labels")),
            )
            for n in raw_nodes
        )

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

    def set_mounts(self, service: str, mounts: Sequence[MountRef], force: bool) -> TemplateToken:
        """Mount `mounts` on `service` (a mount replaces whatever the service mounts at the
        same target), bumping ForceUpdate when `force`. Everything else in the spec is kept.
        Returns the template as it was, for `restore`."""

        def change(template: dict[str, Any]) -> None:
            container = template.setdefault("ContainerSpec", {})
            for kind, (_, _, list_key) in _ID_KEY.items():
                wanted = {m.target: m for m in mounts if m.kind is kind}
                if not wanted:
                    continue
                kept = [
                    item
                    for item in container.get(list_key) or ()
                    if (item.get("File") or {}).get("Name") not in wanted
                ]
                container[list_key] = kept + [_ref_to_api(m) for m in wanted.values()]
            if force:
                template["ForceUpdate"] = int(template.get("ForceUpdate", 0)) + 1

        return self._update_template(service, change)

    def restore(self, token: TemplateToken) -> None:
        """Put back the task template `token` holds (our own rollback of our own change)."""
        original = dict(token.template)

        def change(template: dict[str, Any]) -> None:
            template.clear()
            template.update(original)
            # A higher ForceUpdate than before makes swarm restart tasks even when the
            # mounts alone would not differ (files written in place, forced updates).
            template["ForceUpdate"] = int(template.get("ForceUpdate", 0)) + 1

        self._update_template(token.service_id, change)

    def _update_template(self, service: str, change: Any) -> TemplateToken:
        import copy

        for attempt in range(1, UPDATE_RETRIES + 1):
            with self._translate(f"reading service {service}"):
                raw = self._api.inspect_service(service)
            original = copy.deepcopy(raw["Spec"].get("TaskTemplate", {}))
            template = copy.deepcopy(original)
            change(template)
            try:
                with self._translate(f"updating service {service}"):
                    self._api.update_service(
                        raw["ID"],
                        raw["Version"]["Index"],
                        task_template=template,
                        fetch_current_spec=True,
                    )
            except OperationFailed as exc:
                # Someone (or swarm itself) changed the service between our read and our
                # write: read again and re-apply the same change.
                if _OUT_OF_SEQUENCE in str(exc) and attempt < UPDATE_RETRIES:
                    log.info("service %s changed while updating; retrying (%d)", service, attempt)
                    time.sleep(0.2 * attempt)
                    continue
                raise
            return TemplateToken(service_id=raw["ID"], template=original)
        raise OperationFailed(
            f"{self.where}: service {service}: {_OUT_OF_SEQUENCE} {UPDATE_RETRIES} times"
        )


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
