"""certbot's --deploy-hook and --post-hook driving `phoenix-cert`, against the real daemon."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from tests.harness.certbot_runner import Certbot
from tests.rotation.lab import (
    CERT_TARGET,
    KEY_TARGET,
    PHOENIX_CERT,
    Lab,
    Lineage,
    Standin,
    hook_rotates_at_issue_and_renewal,
    invoke,
    served_sha256,
    spec_updates,
)

pytestmark = pytest.mark.docker


@pytest.mark.pebble
def test_certbot_deploy_hook_rotates_at_issue_and_at_renewal(lab: Lab, certbot: Certbot) -> None:
    hook_rotates_at_issue_and_renewal(lab, certbot, PHOENIX_CERT)


def _two_certificate_manifest(lab: Lab, standin: Standin) -> tuple[str, Lineage, Lineage]:
    """`web` (served) and `api` (mounted beside it), both used by one service."""
    web = lab.lineage("web")
    api = lab.lineage("api")
    manifest = lab.manifest(
        [
            lab.entry("web", [standin]),
            lab.entry(
                "api",
                [standin],
                verify=[],
                bindings=[
                    lab.binding(standin, label="api", cert_target="api.crt", key_target="api.key")
                ],
            ),
        ]
    )
    return str(manifest), web, api


def test_deferred_hooks_update_a_service_with_two_certificates_once(lab: Lab) -> None:
    standin = lab.deploy("web")
    manifest, web, _ = _two_certificate_manifest(lab, standin)
    original = lab.mounted(standin)
    tasks = len(lab.tasks(standin))

    since = time.time()
    for name in ("web", "api"):
        deferred = invoke(
            "deploy-hook", "--defer", "--manifest", manifest,
            env={"RENEWED_LINEAGE": str(lab.live_dir / name)},
        )  # fmt: skip
        assert deferred.exit_code == 0, deferred.output
    assert lab.mounted(standin) == original  # deferred: nothing deployed yet

    posted = invoke("post-hook", "--manifest", manifest)
    assert posted.exit_code == 0, posted.output
    assert spec_updates(lab.events(since, time.time()), standin.name) == 1
    assert len(lab.tasks(standin)) == tasks + 1
    assert lab.mounted(standin, "PreviousSpec") == original
    mounted = lab.mounted(standin)
    assert set(mounted) == {CERT_TARGET, KEY_TARGET, "api.crt", "api.key"}
    assert all(name.startswith(lab.resources.prefix) for name in mounted.values())
    assert served_sha256(standin.port) == web.leaf.sha256

    again = invoke("post-hook", "--manifest", manifest)
    assert again.exit_code == 0, again.output
    assert "nothing to do" in again.output


def _hook(manifest: str, lineage: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(PHOENIX_CERT), "deploy-hook", "--manifest", manifest],
        env={**os.environ, "RENEWED_LINEAGE": lineage},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("lineages", ["same lineage", "two lineages, one service"])
def test_concurrent_deploy_hooks_update_each_service_once(lab: Lab, lineages: str) -> None:
    standin = lab.deploy("web")
    manifest, web, api = _two_certificate_manifest(lab, standin)
    assert invoke("rotate", "--manifest", manifest, "--all").exit_code == 0
    # certbot renewed one lineage, or both, before their hooks start.
    web = web.renew()
    names = ["web", "web"]
    if lineages == "two lineages, one service":
        api = api.renew()
        names = ["web", "api"]
    tasks = len(lab.tasks(standin))

    since = time.time()
    hooks = [_hook(manifest, str(lab.live_dir / name)) for name in names]
    results = []
    try:
        results = [hook.communicate(timeout=150) for hook in hooks]
    finally:
        for hook in hooks:
            if hook.poll() is None:
                hook.kill()
                hook.wait(timeout=10)
    for hook, (out, err) in zip(hooks, results, strict=True):
        assert hook.returncode == 0, out + err
    assert served_sha256(standin.port) == web.leaf.sha256
    assert spec_updates(lab.events(since, time.time()), standin.name) == 1
    assert len(lab.tasks(standin)) == tasks + 1
    assert any("nothing to do" in out for out, _ in results), results
    # Both certificates are the ones on disk now.
    api_cert = lab.managed(lab.resources.name("api.crt"))
    assert lab.mounted(standin)["api.crt"] == api_cert[-1]["Spec"]["Name"]
    assert api_cert[-1]["Spec"]["Labels"]["io.phoenix-certbot.leaf-sha256"] == api.leaf.sha256
