"""Port entries of a compose service, short and long syntax, as Swarm reads them.

Short syntax `[HOST_IP:][PUBLISHED:]TARGET[/PROTOCOL]`, each port optionally a range
`8000-8001`, is split like Docker's `nat.ParsePortSpec`: the last `:` part is the target,
the one before it the published port, anything before that the host IP. Ranges expand to
one entry per port, as Docker does. Swarm publishes short syntax in ingress mode and
ignores the host IP. Long syntax is a mapping of target, published, protocol and mode.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from phoenix_certbot.compose.tree import MapNode, Node, Scalar, SeqNode

PROTOCOLS = frozenset({"tcp", "udp", "sctp"})
MODES = frozenset({"ingress", "host"})
_LONG_KEYS = frozenset({"target", "published", "protocol", "mode", "host_ip"})


@dataclass(frozen=True)
class PortSpec:
    target: int
    published: int | None  # None: Swarm picks one (ingress) or none is bound (host)
    protocol: str
    mode: str  # "ingress" or "host"
    host_ip: str | None
    line: int
    file: str


@dataclass(frozen=True)
class InvalidPort:
    """An entry `docker stack deploy` would reject; `message` says why."""

    text: str
    message: str
    line: int
    file: str


def parse_port(node: Node) -> tuple[PortSpec, ...]:
    """One `ports:` item. Raises ValueError (one-line message) when it is not valid."""
    if isinstance(node, Scalar):
        return parse_short_port(node.text, node.file, node.line)
    if isinstance(node, MapNode):
        return (_parse_long(node),)
    raise ValueError("a port is a string like '9443:9443' or a mapping with 'target'")


def parse_ports(node: Node | None) -> tuple[PortSpec | InvalidPort, ...]:
    """Every item of a `ports:` value; invalid items come back as InvalidPort."""
    if node is None or (isinstance(node, Scalar) and node.is_null):
        return ()
    if not isinstance(node, SeqNode):
        return (InvalidPort(_text(node), "'ports' must be a list", node.line, node.file),)
    result: list[PortSpec | InvalidPort] = []
    for item in node.items:
        try:
            result.extend(parse_port(item))
        except ValueError as exc:
            result.append(InvalidPort(_text(item), str(exc), item.line, item.file))
    return tuple(result)


def parse_short_port(text: str, file: str, line: int) -> tuple[PortSpec, ...]:
    spec, _, protocol = text.strip().partition("/")
    protocol = protocol or "tcp"
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}")
    parts = spec.split(":")
    target_text = parts[-1]
    published_text = parts[-2] if len(parts) >= 2 else ""
    host_ip = ":".join(parts[:-2]) if len(parts) >= 3 else ""
    if host_ip.startswith("[") and host_ip.endswith("]"):
        host_ip = host_ip[1:-1]
    if host_ip:
        try:
            ipaddress.ip_address(host_ip)
        except ValueError:
            raise ValueError(f"{host_ip!r} is not an IP address") from None
    targets = _port_range(target_text)
    published: list[int | None]
    if published_text and published_text != "0":  # 0, like none, lets Swarm choose
        published = list(_port_range(published_text))
        if len(published) != len(targets):
            raise ValueError("published and target ranges differ in length")
    else:
        published = [None] * len(targets)
    return tuple(
        PortSpec(t, p, protocol, "ingress", host_ip or None, line, file)
        for t, p in zip(targets, published, strict=True)
    )


def _port_range(text: str) -> tuple[int, ...]:
    first, sep, last = text.partition("-")
    start = _port_number(first)
    end = _port_number(last) if sep else start
    if end < start:
        raise ValueError(f"range {text!r} ends before it starts")
    return tuple(range(start, end + 1))


def _port_number(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"{text!r} is not a port number (1-65535)")
    return int(text)


def _parse_long(node: MapNode) -> PortSpec:
    keys = [entry.key.text for entry in node.entries]
    unknown = [k for k in keys if k not in _LONG_KEYS and not k.startswith("x-")]
    if unknown:
        raise ValueError(f"unknown port option {unknown[0]!r}")
    target = node.scalar("target")
    if target is None:
        raise ValueError("a long-syntax port needs 'target'")
    published = node.scalar("published")
    protocol = node.text("protocol") or "tcp"
    mode = node.text("mode") or "ingress"
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}")
    if mode not in MODES:
        raise ValueError(f"port mode must be 'ingress' or 'host', not {mode!r}")
    return PortSpec(
        target=_port_number(target.text),
        published=None if published is None else _port_number(published.text),
        protocol=protocol,
        mode=mode,
        host_ip=node.text("host_ip"),
        line=node.line,
        file=node.file,
    )


def long_syntax(spec: PortSpec) -> str:
    """The entry in one-line long syntax, e.g. `{target: 9443, published: 9443, ...}`."""
    published = "" if spec.published is None else f", published: {spec.published}"
    return f"{{target: {spec.target}{published}, protocol: {spec.protocol}, mode: {spec.mode}}}"


def _text(node: Node) -> str:
    if isinstance(node, Scalar):
        return node.text
    return "{...}" if isinstance(node, MapNode) else "[...]"
