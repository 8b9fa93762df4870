"""A Portainer API double on loopback (a real TLS server, `tests.support.tls_server`) for
the adapter's and the judges' tests; the Docker stand-in image plays Portainer on swarms.

Answers the documented calls the readiness checks make: `/api/system/status`, and with the
right `X-API-Key`: `/api/endpoints`, `/api/endpoints/{Id}/docker/nodes` and `.../docker/info`
(per node, by `X-PortainerAgent-Target`). What it answers is set by its attributes.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support import pki
from tests.support.tls_server import TlsServer, answer

API_KEY = "ptr_" + "k3y" * 11


def node(hostname: str, node_id: str, address: str, role: str = "worker") -> dict[str, Any]:
    return {
        "ID": node_id,
        "Description": {"Hostname": hostname},
        "Spec": {"Role": role, "Availability": "active"},
        "Status": {"State": "ready", "Addr": address},
    }


def environment(env_id: int, name: str, kind: int = 2, status: int = 1) -> dict[str, Any]:
    return {"Id": env_id, "Name": name, "Type": kind, "Status": status, "URL": "tasks.agent:9001"}


@dataclass
class Behaviour:
    environments: list[dict[str, Any]] = field(default_factory=lambda: [environment(1, "primary")])
    nodes: list[dict[str, Any]] = field(
        default_factory=lambda: [
            node("node-1001", "a" * 25, "10.0.0.111", "manager"),
            node("node-1002", "b" * 25, "10.0.0.112"),
        ]
    )
    unreachable_agents: set[str] = field(default_factory=set)
    status_body: bytes = b'{"Version": "2.19.4", "InstanceID": "x"}'
    echo_key_in_errors: bool = False  # a badly behaved proxy that repeats the request


def _request(head: bytes) -> tuple[str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    path = lines[0].split(" ")[1] if lines and " " in lines[0] else "/"
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return path, headers


def _json(status: str, data: object) -> bytes:
    return answer(status, json.dumps(data).encode(), ("Content-Type: application/json",))


class FakePortainer(TlsServer):
    def __init__(
        self, tmp: Path, ca: pki.Issued | None = None, behaviour: Behaviour | None = None
    ) -> None:
        self.behaviour = behaviour or Behaviour()
        self.targets: list[str] = []
        super().__init__(tmp, self._answer, sans=("portainer.test", "127.0.0.1"), ca=ca)

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _answer(self, tls: ssl.SSLSocket, head: bytes) -> None:
        tls.sendall(self._route(*_request(head)))

    def _route(self, path: str, headers: dict[str, str]) -> bytes:
        b = self.behaviour
        if path == "/api/system/status":
            return answer("200 OK", b.status_body)
        if headers.get("x-api-key") != API_KEY:
            message = {
                "message": "Unauthorized",
                "details": "A valid authorisation token is missing",
            }
            if b.echo_key_in_errors:
                message["details"] = f"key {headers.get('x-api-key')} refused"
            return _json("401 Unauthorized", message)
        if path == "/api/endpoints":
            return _json("200 OK", b.environments)
        if path.endswith("/docker/nodes"):
            return _json("200 OK", b.nodes)
        if path.endswith("/docker/info"):
            target = headers.get("x-portaineragent-target", "")
            self.targets.append(target)
            if target in b.unreachable_agents:
                return _json(
                    "502 Bad Gateway",
                    {
                        "message": "Unable to proxy the request",
                        "details": f"dial {target}: i/o timeout",
                    },
                )
            return _json("200 OK", {"Name": target})
        return _json("404 Not Found", {"message": "not found"})
