"""A manual rollback holds; one bad certificate does not block the others (real daemon)."""

from __future__ import annotations

import json

import pytest

from tests.rotation.lab import SAN, Lab, invoke, served_sha256
from tests.support import pki

pytestmark = pytest.mark.docker


def test_rollback_holds_until_force_or_a_new_certificate(lab: Lab) -> None:
    standin = lab.deploy("web")
    first = lab.lineage("web")
    manifest = lab.manifest([lab.entry("web", [standin])])
    assert invoke("rotate", "--manifest", manifest, "--all").exit_code == 0
    second = first.renew()
    assert invoke("rotate", "--manifest", manifest, "--all").exit_code == 0
    rolled = invoke("rollback", "--manifest", manifest, "web")
    assert rolled.exit_code == 0, rolled.output
    assert served_sha256(standin.port) == first.leaf.sha256
    state = json.loads((lab.state_dir / "state.json").read_text())
    assert state["held"] == {"web": second.leaf.sha256}

    # The timer's run must not undo the operator's rollback.
    version = lab.version(standin)
    held = invoke("rotate", "--manifest", manifest, "--all")
    assert held.exit_code == 0, held.output
    assert "held after `phoenix-cert rollback`" in held.stderr
    assert lab.version(standin) == version
    assert served_sha256(standin.port) == first.leaf.sha256

    forced = invoke("rotate", "--manifest", manifest, "web", "--force")
    assert forced.exit_code == 0, forced.output
    assert served_sha256(standin.port) == second.leaf.sha256
    assert "web" not in json.loads((lab.state_dir / "state.json").read_text()).get("held", {})

    # Held again, then a renewal writes a new certificate: that one is deployed.
    assert invoke("rollback", "--manifest", manifest, "web").exit_code == 0
    third = first.renew().renew()
    assert invoke("rotate", "--manifest", manifest, "--all").exit_code == 0
    assert served_sha256(standin.port) == third.leaf.sha256


def test_rotate_all_skips_a_bad_certificate_and_deploys_the_others(lab: Lab) -> None:
    good_service, bad_service = lab.deploy("good"), lab.deploy("bad")
    good = lab.lineage("good")
    lab.lineage("bad", pki.issue(["other.test"], lab.ca))  # SAN not covered
    manifest = lab.manifest([lab.entry("good", [good_service]), lab.entry("bad", [bad_service])])
    bad_version = lab.version(bad_service)

    # plan --all shows what rotate --all will do, the skipped certificate included, and
    # exits as that rotation will (1), not with bad input (2).
    planned = invoke("plan", "--manifest", manifest, "--all")
    assert planned.exit_code == 1, planned.output
    assert f"update service {good_service.name} once: good" in planned.stdout
    assert planned.stdout.splitlines()[-1].startswith("certificate bad skipped: ")
    as_json = json.loads(invoke("plan", "--manifest", manifest, "--json").stdout)
    assert list(as_json["skipped"]) == ["bad"] and as_json["certificates"] == ["good"]

    result = invoke("rotate", "--manifest", manifest, "--all")
    assert result.exit_code == 1, result.output
    assert served_sha256(good_service.port) == good.leaf.sha256, result.output
    assert lab.version(bad_service) == bad_version
    assert "certificate bad skipped" in result.output and SAN in result.output

    # Named explicitly, a bad certificate is bad input: nothing changes, exit 2.
    named = invoke("rotate", "--manifest", manifest, "bad")
    assert named.exit_code == 2
    assert lab.version(bad_service) == bad_version


def test_post_hook_keeps_a_failed_lineage_pending(lab: Lab) -> None:
    good_service, bad_service = lab.deploy("good"), lab.deploy("bad")
    good = lab.lineage("good")
    lab.lineage("bad", pki.issue(["other.test"], lab.ca))
    manifest = str(
        lab.manifest([lab.entry("good", [good_service]), lab.entry("bad", [bad_service])])
    )
    for name in ("good", "bad"):
        deferred = invoke(
            "deploy-hook",
            "--defer",
            "--manifest",
            manifest,
            env={"RENEWED_LINEAGE": str(lab.live_dir / name)},
        )
        assert deferred.exit_code == 0, deferred.output

    posted = invoke("post-hook", "--manifest", manifest)
    assert posted.exit_code == 1, posted.output
    assert served_sha256(good_service.port) == good.leaf.sha256
    pending = json.loads((lab.state_dir / "pending.json").read_text())["lineages"]
    assert pending == [str(lab.live_dir / "bad")]
