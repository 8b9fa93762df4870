"""Did the tool touch anything it does not own? Snapshots of a swarm's objects, compared.

`ForeignObjects.take(api, mine)` records every service, secret, config, swarm network and node
the predicate `mine(name)` does not claim (objects the test or the tool made for this test),
with a hash of its spec. `changes(after)` lists each one that is gone or whose spec changed.
Objects created meanwhile are not listed: on the shared daemon other test sessions create
theirs at any time, and creating is not touching.

On the shared daemon other sessions also change their own objects while a test runs; pass
`unstable` to leave out names that belong to them (`phxtest-` objects of other tests). A
test adds decoys of its own (named like ours, not in the manifest) and claims them as
foreign, so a tool that strays is caught even where the shared swarm must be read loosely.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Claim = Callable[[str], bool]


def _never(_: str) -> bool:
    return False


@dataclass(frozen=True)
class ForeignObjects:
    objects: Mapping[tuple[str, str], tuple[str, str]]  # (kind, id) -> (name, spec hash)

    @classmethod
    def take(cls, api: Any, mine: Claim, unstable: Claim = _never) -> ForeignObjects:
        found: dict[tuple[str, str], tuple[str, str]] = {}
        listings: list[tuple[str, list[dict[str, Any]]]] = [
            ("service", api.services()),
            ("secret", api.secrets()),
            ("config", api.configs()),
            # Local networks (bridge, host, ...) are the daemon's, remade when it restarts.
            ("network", [n for n in api.networks() if n.get("Scope") == "swarm"]),
            ("node", api.nodes()),
        ]
        for kind, items in listings:
            for item in items:
                name = _name(kind, item)
                if mine(name) or unstable(name):
                    continue
                spec = item.get("Spec", item) if kind != "network" else _network_spec(item)
                if kind == "node":  # the node's own status changes; its spec is what we own
                    spec = item.get("Spec", {})
                digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
                found[(kind, str(item.get("ID") or item["Id"]))] = (name, digest)
        return cls(found)

    def changes(self, after: ForeignObjects) -> list[str]:
        problems: list[str] = []
        for key, (name, digest) in self.objects.items():
            now = after.objects.get(key)
            if now is None:
                problems.append(f"{key[0]} {name} ({key[1][:12]}) removed")
            elif now[1] != digest:
                problems.append(f"{key[0]} {name} ({key[1][:12]}) changed")
        return problems


def _name(kind: str, item: Mapping[str, Any]) -> str:
    if kind == "network":
        return str(item.get("Name", ""))
    if kind == "node":
        return str((item.get("Description") or {}).get("Hostname", ""))
    return str(item["Spec"]["Name"])


def _network_spec(item: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("Name", "Driver", "Scope", "Labels", "Options", "Internal", "Attachable", "Ingress")
    return {k: item.get(k) for k in keep}


def by_prefix(*prefixes: str) -> Claim:
    def claims(name: str) -> bool:
        return name.startswith(prefixes)

    return claims
