"""The stalling Docker API proxy against the real engine."""

from __future__ import annotations

import subprocess
import time

import docker
import pytest
import requests

from tests.harness.resources import Resources
from tests.support.stall_proxy import StallingProxy

pytestmark = pytest.mark.docker


def _docker(proxy: StallingProxy, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["docker", "-H", proxy.docker_host, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_forwards_then_stalls_new_requests_until_resumed(
    docker_client: docker.DockerClient,
) -> None:
    with StallingProxy() as proxy:
        first = _docker(proxy, "version", "--format", "{{.Server.Version}}")
        out, _ = first.communicate(timeout=30)
        assert first.returncode == 0 and out.strip()
        assert any(path.endswith("/version") for _, _, path in proxy.requests)

        proxy.stall()
        stalled = _docker(proxy, "info", "--format", "{{.Swarm.LocalNodeState}}")
        with pytest.raises(subprocess.TimeoutExpired):
            stalled.communicate(timeout=2)
        assert proxy.held
        proxy.resume()
        out, err = stalled.communicate(timeout=30)
        assert (stalled.returncode, out.strip()) == (0, "active"), err


def test_stall_after_a_request_and_hold_its_response(
    docker_client: docker.DockerClient, resources: Resources
) -> None:
    name = resources.name("stalled-secret")
    with StallingProxy() as proxy:
        proxy.stall_after(
            lambda method, path: method == "POST" and "/secrets/create" in path, in_flight=True
        )
        client = docker.APIClient(base_url=proxy.docker_host, timeout=2)
        try:
            assert client.ping()
            started = time.monotonic()
            with pytest.raises(requests.exceptions.ReadTimeout):
                client.create_secret(name, b"stalled", labels=resources.labels)
            assert time.monotonic() - started < 10
            assert proxy.wait_stalled(1) <= time.time()
            with pytest.raises(requests.exceptions.RequestException):
                client.ping()  # a new request stalls too
        finally:
            client.close()
    # The engine did the work; the client never heard of it.
    created = docker_client.secrets.list(filters={"name": name})
    assert [s.name for s in created] == [name]
    resources.track(created[0])
