"""Did the tool touch anything it does not own? Two checks, for two kinds of swarm.

**Snapshots.** `ForeignObjects.take(api, mine)` records every service, secret, config, swarm
network and node that the predicate `mine(name)` does not claim (objects the test or the
tool made for this test), with a hash of its spec. `changes(after)` lists each one that is
gone or whose spec changed. Objects created meanwhile are not listed: creating is not
touching. On a swarm of the test's own this covers everything; on the shared daemon other
sessions (benchmarks, the demo, other tests) change their objects at any moment, so there
a test passes `unstable` for everything but its own decoys (named like the tool's objects,
not in the manifest).

**The tool's own requests.** Every request the tool sends to the engine can pass through a
recording proxy (`tests.support.stall_proxy.StallingProxy`). `touched(requests, before,
allowed)` names each object that a changing request (an update or a removal) addressed and
that existed before the test without being allowed (the test's own, by name). That holds
on the shared daemon too, whatever other sessions do meanwhile. An id that did not exist
before the test is an object created during it (a version the run made and pruned).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Claim = Callable[[str], bool]
KINDS = {"services": "service", "secrets": "secret", "configs": "config", "networks": "network",
         "nodes": "node"}  # fmt: skip
# DELETE /v1.41/secrets/ID, POST /v1.41/services/ID/update, POST /v1.41/nodes/ID/update ...
_CHANGE = re.compile(r"^(?:/v[\d.]+)?/(services|secrets|configs|networks|nodes)/([^/?]+)")


def _never(_: str) -> bool:
    return False


@dataclass(frozen=True)
class ForeignObjects:
    objects: Mapping[tuple[str, str], tuple[str, str]]  # (kind, id) -> (name, spec hash)
    names: Mapping[tuple[str, str], str]  # (kind, id) -> name, of every object, claimed or not

    @classmethod
    def take(cls, api: Any, mine: Claim, unstable: Claim = _never) -> ForeignObjects:
        found: dict[tuple[str, str], tuple[str, str]] = {}
        names: dict[tuple[str, str], str] = {}
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
                ident = str(item.get("ID") or item["Id"])
                names[(kind, ident)] = name
                if mine(name) or unstable(name):
                    continue
                spec = item.get("Spec", item) if kind != "network" else _network_spec(item)
                digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
                found[(kind, ident)] = (name, digest)
        return cls(found, names)

    def changes(self, after: ForeignObjects) -> list[str]:
        problems: list[str] = []
        for key, (name, digest) in self.objects.items():
            now = after.objects.get(key)
            if now is None:
                problems.append(f"{key[0]} {name} ({key[1][:12]}) removed")
            elif now[1] != digest:
                problems.append(f"{key[0]} {name} ({key[1][:12]}) changed")
        return problems

    def touched(self, requests: Iterable[tuple[str, str]], allowed: Claim) -> list[str]:
        """Objects that existed before and that a changing request (method, path) addressed,
        by id or by name, unless `allowed(name)`."""
        problems: list[str] = []
        for method, path in requests:
            if method not in {"POST", "DELETE", "PUT"}:
                continue
            match = _CHANGE.match(path)
            if not match or match.group(2) == "create":
                continue
            kind, ref = KINDS[match.group(1)], match.group(2)
            name = self.names.get((kind, ref)) or next(
                (n for (k, i), n in self.names.items() if k == kind and ref in (n, i[: len(ref)])),
                None,
            )
            if name is not None and not allowed(name):
                problems.append(f"{method} {path}: {kind} {name} existed before the test")
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
