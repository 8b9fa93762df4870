"""Rules on published ports: reachable where the manifest verifies, valid, not colliding."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from phoenix_certbot.compose.context import LintContext, Rule, VerifyUrl, verify_urls
from phoenix_certbot.compose.model import ComposeService
from phoenix_certbot.compose.ports import InvalidPort, PortSpec, long_syntax
from phoenix_certbot.compose.tree import Scalar
from phoenix_certbot.findings import Finding
from phoenix_certbot.manifest.model import CertificateEntry

LISTEN_PORT_LABEL = "io.phoenix-certbot.listen-port"
# Portainer 2.x serves HTTPS on --bind-https (default :9443) and HTTP on --bind (:9000).
_PORTAINER_LISTEN = {"https": ("--bind-https", 9443), "http": ("--bind", 9000)}
_ANY_ADDRESS = frozenset({"0.0.0.0", "::"})  # noqa: S104 - compared against, not bound


def flag_value(args: Sequence[Scalar], flag: str) -> Scalar | None:
    """The value of `--flag value` or `--flag=value` (the last one wins), if given."""
    found: Scalar | None = None
    for i, arg in enumerate(args):
        if arg.text == flag and i + 1 < len(args):
            found = args[i + 1]
        elif arg.text.startswith(flag + "="):
            found = Scalar(arg.text[len(flag) + 1 :], arg.file, arg.line)
    return found


def listen_port(service: ComposeService, scheme: str) -> tuple[int, str] | None:
    """The port the program inside listens on for `scheme`, and who says so; None: unknown."""
    if service.is_portainer_server and scheme in _PORTAINER_LISTEN:
        flag, default = _PORTAINER_LISTEN[scheme]
        value = flag_value(service.command(), flag)
        if value is None:
            return default, f"Portainer listens for {scheme} on {default}"
        port = value.text.rpartition(":")[2]
        return (int(port), f"Portainer's {flag} is {value.text}") if port.isdigit() else None
    label = service.label(LISTEN_PORT_LABEL)
    port_number = label.as_int() if label else None
    if port_number is None:
        return None
    return port_number, f"label {LISTEN_PORT_LABEL} says the service listens on {port_number}"


def suggested_mode(service: ComposeService) -> str:
    """The publish mode a fix suggests when the file does not say.

    Ingress, Swarm's default, keeps what the author wrote; a Portainer server gets host
    mode, as in the shipped manifests/portainer-stack.yml: one task on a pinned manager,
    whose address the verify URL names.
    """
    return "host" if service.is_portainer_server else "ingress"


def _tcp_published(service: ComposeService, port: int) -> tuple[PortSpec, ...]:
    return tuple(p for p in service.valid_ports() if p.published == port and p.protocol == "tcp")


def verify_ports(ctx: LintContext) -> Iterator[Finding]:
    """Each verify URL must reach a published port that leads to the listening port."""
    for entry in ctx.manifest.certificates if ctx.manifest else ():
        services = ctx.services_of(entry)
        for url in verify_urls(entry) if services else ():
            # An entry may bind several services; the URL goes to those publishing its port.
            publishing = [s for s in services if _tcp_published(s, url.port)]
            for service in services if not publishing else ():
                yield _unpublished(ctx, service, url, entry)
            for service in publishing:
                yield from _wrong_target(ctx, service, url, entry)
                yield from _unpinned(ctx, service, url, entry)


def _unpublished(
    ctx: LintContext, service: ComposeService, url: VerifyUrl, entry: CertificateEntry
) -> Finding:
    ports = service.node.entry("ports")
    where = (ports.key.file, ports.key.line) if ports else (service.file, service.line)
    listen = listen_port(service, url.scheme)
    target = listen[0] if listen else url.port
    spec = PortSpec(target, url.port, "tcp", suggested_mode(service), None, 0, "")
    return ctx.finding(
        Rule.VERIFY_PORT_UNPUBLISHED,
        where,
        f"the manifest verifies {url.url} but service {service.name} publishes no "
        f"tcp port {url.port}, so the URL cannot reach it",
        f"publish it at service level: ports: [{long_syntax(spec)}]",
        service=service,
        certificate=entry.name,
    )


def _wrong_target(
    ctx: LintContext, service: ComposeService, url: VerifyUrl, entry: CertificateEntry
) -> Iterator[Finding]:
    listen = listen_port(service, url.scheme)
    if listen is None:
        return
    port, why = listen
    for spec in _tcp_published(service, url.port):
        if spec.target != port:
            yield ctx.finding(
                Rule.VERIFY_PORT_TARGET,
                (spec.file, spec.line),
                f"published port {url.port} (verified by {url.url}) leads to target port "
                f"{spec.target}, but {why}",
                f"set target: {port} for published port {url.port}",
                service=service,
                certificate=entry.name,
            )


def _unpinned(
    ctx: LintContext, service: ComposeService, url: VerifyUrl, entry: CertificateEntry
) -> Iterator[Finding]:
    # Global services run on every node, so the named host has a task.
    if service.mode == "global" or service.constraints():
        return
    for spec in _tcp_published(service, url.port):
        if spec.mode == "host":
            yield ctx.finding(
                Rule.HOST_PORT_UNPINNED,
                (spec.file, spec.line),
                f"host-mode port {url.port} is bound only on the node running the task, and "
                f"no placement constraint keeps it on {url.host}, which {url.url} names",
                f"add deploy.placement.constraints pinning the task to the node at {url.host}",
                service=service,
                certificate=entry.name,
            )


def host_ip_ignored(ctx: LintContext) -> Iterator[Finding]:
    for service in ctx.services:
        seen: set[tuple[str, int]] = set()
        for spec in service.valid_ports():
            if not spec.host_ip or spec.host_ip in _ANY_ADDRESS:
                continue
            if (spec.file, spec.line) in seen:  # one finding per entry, not per range port
                continue
            seen.add((spec.file, spec.line))
            yield ctx.finding(
                Rule.PORT_HOST_IP_IGNORED,
                (spec.file, spec.line),
                f"Swarm ignores host IP {spec.host_ip}: the port is published on every "
                "interface, not only that address",
                "drop the IP and restrict access with a firewall or an internal network",
                service=service,
            )


def port_conflicts(ctx: LintContext) -> Iterator[Finding]:
    first: dict[tuple[int, str], tuple[ComposeService, PortSpec]] = {}
    # One finding per port entry and other service, however many ports a range spans.
    clashes: dict[tuple[str, int, str, int], list[str]] = {}
    where: dict[tuple[str, int, str, int], tuple[ComposeService, ComposeService, PortSpec]] = {}
    for service in ctx.services:
        for spec in service.valid_ports():
            if spec.published is None:
                continue
            other = first.setdefault((spec.published, spec.protocol), (service, spec))
            if other[0] is service or _may_be_apart(other, (service, spec)):
                continue
            key = (spec.file, spec.line, other[1].file, other[1].line)
            clashes.setdefault(key, []).append(f"{spec.published}/{spec.protocol}")
            where.setdefault(key, (service, other[0], other[1]))
    for key, ports in clashes.items():
        service, other_service, other_spec = where[key]
        yield ctx.finding(
            Rule.PORT_CONFLICT,
            (key[0], key[1]),
            f"port {', '.join(ports)} {'is' if len(ports) == 1 else 'are'} also published by "
            f"service {ctx.swarm_name(other_service)} ({other_spec.file}:{other_spec.line})",
            "publish a different port on one of the two services",
            service=service,
        )


def _may_be_apart(a: tuple[ComposeService, PortSpec], b: tuple[ComposeService, PortSpec]) -> bool:
    """Two host-mode ports collide only on a shared node; differing constraints may avoid it.

    Ingress ports are reserved on every node, so they always collide. We cannot evaluate
    constraints without the nodes, so differing constraint sets get the benefit of the doubt.
    """
    (sa, pa), (sb, pb) = a, b
    if pa.mode != "host" or pb.mode != "host" or "global" in (sa.mode, sb.mode):
        return False
    ca, cb = set(sa.constraints()), set(sb.constraints())
    return bool(ca) and bool(cb) and ca != cb


def invalid_ports(ctx: LintContext) -> Iterator[Finding]:
    for service in ctx.services:
        for item in service.ports():
            if isinstance(item, InvalidPort):
                yield ctx.finding(
                    Rule.PORT_INVALID,
                    (item.file, item.line),
                    f"invalid port entry {item.text!r}: {item.message}",
                    "write it as {target: N, published: N, protocol: tcp, mode: ingress}",
                    service=service,
                )
