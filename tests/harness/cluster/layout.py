"""Where a lab lives: its slot (every name and address), and its nodes' names and roles."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

SLOTS = 8
# Every lab address is in 172.16.0.0/16: private (RFC 1918), and in none of the pools Docker
# allocates from by default, so no network the shared dockerd (or a lab node's own dockerd)
# creates can overlap a lab's: local bridges take 172.17.0.0/16 .. 172.31.0.0/16, then /20s
# of 192.168.0.0/16; swarm overlays take /24s of 10.0.0.0/8 (the shared swarm's ingress is
# 10.0.0.0/24; a lab swarm's own overlays come from 10/8 too, and would collide with a
# node subnet there). The first pre-slot lab used 10.213.0.0/24: that is gone.
NET16 = "172.16"
BIP_BASE = 128  # docker0 of node i in slot S: 172.16.(128 + 16 S + i).1/24
MAX_NODES = 8
LOCK_DIR = Path("/run/lock")
TOOLS = (
    "ip", "nsenter", "unshare", "hostname", "dockerd", "docker", "runc", "iptables", "umount",
    "bash",
)  # fmt: skip
MANAGER = "manager"
WORKER = "worker"


@dataclass(frozen=True)
class Slot:
    """The names and addresses of one lab; nothing of two slots collides."""

    number: int

    def __post_init__(self) -> None:
        if not 0 <= self.number < SLOTS:
            raise ValueError(f"slot {self.number}: 0 to {SLOTS - 1}")

    @property
    def prefix(self) -> str:
        return f"phx{self.number}"

    @property
    def subnet(self) -> str:
        return f"{NET16}.{self.number}.0/24"

    @property
    def address_prefix(self) -> str:  # with the dot: slot 1's is not a prefix of 172.16.12.x
        return f"{NET16}.{self.number}."

    @property
    def host_address(self) -> str:
        return f"{NET16}.{self.number}.1"

    @property
    def host_link(self) -> str:  # the host's end; its peer sits in the switch namespace
        return f"{self.prefix}-h"

    @property
    def switch_ns(self) -> str:
        return f"{self.prefix}-sw"

    @property
    def bridge(self) -> str:
        return f"{self.prefix}-br"

    @property
    def lock_file(self) -> Path:
        return LOCK_DIR / f"phxlab-{self.number}.lock"

    def node_address(self, index: int) -> str:
        return f"{NET16}.{self.number}.{2 + index}"

    def bip(self, index: int) -> str:
        return f"{NET16}.{BIP_BASE + 16 * self.number + index}.1/24"


@dataclass(frozen=True)
class NodeSpec:
    name: str  # in every name of the node: netns, hostname, cgroup parent, node label
    role: str = WORKER

    def __post_init__(self) -> None:
        # Short: "phxS-" + name must fit a 15-byte interface name.
        if not re.fullmatch(r"[a-z][a-z0-9]{0,7}", self.name) or self.name in {"sw", "br", "h"}:
            raise ValueError(f"node name {self.name!r}: 1-8 of a-z0-9, not sw, br or h")
        if self.role not in {MANAGER, WORKER}:
            raise ValueError(f"node {self.name}: role {self.role!r}, not manager or worker")


ONE_NODE = (NodeSpec("mgr", MANAGER),)
TWO_NODES = (NodeSpec("mgr", MANAGER), NodeSpec("wkr", WORKER))
# Two managers: a Raft quorum of two needs both, so stopping either stops the control plane.
THREE_NODES = (NodeSpec("mgr", MANAGER), NodeSpec("mgr2", MANAGER), NodeSpec("wkr", WORKER))


def prerequisites_problem() -> str | None:
    """Why this machine cannot run a cluster lab, or None."""
    if os.geteuid() != 0:
        return "the cluster lab needs root (network namespaces, more dockerd)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"the cluster lab needs {', '.join(missing)} on PATH"
    return None
