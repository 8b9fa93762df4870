"""A rollback puts back exactly the mounts the rollout changed, on the real daemon, and never
overwrites what someone else changed in the service meanwhile."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.rotation.lab import (
    PHOENIX_CERT,
    SAN,
    Lab,
    invoke,
    served_sha256,
)
from tests.support import pki

pytestmark = pytest.mark.docker


def test_a_rollback_removes_a_config_list_the_rollout_added(lab: Lab) -> None:
    refused = pki.issue([SAN], lab.ca)
    bootstrap = pki.issue([SAN], lab.ca)
    standin = lab.deploy("web", bootstrap, env={"STANDIN_FAIL_IF_CERT_SHA256": refused.sha256})
    lab.lineage("web", refused)
    binding = lab.binding(standin) | {
        "configs": [
            {"name": lab.resources.name("web.chain"), "source": "fullchain", "target": "/ca.pem"}
        ]
    }
    manifest = lab.manifest([lab.entry("web", [standin], bindings=[binding])])
    before = lab.inspect(standin)["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert "Configs" not in before

    result = invoke("rotate", "--manifest", manifest, "--all")

    assert result.exit_code == 1, result.output
    assert "rolled-back" in result.stdout
    after = lab.inspect(standin)["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert not after.get("Configs"), after.get("Configs")
    assert after["Secrets"] == before["Secrets"]
    assert served_sha256(standin.port) == bootstrap.sha256


def test_a_service_changed_by_someone_else_during_the_rollout_is_not_overwritten(
    lab: Lab,
) -> None:
    bootstrap = pki.issue([SAN], lab.ca)
    standin = lab.deploy("web", bootstrap)
    lineage = lab.lineage("web")
    # The URL checked is another service's: verification fails, the engine wants to roll back.
    decoy = lab.deploy("decoy")
    manifest = lab.manifest([lab.entry("web", [standin], verify=[decoy])])
    old = lab.mounted(standin)

    process = subprocess.Popen(
        [str(PHOENIX_CERT), "rotate", "--manifest", str(manifest), "--all", "--verify-timeout=10"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while lab.mounted(standin) == old and time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()
            time.sleep(0.1)
        ours = lab.mounted(standin)
        assert ours != old
        # Someone else deploys meanwhile (an environment variable, as a stack update would).
        other = ["--detach", "--no-resolve-image", "--env-add", "DEPLOYED_BY=someone-else"]
        subprocess.run(
            ["docker", "service", "update", *other, standin.id],
            check=True,
            capture_output=True,
            timeout=60,
        )
        stdout, stderr = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    assert process.returncode == 4, stdout + stderr
    # It returns only once swarm has finished the other deploy's update.
    assert (lab.inspect(standin).get("UpdateStatus") or {}).get("State") in {None, "completed"}
    assert f"{standin.name}: conflict" in stdout
    assert "TaskTemplate.ContainerSpec.Env" in stdout
    spec = lab.inspect(standin)["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert "DEPLOYED_BY=someone-else" in spec.get("Env", [])
    assert lab.mounted(standin) == ours  # left as the other deploy made it
    lab.wait_running(standin)
    assert served_sha256(standin.port) == lineage.leaf.sha256
