"""Portainer's HTTP API: the few documented calls the readiness checks make.

Every call is one `net.https.fetch` (bounded by its own timeout), with Portainer's
certificate checked against the system store or the given CA bundle: the API key must
never go to a server we cannot authenticate. Answers become `readiness.model` values;
anything taken from an answer is passed through `ApiToken.redact`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from phoenix_certbot.errors import BadInput
from phoenix_certbot.net.https import HttpsResult, Trust, fetch
from phoenix_certbot.readiness.model import AgentNode, ApiToken, Call, Environment

STATUS_PATH = "/api/system/status"
ENDPOINTS_PATH = "/api/endpoints"
AGENT_TARGET_HEADER = "X-PortainerAgent-Target"
API_KEY_HEADER = "X-API-Key"
MAX_API_BODY = 4 * 1024 * 1024  # a node list of a large swarm
_DETAIL_CHARS = 200
_T = TypeVar("_T")


def portainer_status_problem(body: bytes) -> str | None:
    """Why `body` is not Portainer's /api/system/status answer, or None when it is."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "the answer is not JSON, so it is not Portainer's status API"
    return _status_problem(data)


def _status_problem(data: Any) -> str | None:
    if not isinstance(data, dict) or not data.get("Version"):
        return "the JSON answer has no Version, so it is not Portainer's status API"
    return None


@dataclass(frozen=True)
class PortainerApi:
    url: str  # base URL: https://HOST:PORT[/prefix]
    server_name: str | None = None
    ca_file: Path | None = None
    token: ApiToken | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme != "https" or not parts.hostname:
            raise BadInput(f"Portainer URL {self.url!r}: give https://HOST:PORT")
        self.trust.context()  # BadInput now for an unusable CA file, not at the first call

    @property
    def trust(self) -> Trust:
        return Trust(verify=True, ca_file=self.ca_file)

    def _get(
        self, path: str, timeout_s: float, target: str | None = None, auth: bool = True
    ) -> tuple[Call, Any]:
        """GET `path`; the call and the decoded JSON (None unless a 2xx JSON answer)."""
        what = f"GET {path}" + (f" ({AGENT_TARGET_HEADER}: {target})" if target else "")
        if timeout_s <= 0:
            return Call(what, error="not asked: the time for the checks ran out"), None
        headers: dict[str, str] = {"Accept": "application/json"}
        if auth and self.token is not None:
            headers[API_KEY_HEADER] = self.token.value
        if target is not None:
            headers[AGENT_TARGET_HEADER] = target
        result = fetch(
            self.url.rstrip("/") + path,
            server_name=self.server_name,
            trust=self.trust,
            headers=headers,
            timeout_s=timeout_s,
            max_body=MAX_API_BODY,
        )
        return self._call(what, result)

    def _call(self, what: str, result: HttpsResult) -> tuple[Call, Any]:
        clean = self.token.redact if self.token is not None else _same
        if result.error is not None:
            return Call(what, error=clean(result.error), untrusted=result.untrusted), None
        status = result.status
        if not result.http_ok:
            return Call(what, status=status, detail=clean(_detail(result.body))), None
        try:
            data = json.loads(result.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return Call(what, status=status, problem="the answer is not JSON"), None
        return Call(what, status=status), data

    # -- the calls ---------------------------------------------------------------------
    def status(self, timeout_s: float) -> tuple[Call, str | None]:
        """GET /api/system/status (no token needed): Portainer's version."""
        call, data = self._get(STATUS_PATH, timeout_s, auth=False)
        if not call.ok:
            return call, None
        problem = _status_problem(data)
        if problem is not None:
            return Call(call.what, call.status, problem=problem), None
        return call, str(data["Version"])

    def environments(self, timeout_s: float) -> tuple[Call, tuple[Environment, ...]]:
        return self._list(
            ENDPOINTS_PATH, timeout_s, _environment, "a list of environments (Id, Name, Type)"
        )

    def nodes(self, environment_id: int, timeout_s: float) -> tuple[Call, tuple[AgentNode, ...]]:
        """The swarm's nodes as the environment's agent sees them (Docker's /nodes)."""
        path = f"{ENDPOINTS_PATH}/{environment_id}/docker/nodes"
        return self._list(path, timeout_s, _agent_node, "Docker's node list")

    def _list(
        self, path: str, timeout_s: float, parse: Callable[[Any], _T], what: str
    ) -> tuple[Call, tuple[_T, ...]]:
        call, data = self._get(path, timeout_s)
        if not call.ok:
            return call, ()
        try:
            return call, tuple(parse(item) for item in data)
        except (TypeError, KeyError, ValueError, AttributeError):
            return Call(call.what, call.status, problem=f"the answer is not {what}"), ()

    def agent_info(self, environment_id: int, hostname: str, timeout_s: float) -> Call:
        """Docker's /info from the agent on node `hostname`, through Portainer."""
        path = f"{ENDPOINTS_PATH}/{environment_id}/docker/info"
        call, data = self._get(path, timeout_s, target=hostname)
        if call.ok and not isinstance(data, dict):
            return Call(call.what, call.status, problem="the answer is not Docker's /info")
        return call


def _same(text: str) -> str:
    return text


def _environment(raw: Any) -> Environment:
    return Environment(
        id=int(raw["Id"]),
        name=str(raw["Name"]),
        type=int(raw["Type"]),
        status=int(raw["Status"]),
        url=str(raw.get("URL") or ""),
    )


def _agent_node(raw: Any) -> AgentNode:
    spec, status = raw.get("Spec") or {}, raw.get("Status") or {}
    return AgentNode(
        id=str(raw["ID"]),
        hostname=str(raw["Description"]["Hostname"]),
        role=str(spec.get("Role") or ""),
        state=str(status.get("State") or ""),
        address=str(status.get("Addr") or ""),
    )


def _detail(body: bytes) -> str:
    """Portainer's error text ({"message": ..., "details": ...}), or the answer's start."""
    text = body.decode("utf-8", errors="replace")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and (data.get("message") or data.get("details")):
        parts = [str(data.get(k)) for k in ("message", "details") if data.get(k)]
        text = ": ".join(dict.fromkeys(parts))
    return " ".join(text.split())[:_DETAIL_CHARS]
