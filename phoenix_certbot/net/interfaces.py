"""This host's network interface towards an address, and its MTU (read from /proc, /sys).

The swarm's overlay packets to a node leave through the interface the routing table picks
for the node's address; an overlay MTU that does not fit that interface's MTU (less the
VXLAN header) drops large packets while small ones (pings, handshakes) pass.
"""

from __future__ import annotations

import ipaddress
import logging
import struct
from pathlib import Path

log = logging.getLogger(__name__)

ROUTES = Path("/proc/net/route")
SYS_NET = Path("/sys/class/net")


def route_interface(address: str, routes: str) -> str | None:
    """The interface of the most specific IPv4 route to `address` in /proc/net/route's
    text; loopback addresses go through `lo` (the local table is not listed there)."""
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        return None  # IPv6 (or a name): not looked up
    if ip.is_loopback:
        return "lo"
    best: tuple[int, int, str] | None = None  # (prefix length, -metric, interface)
    for line in routes.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            destination = _little_endian_ip(fields[1])
            mask = _little_endian_ip(fields[7])
            metric = int(fields[6])
        except ValueError:
            continue
        if int(ip) & mask != destination:
            continue
        candidate = (bin(mask).count("1"), -metric, fields[0])
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    return best[2] if best else None


def _little_endian_ip(text: str) -> int:
    """/proc/net/route prints addresses as the hex of their bytes read little-endian."""
    return int.from_bytes(struct.pack("<I", int(text, 16)), "big")


def interface_towards(address: str) -> tuple[str, int] | None:
    """(interface, MTU) on the way from this host to `address`, or None when unknown."""
    try:
        name = route_interface(address, ROUTES.read_text(encoding="ascii"))
        if name is None:
            return None
        return name, int((SYS_NET / name / "mtu").read_text(encoding="ascii").strip())
    except (OSError, ValueError) as exc:
        log.debug("no interface towards %s: %s", address, exc)
        return None
