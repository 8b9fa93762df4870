"""The engine (`rotation.run.rotate` -> `apply.Engine`) against the real daemon."""

from __future__ import annotations

import time

import pytest

from phoenix_certbot.manifest.load import load
from phoenix_certbot.rotation.run import RunOptions, rotate
from tests.rotation.lab import Lab, served_sha256, spec_updates

pytestmark = pytest.mark.docker


def test_a_certificate_shared_by_two_services_updates_each_once(lab: Lab) -> None:
    web = lab.deploy("web")
    other = lab.deploy("other")
    lineage = lab.lineage("shared")
    shared = [lab.binding(web, label="shared"), lab.binding(other, label="shared")]
    manifest = load(lab.manifest([lab.entry("shared", [web, other], bindings=shared)]))
    tasks = {s.name: len(lab.tasks(s)) for s in (web, other)}
    progress: list[str] = []

    since = time.time()
    outcome = rotate(manifest, manifest.certificates, RunOptions(), progress.append)

    assert outcome.exit_code == 0, outcome
    assert sorted((s.service, s.result) for s in outcome.services) == sorted(
        [(web.name, "updated"), (other.name, "updated")]
    )
    assert len(outcome.created) == 2  # one cert and one key version, mounted by both
    assert [(c.check.url, c.ok) for c in outcome.checks] == [(web.url, True), (other.url, True)]
    events = lab.events(since, time.time())
    for standin in (web, other):
        assert spec_updates(events, standin.name) == 1
        assert len(lab.tasks(standin)) == tasks[standin.name] + 1
        assert served_sha256(standin.port) == lineage.leaf.sha256
    assert lab.mounted(web) == lab.mounted(other)
