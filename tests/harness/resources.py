"""Track the Docker objects a test creates and remove exactly those afterwards."""

from __future__ import annotations

import secrets as token
import time
from typing import Any, TypeVar

import docker
import docker.errors
from docker.models.configs import Config
from docker.models.networks import Network
from docker.models.secrets import Secret
from docker.models.services import Service

from tests.harness.swarm import create_service

LABEL = "phoenix-certbot.test"

Tracked = TypeVar("Tracked", Service, Secret, Config, Network)


def remove_config_named(name: str, timeout_s: int = 60) -> None:
    """Remove the config called exactly `name`, if there is one (a lease a run made under a
    name of its own; `name` filters by prefix, hence the exact check)."""
    client = docker.from_env(timeout=timeout_s)
    try:
        for config in client.configs.list(filters={"name": name}):
            if config.name == name:
                config.remove()
    finally:
        client.close()


def new_prefix() -> str:
    """A name prefix unique to one test, e.g. `phxtest-1a2b3c4d-`."""
    return f"phxtest-{token.token_hex(4)}-"


class Resources:
    """Records every service, secret, config and network a test registers, by id.

    `cleanup()` removes services first and waits until their containers are gone (secrets and
    networks cannot be removed while a task uses them), then configs, secrets and networks.
    Nothing that was not registered is ever touched.
    """

    def __init__(self, client: docker.DockerClient, prefix: str | None = None) -> None:
        self.client = client
        self.prefix = prefix or new_prefix()
        self.services: list[str] = []
        self.secrets: list[str] = []
        self.configs: list[str] = []
        self.networks: list[str] = []

    def name(self, suffix: str) -> str:
        return f"{self.prefix}{suffix}"

    @property
    def labels(self) -> dict[str, str]:
        # Lets a person find leftovers of an interrupted run: docker service ls -f label=...
        return {LABEL: self.prefix}

    def track(self, obj: Tracked) -> Tracked:
        """Register an object the test created by other means; returns it unchanged."""
        ident = str(obj.id)
        if isinstance(obj, Service):
            self.services.append(ident)
        elif isinstance(obj, Secret):
            self.secrets.append(ident)
        elif isinstance(obj, Config):
            self.configs.append(ident)
        else:
            self.networks.append(ident)
        return obj

    def create_secret(self, suffix: str, data: bytes) -> Secret:
        secret = self.client.secrets.create(name=self.name(suffix), data=data, labels=self.labels)
        # The SDK returns a Secret holding only the id; reload gives its name and attrs.
        secret.reload()
        return self.track(secret)

    def create_config(self, suffix: str, data: bytes) -> Config:
        config = self.client.configs.create(name=self.name(suffix), data=data, labels=self.labels)
        config.reload()
        return self.track(config)

    def create_network(self, suffix: str, **kwargs: Any) -> Network:
        kwargs.setdefault("driver", "overlay")
        kwargs.setdefault("labels", self.labels)
        return self.track(self.client.networks.create(self.name(suffix), **kwargs))

    def create_service(self, image: str, suffix: str, **kwargs: Any) -> Service:
        kwargs.setdefault("labels", self.labels)
        return self.track(create_service(self.client, image, name=self.name(suffix), **kwargs))

    def cleanup(self, timeout: float = 60.0) -> list[str]:
        """Remove everything registered; returns what could not be removed (empty if all)."""
        deadline = time.monotonic() + timeout
        problems: list[str] = []
        for ident in self.services:
            self._remove(self.client.services, ident, problems)
        for ident in self.services:
            if not self._wait_containers_gone(ident, deadline):
                problems.append(f"containers of service {ident} still present")
        # A secret or config can stay "in use" for a moment after its task's container went.
        for collection, idents in (
            (self.client.configs, self.configs),
            (self.client.secrets, self.secrets),
            (self.client.networks, self.networks),
        ):
            for ident in idents:
                self._remove(collection, ident, problems, deadline)
        self.services, self.secrets, self.configs, self.networks = [], [], [], []
        return problems

    @staticmethod
    def _remove(
        collection: Any, ident: str, problems: list[str], deadline: float | None = None
    ) -> None:
        for _attempt in range(100):
            try:
                collection.get(ident).remove()
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as exc:
                if deadline is None or time.monotonic() > deadline:
                    problems.append(f"{ident}: {exc}")
                    return
                time.sleep(0.2)
            else:
                return
        problems.append(f"{ident}: still present after 100 attempts")

    def _wait_containers_gone(self, service_id: str, deadline: float) -> bool:
        label = f"com.docker.swarm.service.id={service_id}"
        for _attempt in range(600):
            # sparse: no inspect per container, which would race with their removal.
            if not self.client.containers.list(all=True, sparse=True, filters={"label": label}):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return False
