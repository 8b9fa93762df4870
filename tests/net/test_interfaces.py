"""Which interface leads to an address (/proc/net/route), and this host's real one."""

from __future__ import annotations

from phoenix_certbot.net.interfaces import interface_towards, route_interface

ROUTES = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
wg0\t00D5000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
wg1\t00D5000A\t00000000\t0001\t0\t0\t5\t00FFFFFF\t0\t0\t0
"""


def test_the_most_specific_route_wins() -> None:
    assert route_interface("10.0.213.7", ROUTES) == "wg0"  # /24 over the default, metric 0
    assert route_interface("192.0.2.9", ROUTES) == "eth0"
    assert route_interface("198.51.100.1", ROUTES) == "eth0"  # the default route
    assert route_interface("127.0.0.1", ROUTES) == "lo"
    assert route_interface("::1", ROUTES) is None


def test_this_hosts_loopback() -> None:
    assert interface_towards("127.0.0.1") == ("lo", 65536)
