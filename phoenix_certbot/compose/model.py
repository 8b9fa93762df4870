"""A loaded (and, for several `-c` files, merged) stack, with typed views of its services."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from phoenix_certbot.compose.ports import InvalidPort, PortSpec, parse_ports
from phoenix_certbot.compose.tree import MapNode, Scalar, SeqNode


@dataclass(frozen=True)
class UnsetVariable:
    """A `$VAR`/`${VAR}` without default that was not set: Docker substitutes ""."""

    name: str
    file: str
    line: int


@dataclass(frozen=True)
class ComposeService:
    name: str
    key: Scalar  # the service's key under `services:`; its line locates service findings
    node: MapNode

    @property
    def file(self) -> str:
        return self.key.file

    @property
    def line(self) -> int:
        return self.key.line

    @property
    def image(self) -> str:
        return self.node.text("image") or ""

    @property
    def is_portainer_server(self) -> bool:
        # portainer/portainer, portainer/portainer-ce, portainer/portainer-ee; the agent
        # image is portainer/agent.
        return "portainer/portainer" in self.image

    def command(self) -> tuple[Scalar, ...]:
        """The command as arguments, each with the line it was written on."""
        value = self.node.get("command")
        if isinstance(value, SeqNode):
            return tuple(item for item in value.items if isinstance(item, Scalar))
        if isinstance(value, Scalar) and not value.is_null:
            try:
                words = shlex.split(value.text)
            except ValueError:  # unbalanced quotes: Docker would reject it; split plainly
                words = value.text.split()
            return tuple(Scalar(word, value.file, value.line) for word in words)
        return ()

    def ports(self) -> tuple[PortSpec | InvalidPort, ...]:
        return parse_ports(self.node.get("ports"))

    def valid_ports(self) -> tuple[PortSpec, ...]:
        return tuple(p for p in self.ports() if isinstance(p, PortSpec))

    @property
    def deploy(self) -> MapNode | None:
        return self.node.mapping("deploy")

    @property
    def mode(self) -> str:
        return (self.deploy.text("mode") if self.deploy else None) or "replicated"

    def replicas(self) -> Scalar | None:
        return self.deploy.scalar("replicas") if self.deploy else None

    def replica_count(self) -> int:
        """Tasks Swarm runs for a replicated service (1 when unset); 0 if unreadable."""
        node = self.replicas()
        if node is None:
            return 1
        return node.as_int() or 0

    def update_order(self) -> Scalar | None:
        update = self.deploy.mapping("update_config") if self.deploy else None
        return update.scalar("order") if update else None

    @property
    def placement(self) -> MapNode | None:
        return self.deploy.mapping("placement") if self.deploy else None

    def constraints(self) -> tuple[str, ...]:
        placement = self.placement
        items = placement.sequence("constraints") if placement else None
        if items is None:
            return ()
        return tuple(i.text for i in items.items if isinstance(i, Scalar) and not i.is_null)

    def max_replicas_per_node(self) -> int | None:
        placement = self.placement
        value = placement.scalar("max_replicas_per_node") if placement else None
        return None if value is None else value.as_int()

    def label(self, name: str) -> Scalar | None:
        """A label from `deploy.labels` (service) or `labels` (container), in that order."""
        for holder in (self.deploy, self.node):
            found = _label(holder.get("labels"), name) if holder else None
            if found is not None:
                return found
        return None


def _label(labels: object, name: str) -> Scalar | None:
    if isinstance(labels, MapNode):
        return labels.scalar(name)
    if isinstance(labels, SeqNode):
        for item in labels.items:
            if isinstance(item, Scalar):
                key, _, value = item.text.partition("=")
                if key.strip() == name:
                    return Scalar(value.strip(), item.file, item.line)
    return None


@dataclass(frozen=True)
class ComposeFile:
    """One stack as `docker stack deploy -c F1 -c F2 ...` would see it."""

    files: tuple[str, ...]
    root: MapNode
    unset: tuple[UnsetVariable, ...] = ()

    @property
    def services(self) -> tuple[ComposeService, ...]:
        services = self.root.mapping("services")
        if services is None:
            return ()
        return tuple(
            ComposeService(e.key.text, e.key, e.value)
            for e in services.entries
            if isinstance(e.value, MapNode)
        )

    def objects(self, kind: str) -> MapNode | None:
        """The top-level `secrets:` or `configs:` section."""
        return self.root.mapping(kind)
