from __future__ import annotations

import pytest

from phoenix_certbot.compose.load import parse_compose
from phoenix_certbot.compose.ports import (
    InvalidPort,
    PortSpec,
    long_syntax,
    parse_port,
    parse_ports,
    parse_short_port,
)
from phoenix_certbot.compose.tree import Scalar


def spec(
    target: int,
    published: int | None = None,
    protocol: str = "tcp",
    mode: str = "ingress",
    host_ip: str | None = None,
    line: int = 3,
) -> PortSpec:
    return PortSpec(target, published, protocol, mode, host_ip, line, "f.yml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9443", (spec(9443),)),
        ("9443:9443", (spec(9443, 9443),)),
        ("8443:9443", (spec(9443, 8443),)),
        ("127.0.0.1:9443:9443", (spec(9443, 9443, host_ip="127.0.0.1"),)),
        ("127.0.0.1::9443", (spec(9443, None, host_ip="127.0.0.1"),)),
        ("[::1]:9443:9443", (spec(9443, 9443, host_ip="::1"),)),
        ("::1:9443:9443", (spec(9443, 9443, host_ip="::1"),)),
        ("9443:9443/tcp", (spec(9443, 9443),)),
        ("53:53/udp", (spec(53, 53, "udp"),)),
        ("8000-8001:8000-8001", (spec(8000, 8000), spec(8001, 8001))),
        ("9000-9001:8000-8001/udp", (spec(8000, 9000, "udp"), spec(8001, 9001, "udp"))),
        ("7000-7001", (spec(7000), spec(7001))),
        ("0:80", (spec(80),)),
    ],
)
def test_short_syntax(text: str, expected: tuple[PortSpec, ...]) -> None:
    assert parse_short_port(text, "f.yml", 3) == expected


@pytest.mark.parametrize(
    "text",
    ["", "http", "0", "70000:80", "80:", "8001-8000:80", "8000-8001:80", "80/quic", "a:80:90"],
)
def test_short_syntax_invalid(text: str) -> None:
    with pytest.raises(ValueError):
        parse_short_port(text, "f.yml", 3)


def _ports(yaml_ports: str) -> tuple[PortSpec | InvalidPort, ...]:
    text = f"services:\n  s:\n    ports:\n{yaml_ports}"
    service = parse_compose(text, "f.yml", {"P": "9443"}).services[0]
    return parse_ports(service.node.get("ports"))


def test_long_syntax_and_defaults() -> None:
    ports = _ports(
        "      - target: 9443\n"
        "        published: 9443\n"
        "        protocol: tcp\n"
        "        mode: host\n"
        "      - target: 80\n"
        '      - {target: 53, published: "53", protocol: udp}\n'
        "      - target: 8443\n"
        "        published: ${P}\n"
    )
    assert ports == (
        PortSpec(9443, 9443, "tcp", "host", None, 4, "f.yml"),
        PortSpec(80, None, "tcp", "ingress", None, 8, "f.yml"),
        PortSpec(53, 53, "udp", "ingress", None, 9, "f.yml"),
        PortSpec(8443, 9443, "tcp", "ingress", None, 10, "f.yml"),
    )


def test_unquoted_sexagesimal_looking_port_stays_a_port() -> None:
    # YAML 1.1 reads an unquoted 22:22 as the integer 1342; Docker does not.
    assert _ports("      - 22:22\n      - 8000\n") == (
        PortSpec(22, 22, "tcp", "ingress", None, 4, "f.yml"),
        PortSpec(8000, None, "tcp", "ingress", None, 5, "f.yml"),
    )


def test_invalid_entries_are_reported_not_raised() -> None:
    ports = _ports(
        '      - "9443:9443"\n'
        "      - target: 80\n"
        "        mode: bridge\n"
        "      - {published: 80}\n"
        "      - {target: 80, host: x}\n"
        "      - [80]\n"
    )
    assert [type(p).__name__ for p in ports] == [
        "PortSpec",
        "InvalidPort",
        "InvalidPort",
        "InvalidPort",
        "InvalidPort",
    ]
    assert [(p.line, p.message) for p in ports if isinstance(p, InvalidPort)] == [
        (5, "port mode must be 'ingress' or 'host', not 'bridge'"),
        (7, "a long-syntax port needs 'target'"),
        (8, "unknown port option 'host'"),
        (9, "a port is a string like '9443:9443' or a mapping with 'target'"),
    ]


def test_ports_must_be_a_list() -> None:
    service = parse_compose("services:\n  s:\n    ports: 80\n", "f.yml", {}).services[0]
    assert parse_ports(service.node.get("ports")) == (
        InvalidPort("80", "'ports' must be a list", 3, "f.yml"),
    )


def test_parse_port_of_a_scalar_node() -> None:
    assert parse_port(Scalar("9443:9443", "f.yml", 3)) == (spec(9443, 9443),)


def test_long_syntax_rendering() -> None:
    assert long_syntax(spec(9443, 9443, mode="host")) == (
        "{target: 9443, published: 9443, protocol: tcp, mode: host}"
    )
    assert long_syntax(spec(80)) == "{target: 80, protocol: tcp, mode: ingress}"
