"""The prober and the task watcher against a real stand-in on the shared swarm."""

from __future__ import annotations

import subprocess

import pytest

from tests.rotation.lab import CERT_TARGET, KEY_TARGET, SAN, Lab, Standin
from tests.support import pki
from tests.support.invariant import Kind
from tests.support.prober import ServiceWatch

pytestmark = pytest.mark.docker
SHARED = "unix:///var/run/docker.sock"


def _update(standin: Standin, *args: str) -> None:
    subprocess.run(
        ["docker", "service", "update", "--detach", *args, standin.name],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def test_a_restart_holds_the_invariant_and_a_wrong_leaf_breaks_it(lab: Lab) -> None:
    old = pki.issue([SAN], lab.ca)
    standin = lab.deploy("probed", old)
    valid = {old.sha256: "old"}

    with ServiceWatch(standin.url, SAN, SHARED, standin.id) as watch:
        watch.prober.wait_for(lambda o: o.leaf == old.sha256, 10, "the old leaf")
        _update(standin, "--force")
        watch.prober.wait_for(lambda o: o.kind is not Kind.LEAF, 30, "the restart")
        watch.prober.wait_for(lambda o: o.leaf == old.sha256, 30, "the old leaf again")
    verdict = watch.verdict(valid)
    print(f"\nforced restart: {verdict.summary.line()}")
    assert verdict.ok, verdict.explain()
    assert 0 < verdict.summary.longest_without_valid_s < 10
    assert len(watch.tasks.spans()) == 2
    assert watch.tasks.errors == 0

    wrong = pki.issue([SAN], lab.ca)
    cert = lab.resources.create_secret("probed-wrong-cert", wrong.cert_pem)
    key = lab.resources.create_secret("probed-wrong-key", wrong.key_pem)
    with ServiceWatch(standin.url, SAN, SHARED, standin.id) as watch:
        _update(
            standin,
            "--secret-rm", lab.mounted(standin)[CERT_TARGET],
            "--secret-rm", lab.mounted(standin)[KEY_TARGET],
            "--secret-add", f"source={cert.name},target={CERT_TARGET}",
            "--secret-add", f"source={key.name},target={KEY_TARGET},mode=0400",
        )  # fmt: skip
        watch.prober.wait_for(lambda o: o.leaf == wrong.sha256, 30, "the wrong leaf")
    verdict = watch.verdict(valid)
    assert not verdict.ok
    assert any("neither old nor new" in v.reason for v in verdict.violations)
    assert verdict.summary.leaves[wrong.sha256[:12]] > 0
