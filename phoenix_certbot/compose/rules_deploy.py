"""Rules on a service's `deploy:` section: its keys, host-mode ports, Portainer's database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from phoenix_certbot.compose.context import LintContext, Rule
from phoenix_certbot.compose.model import ComposeService
from phoenix_certbot.compose.ports import PortSpec, long_syntax, parse_port, parse_short_port
from phoenix_certbot.compose.rules_ports import suggested_mode
from phoenix_certbot.compose.tree import Node, Scalar, SeqNode
from phoenix_certbot.findings import Finding

# The Compose file format 3.x schema of docker/cli (what `docker stack deploy` validates
# against) allows exactly these under `deploy`, plus `x-` extension fields.
DEPLOY_KEYS = (
    "endpoint_mode",
    "labels",
    "mode",
    "placement",
    "replicas",
    "resources",
    "restart_policy",
    "rollback_config",
    "update_config",
)
# Keys that belong one level up, at service level, where people most often misplace them.
_SERVICE_KEYS = frozenset(
    {"command", "configs", "environment", "healthcheck", "image", "networks", "secrets", "volumes"}
)


def deploy_keys(ctx: LintContext) -> Iterator[Finding]:
    for service in ctx.services:
        deploy = service.deploy
        for entry in deploy.entries if deploy else ():
            key = entry.key.text
            if key in DEPLOY_KEYS or key.startswith("x-"):
                continue
            rejected = (
                f"docker stack deploy rejects the file "
                f"(services.{service.name}.deploy Additional property {key} is not allowed)"
            )
            where = (entry.key.file, entry.key.line)
            if key == "ports":
                yield ctx.finding(
                    Rule.DEPLOY_PORTS,
                    where,
                    f"'ports' under 'deploy': {rejected}, so no port is published",
                    f"move to service level: ports: [{_corrected(service, entry.value)}]",
                    service=service,
                )
                continue
            fix = (
                f"move '{key}' to service level"
                if key in _SERVICE_KEYS
                else f"remove '{key}'; deploy allows only {', '.join(DEPLOY_KEYS)}"
            )
            yield ctx.finding(
                Rule.DEPLOY_UNKNOWN_KEY,
                where,
                f"unknown key '{key}' under 'deploy': {rejected}",
                fix,
                service=service,
            )


_ORDERS = ("start-first", "stop-first")


def update_orders(ctx: LintContext) -> Iterator[Finding]:
    """`order` of update_config/rollback_config: the format allows two values only."""
    for service in ctx.services:
        for section in ("update_config", "rollback_config"):
            config = service.deploy.mapping(section) if service.deploy else None
            order = config.scalar("order") if config else None
            if order is None or order.is_null or order.text in _ORDERS:
                continue
            yield ctx.finding(
                Rule.DEPLOY_ORDER_INVALID,
                (order.file, order.line),
                f"deploy.{section}.order {order.text!r}: docker stack deploy rejects the "
                f"file (must be one of {', '.join(_ORDERS)})",
                f"set deploy.{section}.order: stop-first",
                service=service,
            )


def _corrected(service: ComposeService, ports: Node) -> str:
    """The misplaced ports in service-level long syntax (no host IP: Swarm ignores it)."""
    short_mode = suggested_mode(service)  # long-syntax entries keep their own mode
    specs: list[PortSpec] = []
    for item in ports.items if isinstance(ports, SeqNode) else ():
        try:
            if isinstance(item, Scalar):
                specs.extend(
                    replace(p, mode=short_mode, host_ip=None)
                    for p in parse_short_port(item.text, item.file, item.line)
                )
            else:
                specs.extend(parse_port(item))
        except ValueError:
            continue
    return ", ".join(long_syntax(p) for p in specs) or "..."


def host_mode(ctx: LintContext) -> Iterator[Finding]:
    for service in ctx.services:
        # Host mode without a published port binds a random one: nothing to collide.
        host_ports = sorted(
            {p.published for p in service.valid_ports() if p.mode == "host" and p.published}
        )
        if not host_ports:
            continue
        listed = ", ".join(str(p) for p in host_ports)
        order = service.update_order()
        if order is not None and order.text == "start-first":
            yield ctx.finding(
                Rule.HOST_PORT_START_FIRST,
                (order.file, order.line),
                f"host-mode port {listed} with update order start-first: the new task cannot "
                "bind the port while the old task still holds it, so every update fails",
                "set deploy.update_config.order: stop-first",
                service=service,
            )
        replicas = service.replica_count()
        if service.mode != "global" and replicas > 1 and service.max_replicas_per_node() != 1:
            node = service.replicas()
            where = (node.file, node.line) if node else (service.file, service.line)
            yield ctx.finding(
                Rule.HOST_PORT_REPLICAS,
                where,
                f"{replicas} replicas publish host-mode port {listed} and nothing keeps them "
                "on different nodes: a second task on one node cannot bind the port",
                "set deploy.placement.max_replicas_per_node: 1 (or mode: global)",
                service=service,
            )


def portainer_database(ctx: LintContext) -> Iterator[Finding]:
    """Portainer's BoltDB has a single writer: never two server tasks at once."""
    for service in ctx.services:
        if not service.is_portainer_server:
            continue
        replicas = service.replica_count()
        if service.mode == "global" or replicas > 1:
            if service.mode == "global":
                mode = service.deploy.entry("mode") if service.deploy else None
                where = mode.value if mode else service.key
                tasks = "one task per node (mode: global)"
            else:
                where = service.replicas() or service.key
                tasks = f"{replicas} replicas"
            yield ctx.finding(
                Rule.PORTAINER_REPLICAS,
                (where.file, where.line),
                f"Portainer server with {tasks}: its database allows a single writer",
                "set deploy.mode: replicated and deploy.replicas: 1",
                service=service,
            )
        order = service.update_order()
        if order is not None and order.text == "start-first":
            yield ctx.finding(
                Rule.PORTAINER_START_FIRST,
                (order.file, order.line),
                "Portainer server updated start-first: the new task opens the database "
                "while the old task still holds it",
                "set deploy.update_config.order: stop-first",
                service=service,
            )
