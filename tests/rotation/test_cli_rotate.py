"""`phoenix-cert rotate` against the real daemon: rotate, re-run, force, prune, roll back."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable

import pytest
from docker.types import SecretReference, ServiceMode

from tests.harness.ports import free_port
from tests.rotation.lab import (
    CERT_TARGET,
    KEY_TARGET,
    PHOENIX_CERT,
    SAN,
    Lab,
    Standin,
    invoke,
    served_sha256,
    spec_updates,
)
from tests.support import pki

pytestmark = pytest.mark.docker


def test_rerun_has_nothing_to_do_and_force_updates_once(lab: Lab) -> None:
    standin = lab.deploy("web")
    lineage = lab.lineage("web")
    manifest = lab.manifest([lab.entry("web", [standin])])

    started = time.monotonic()
    first = invoke("rotate", "--manifest", manifest, "--all")
    print(f"\nrotation: {time.monotonic() - started:.1f} s")
    assert first.exit_code == 0, first.output
    assert served_sha256(standin.port) == lineage.leaf.sha256
    mounted = lab.mounted(standin)

    planned = invoke("plan", "--manifest", manifest, "--json")
    assert planned.exit_code == 0, planned.output
    assert json.loads(planned.stdout) | {"certificates": None} == {
        "certificates": None,
        "create": [],
        "services": [],
        "verify": [],
        "up_to_date": [standin.name],
        "problems": [],
        "skipped": {},
    }
    text = invoke("plan", "--manifest", manifest)
    assert text.stdout == f"nothing to do: {standin.name} up to date\n"
    forced_plan = json.loads(invoke("plan", "--manifest", manifest, "--json", "--force").stdout)
    assert [(s["service"], s["force"], s["mounts"]) for s in forced_plan["services"]] == [
        (standin.name, True, [])
    ]

    version = lab.version(standin)
    tasks = len(lab.tasks(standin))
    again = invoke("rotate", "--manifest", manifest, "--all")
    assert again.exit_code == 0, again.output
    assert "nothing to do" in again.stdout
    assert lab.version(standin) == version
    assert len(lab.tasks(standin)) == tasks

    since = time.time()
    forced = invoke("rotate", "--manifest", manifest, "--all", "--force")
    assert forced.exit_code == 0, forced.output
    assert spec_updates(lab.events(since, time.time()), standin.name) == 1
    assert len(lab.tasks(standin)) == tasks + 1
    assert lab.mounted(standin) == mounted
    assert served_sha256(standin.port) == lineage.leaf.sha256


def test_prune_keeps_the_newest_and_the_referenced_and_never_foreign_secrets(lab: Lab) -> None:
    standin = lab.deploy("web")
    lineage = lab.lineage("web")
    manifest = lab.manifest([lab.entry("web", [standin])], keep_versions=2)
    # Looks like one of ours, but has none of our labels.
    foreign = lab.resources.create_secret("web.sslcert_000000000000", b"not ours")

    leaves = []
    for generation in range(4):
        if generation:
            lineage = lineage.renew()
        result = invoke("rotate", "--manifest", manifest, "--all")
        assert result.exit_code == 0, result.output
        assert served_sha256(standin.port) == lineage.leaf.sha256
        versions = [s["Spec"]["Name"] for s in lab.managed(standin.cert_base)]
        leaves.append(versions[-1])
        if generation == 0:
            # A service outside the manifest keeps using the first version.
            key_version = lab.managed(standin.key_base)[-1]
            cert_version = lab.managed(standin.cert_base)[-1]
            lab.resources.create_service(
                lab.image,
                "pinned",
                mode=ServiceMode("replicated", replicas=0),
                secrets=[
                    SecretReference(cert_version["ID"], leaves[0], filename=CERT_TARGET),
                    SecretReference(
                        key_version["ID"], key_version["Spec"]["Name"], filename=KEY_TARGET
                    ),
                ],
            )

    v1, v2, v3, v4 = leaves
    assert len(set(leaves)) == 4
    # v2 is neither among the newest two nor mounted anywhere: pruned.
    assert [s["Spec"]["Name"] for s in lab.managed(standin.cert_base)] == [v1, v3, v4]
    assert v2 not in lab.secret_names()
    assert len(lab.managed(standin.key_base)) == 3
    assert foreign.name in lab.secret_names()

    # With keep_versions=1, the version the service's previous spec mounts stays too.
    strict = lab.manifest([lab.entry("web", [standin])], keep_versions=1, name="keep1.json")
    result = invoke("rotate", "--manifest", strict, "--all")
    assert result.exit_code == 0, result.output
    assert [s["Spec"]["Name"] for s in lab.managed(standin.cert_base)] == [v1, v3, v4]
    assert lab.mounted(standin, "PreviousSpec")[CERT_TARGET] == v3
    assert foreign.name in lab.secret_names()
    assert {n for n in lab.secret_names() if "bootstrap" in n} == {
        lab.resources.name("web-bootstrap-cert"),
        lab.resources.name("web-bootstrap-key"),
    }


@pytest.mark.parametrize("rotation", ["first", "second"])
def test_a_certificate_the_service_fails_with_is_rolled_back(lab: Lab, rotation: str) -> None:
    refused = pki.issue([SAN], lab.ca)
    bootstrap = pki.issue([SAN], lab.ca)
    standin = lab.deploy("web", bootstrap, env={"STANDIN_FAIL_IF_CERT_SHA256": refused.sha256})
    good_leaf = bootstrap
    manifest = lab.manifest([lab.entry("web", [standin])])
    if rotation == "first":
        lab.lineage("web", refused)
    else:
        lineage = lab.lineage("web")
        assert invoke("rotate", "--manifest", manifest, "--all").exit_code == 0
        good_leaf = lineage.leaf
        lineage.renew(refused)
    assert served_sha256(standin.port) == good_leaf.sha256
    good = lab.mounted(standin)

    started = time.monotonic()
    result = invoke("rotate", "--manifest", manifest, "--all")
    print(f"\nfailed {rotation} rotation with rollback: {time.monotonic() - started:.1f} s")
    assert result.exit_code == 1, result.output
    assert "rolled-back" in result.stdout
    # Swarm has settled: its own update state is final when the command returns.
    assert (lab.inspect(standin).get("UpdateStatus") or {}).get("State") in {None, "completed"}
    assert lab.mounted(standin) == good
    assert served_sha256(standin.port) == good_leaf.sha256
    # Both versions are kept: the one serving, and the refused one (for a later look).
    assert set(good.values()) <= lab.secret_names()
    managed = [s["Spec"]["Name"] for s in lab.managed(standin.cert_base)]
    assert len(managed) == (1 if rotation == "first" else 2)
    assert managed[-1] == lab.mounted(standin, "PreviousSpec")[CERT_TARGET]
    assert managed[-1].startswith(standin.cert_base + "_")
    # A stack deploy with stack-env's names keeps what runs, never the refused version.
    env = invoke("stack-env", "--manifest", manifest)
    assert env.exit_code == 0, env.output
    assert sorted(line.split("=", 1)[1] for line in env.stdout.splitlines()) == sorted(
        good.values()
    )


def test_wrong_certificate_served_is_rolled_back(lab: Lab) -> None:
    bootstrap = pki.issue([SAN], lab.ca)
    standin = lab.deploy("web", bootstrap)
    lab.lineage("web")
    # The service is right, but the URL that is checked serves another certificate.
    decoy = lab.deploy("decoy")
    manifest = lab.manifest([lab.entry("web", [standin], verify=[decoy])])
    before = lab.mounted(standin)

    result = invoke("rotate", "--manifest", manifest, "--all", "--verify-timeout", "3")
    assert result.exit_code == 1, result.output
    assert "rolled-back" in result.stdout
    assert lab.mounted(standin) == before
    assert served_sha256(standin.port) == bootstrap.sha256


def test_a_url_dead_before_the_run_does_not_roll_back_a_verified_rotation(lab: Lab) -> None:
    # One live URL and one that answered nobody before the run (a wrong port, a server
    # down already): the live one verifies the new leaf; the dead one is reported only.
    standin = lab.deploy("web")
    lineage = lab.lineage("web")
    nobody = Standin("nobody", "", free_port(), "unused.crt", "unused.key")
    manifest = lab.manifest([lab.entry("web", [standin], verify=[standin, nobody])])

    result = invoke("rotate", "--manifest", manifest, "--all", "--verify-timeout", "3")

    assert result.exit_code == 1, result.output
    assert f"{standin.name}: updated" in result.stdout
    assert "rolled-back" not in result.stdout
    assert f"verify {standin.url}: ok" in result.stdout
    assert f"verify {nobody.url}: FAILED" in result.stdout
    assert "already failing before the run" in result.stdout
    assert served_sha256(standin.port) == lineage.leaf.sha256


def test_crash_loop_is_caught_when_swarm_itself_carries_on(lab: Lab) -> None:
    lineage = lab.lineage("web")
    refused = pki.issue(["portainer.example.test"], lab.ca)
    standin = lab.deploy(
        "web", env={"STANDIN_FAIL_IF_CERT_SHA256": refused.sha256}, failure_action="continue"
    )
    manifest = lab.manifest([lab.entry("web", [standin])])
    assert invoke("rotate", "--manifest", manifest, "--all").exit_code == 0
    good = lab.mounted(standin)

    lineage.renew(refused)
    started = time.monotonic()
    result = invoke("rotate", "--manifest", manifest, "--all")
    print(f"\ncrash loop caught and rolled back: {time.monotonic() - started:.1f} s")
    assert result.exit_code == 1, result.output
    assert "failed 3 times" in result.stdout
    assert lab.mounted(standin) == good
    assert served_sha256(standin.port) == lineage.leaf.sha256


def test_rollback_command_returns_to_the_previous_version_verified(lab: Lab) -> None:
    standin = lab.deploy("web")
    first = lab.lineage("web")
    manifest = lab.manifest([lab.entry("web", [standin])])
    assert invoke("rotate", "--manifest", manifest, "--all").exit_code == 0
    previous = lab.mounted(standin)
    second = first.renew()
    assert invoke("rotate", "--manifest", manifest, "--all").exit_code == 0
    assert served_sha256(standin.port) == second.leaf.sha256

    started = time.monotonic()
    result = invoke("rollback", "--manifest", manifest, "web", "--json")
    print(f"\nrollback command: {time.monotonic() - started:.1f} s")
    assert result.exit_code == 0, result.output
    assert lab.mounted(standin) == previous
    assert served_sha256(standin.port) == first.leaf.sha256
    document = json.loads(result.stdout)
    assert [s["result"] for s in document["services"]] == ["updated"]
    assert [(v["ok"], v["served_sha256"]) for v in document["verify"]] == [
        (True, first.leaf.sha256)
    ]


def test_stack_env_names_the_mounted_versions(lab: Lab) -> None:
    standin = lab.deploy("web")
    lab.lineage("web")
    manifest = lab.manifest([lab.entry("web", [standin])])
    assert invoke("rotate", "--manifest", manifest, "--all").exit_code == 0
    mounted = lab.mounted(standin)

    result = invoke("stack-env", "--manifest", manifest)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    prefix = lab.resources.prefix.upper().replace("-", "_")
    assert lines == sorted(
        [
            f"{prefix}WEB_SSLCERT={mounted[CERT_TARGET]}",
            f"{prefix}WEB_SSLKEY={mounted[KEY_TARGET]}",
        ]
    )


def _kill_when(process: subprocess.Popen[str], ready: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for _attempt in range(int(timeout / 0.02) + 1):
        if ready() or process.poll() is not None or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert process.poll() is None, "rotate ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


@pytest.mark.parametrize("moment", ["objects-created", "update-started"])
def test_a_killed_rotation_leaves_a_working_service_and_a_rerun_completes(
    lab: Lab, moment: str
) -> None:
    bootstrap = pki.issue(["portainer.example.test"], lab.ca)
    standin = lab.deploy("web", bootstrap)
    lineage = lab.lineage("web")
    manifest = lab.manifest([lab.entry("web", [standin])])
    old = lab.mounted(standin)

    def created() -> bool:
        return bool(lab.managed(standin.cert_base))

    def updating() -> bool:
        return lab.mounted(standin) != old

    process = subprocess.Popen(
        [str(PHOENIX_CERT), "rotate", "--manifest", str(manifest), "--all"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        _kill_when(process, created if moment == "objects-created" else updating, 30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    mounted = lab.mounted(standin)
    new = {
        CERT_TARGET: lab.managed(standin.cert_base)[-1]["Spec"]["Name"]
        if lab.managed(standin.cert_base)
        else None,
        KEY_TARGET: lab.managed(standin.key_base)[-1]["Spec"]["Name"]
        if lab.managed(standin.key_base)
        else None,
    }
    assert mounted in (old, new), mounted
    assert set(mounted.values()) | set(old.values()) <= lab.secret_names()
    lab.wait_running(standin)
    assert served_sha256(standin.port) in (bootstrap.sha256, lineage.leaf.sha256)

    result = invoke("rotate", "--manifest", manifest, "--all")
    assert result.exit_code == 0, result.output
    assert served_sha256(standin.port) == lineage.leaf.sha256
    assert lab.mounted(standin) == {
        CERT_TARGET: lab.managed(standin.cert_base)[-1]["Spec"]["Name"],
        KEY_TARGET: lab.managed(standin.key_base)[-1]["Spec"]["Name"],
    }


def test_rollback_command_with_a_reused_key_changes_only_the_certificate(lab: Lab) -> None:
    # certbot --reuse-key: a renewal keeps the private key, so there is one key version.
    standin = lab.deploy("web")
    first = lab.lineage("web")
    manifest = lab.manifest([lab.entry("web", [standin])])
    assert invoke("rotate", "--manifest", manifest, "--all").exit_code == 0
    previous = lab.mounted(standin)
    same_key = pki.Issued(pki.issue_with_key([SAN], first.leaf.key, lab.ca).cert, first.leaf.key)
    second = first.renew(same_key)
    assert invoke("rotate", "--manifest", manifest, "--all").exit_code == 0
    assert served_sha256(standin.port) == second.leaf.sha256
    assert len(lab.managed(standin.key_base)) == 1

    result = invoke("rollback", "--manifest", manifest, "web")
    assert result.exit_code == 0, result.output
    assert lab.mounted(standin) == previous
    assert served_sha256(standin.port) == first.leaf.sha256


def test_rollback_command_skips_a_version_that_never_ran(lab: Lab) -> None:
    refused = pki.issue([SAN], lab.ca)
    standin = lab.deploy("web", env={"STANDIN_FAIL_IF_CERT_SHA256": refused.sha256})
    first = lab.lineage("web")
    manifest = lab.manifest([lab.entry("web", [standin])])
    assert invoke("rotate", "--manifest", manifest, "--all").exit_code == 0
    previous = lab.mounted(standin)
    # A renewal the service refuses is rolled back; the next one works.
    second = first.renew(refused)
    assert invoke("rotate", "--manifest", manifest, "--all").exit_code == 1
    assert lab.mounted(standin) == previous
    third = second.renew()
    assert invoke("rotate", "--manifest", manifest, "--all").exit_code == 0
    assert served_sha256(standin.port) == third.leaf.sha256

    # "The previous version" is the one that ran before, not the refused one made since.
    result = invoke("rollback", "--manifest", manifest, "web")
    assert result.exit_code == 0, result.output
    assert lab.mounted(standin) == previous
    assert served_sha256(standin.port) == first.leaf.sha256
