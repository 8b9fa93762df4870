"""Plan, status and verify agree on the real daemon about a mount with the right version
but the wrong mode (they all ask `rotation.mounts.classify`)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.rotation.lab import KEY_TARGET, Lab, Standin, invoke

pytestmark = pytest.mark.docker


def set_mode(lab: Lab, standin: Standin, target: str, mode: int) -> None:
    """What `docker service update` with another mode in the stack file does."""
    raw = lab.inspect(standin)
    template: dict[str, Any] = copy.deepcopy(raw["Spec"]["TaskTemplate"])
    for secret in template["ContainerSpec"]["Secrets"]:
        if secret["File"]["Name"] == target:
            secret["File"]["Mode"] = mode
    lab.api.update_service(
        standin.id, raw["Version"]["Index"], task_template=template, fetch_current_spec=True
    )
    lab.wait_running(standin)


def views(lab: Lab, manifest: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    plan = invoke("plan", "--manifest", manifest, "--all", "--json")
    status = invoke("status", "--manifest", manifest, "--json")
    verify = invoke("verify", "--manifest", manifest, "--json", "--timeout", "15")
    assert plan.exit_code == 0 and status.exit_code == 0, plan.output + status.output
    assert verify.exit_code in {0, 1}, verify.output
    return json.loads(plan.stdout), json.loads(status.stdout), json.loads(verify.stdout)


def test_plan_status_and_verify_agree_on_a_mount_with_the_wrong_mode(lab: Lab) -> None:
    standin = lab.deploy("web")
    lab.lineage("web")
    manifest = str(lab.manifest([lab.entry("web", [standin])]))
    assert invoke("rotate", "--manifest", manifest, "--all").exit_code == 0
    version = lab.mounted(standin)[KEY_TARGET]

    set_mode(lab, standin, KEY_TARGET, 0o444)  # the manifest says 0400
    plan, status, verify = views(lab, manifest)
    (change,) = plan["services"]
    assert [(m["target"], m["from"], m["to"], m["mode"]) for m in change["mounts"]] == [
        (KEY_TARGET, version, version, "0400")
    ]
    (service,) = status["certificates"][0]["services"]
    assert service["state"] == "wrong_file_attrs"
    drift = [f for f in verify["findings"] if f["id"].startswith(("live.drift", "live.mount"))]
    assert [(f["id"], f["service"]) for f in drift] == [("live.drift-attrs", standin.name)]
    assert "as 0:0 0444; the manifest says 0:0 0400" in drift[0]["message"]

    assert invoke("rotate", "--manifest", manifest, "--all").exit_code == 0
    assert lab.mounted(standin)[KEY_TARGET] == version  # the same version, now 0400
    plan, status, verify = views(lab, manifest)
    assert plan["services"] == []
    assert status["certificates"][0]["services"][0]["state"] == "up_to_date"
    assert not [f for f in verify["findings"] if f["id"].startswith("live.drift")]
