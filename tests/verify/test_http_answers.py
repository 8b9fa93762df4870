"""`verify` reads the HTTP answer through http.client: a chunked Portainer status passes,
a redirect is reported as one (real TLS servers on loopback, no Docker)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from phoenix_certbot.cli.main import cli
from tests.support.tls_server import TlsServer, answer, chunked
from tests.verify import builders as b

STATUS = "/api/system/status"


def _verify(tmp_path: Path, server: TlsServer, path: str) -> tuple[int, list[dict[str, Any]]]:
    live = tmp_path / "letsencrypt" / "live" / "portainer"
    url = server.url(path)
    entry = b.entry("portainer", live, verify=[{"url": url, "server_name": "portainer.test"}])
    manifest = b.write_manifest(tmp_path / "m.json", [entry], tmp_path / "state")
    args = ["verify", "--json", "--no-swarm-checks", "--timeout", "5", "--manifest", str(manifest)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout)["findings"]


def _leaf_server(tmp_path: Path, reply: bytes) -> TlsServer:
    """Serves the leaf of a lineage written under tmp_path (what `_verify` names)."""
    leaf, _ = b.lineage(tmp_path)
    return TlsServer(tmp_path, reply, leaf=leaf)


def test_a_chunked_portainer_status_passes(tmp_path: Path) -> None:
    reply = chunked("200 OK", [b'{"Version": "2.19.4",', b' "InstanceID": "x"}'])
    with _leaf_server(tmp_path, reply) as server:
        code, findings = _verify(tmp_path, server, STATUS)
    assert (code, findings) == (0, [])


def test_a_redirect_is_a_warning_not_a_dead_server(tmp_path: Path) -> None:
    with _leaf_server(tmp_path, answer("302 Found", headers=("Location: /login",))) as server:
        code, findings = _verify(tmp_path, server, "/")
    assert code == 0
    assert [(f["id"], f["severity"]) for f in findings] == [("live.redirect", "warning")]
    assert "a redirect to /login" in findings[0]["message"]


def test_a_redirect_instead_of_the_status_api_is_an_error(tmp_path: Path) -> None:
    with _leaf_server(tmp_path, answer("301 Moved", headers=("Location: /x",))) as server:
        code, findings = _verify(tmp_path, server, STATUS)
    assert code == 1
    assert [f["id"] for f in findings] == ["live.portainer-json"]
