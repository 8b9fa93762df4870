"""`net.portainer.PortainerApi` against a Portainer API double over real TLS on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from phoenix_certbot.errors import BadInput
from phoenix_certbot.net.portainer import PortainerApi
from phoenix_certbot.readiness.model import AgentNode, ApiToken, Environment
from tests.support import pki
from tests.support.portainer_api import API_KEY, Behaviour, FakePortainer


@pytest.fixture
def ca() -> pki.Issued:
    return pki.make_ca("portainer test CA")


@pytest.fixture
def ca_file(tmp_path: Path, ca: pki.Issued) -> Path:
    path = tmp_path / "ca.pem"
    path.write_bytes(ca.cert_pem)
    return path


@pytest.fixture
def portainer(tmp_path: Path, ca: pki.Issued) -> Iterator[FakePortainer]:
    with FakePortainer(tmp_path, ca) as server:
        yield server


def api(server: FakePortainer, ca_file: Path | None, key: str = API_KEY) -> PortainerApi:
    return PortainerApi(server.base, "portainer.test", ca_file, ApiToken(key))


def test_the_calls_return_values(portainer: FakePortainer, ca_file: Path) -> None:
    client = api(portainer, ca_file)
    status, version = client.status(5)
    assert status.ok and version == "2.19.4"
    call, environments = client.environments(5)
    assert call.ok
    assert environments == (Environment(1, "primary", 2, 1, "tasks.agent:9001"),)
    call, nodes = client.nodes(1, 5)
    assert call.ok
    assert nodes[1] == AgentNode("b" * 25, "node-1002", "worker", "ready", "10.0.0.112")
    assert client.agent_info(1, "node-1002", 5).ok
    assert portainer.targets == ["node-1002"]
    head = portainer.requests[-1].decode()
    assert f"X-API-Key: {API_KEY}\r\n" in head
    assert "X-PortainerAgent-Target: node-1002\r\n" in head


def test_a_failing_agent_is_a_failed_call(tmp_path: Path, ca: pki.Issued, ca_file: Path) -> None:
    behaviour = Behaviour(unreachable_agents={"node-1002"})
    with FakePortainer(tmp_path, ca, behaviour) as server:
        call = api(server, ca_file).agent_info(1, "node-1002", 5)
    assert not call.ok and call.status == 502
    assert call.outcome() == "HTTP 502: Unable to proxy the request: dial node-1002: i/o timeout"


def test_a_wrong_token_is_denied_and_never_repeated(
    tmp_path: Path, ca: pki.Issued, ca_file: Path
) -> None:
    wrong = "ptr_wrong_" + "x" * 20
    with FakePortainer(tmp_path, ca, Behaviour(echo_key_in_errors=True)) as server:
        call, environments = api(server, ca_file, wrong).environments(5)
    assert call.denied and environments == ()
    assert wrong not in repr(call) and "<token>" in call.detail


def test_a_self_signed_portainer_is_untrusted_without_its_ca(portainer: FakePortainer) -> None:
    status, version = api(portainer, None).status(5)
    assert status.untrusted and version is None
    assert "certificate not trusted" in str(status.error)
    assert portainer.requests == []  # the handshake failed: nothing, no key, was sent


def test_not_portainer(tmp_path: Path, ca: pki.Issued, ca_file: Path) -> None:
    with FakePortainer(tmp_path, ca, Behaviour(status_body=b"<html>hello</html>")) as server:
        status, _ = api(server, ca_file).status(5)
    assert status.problem == "the answer is not JSON"


def test_out_of_time_asks_nothing(portainer: FakePortainer, ca_file: Path) -> None:
    call, _ = api(portainer, ca_file).environments(0)
    assert call.error == "not asked: the time for the checks ran out"
    assert portainer.requests == []


def test_bad_input_is_refused_before_any_request(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="give https://HOST:PORT"):
        PortainerApi("http://10.0.0.111:9000")
    (tmp_path / "ca.pem").write_text("junk")
    with pytest.raises(BadInput, match=r"ca\.pem: cannot use as CA bundle"):
        PortainerApi("https://10.0.0.111:9443", ca_file=tmp_path / "ca.pem")
