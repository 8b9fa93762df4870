"""Snapshots of foreign objects against the real daemon: a change and a removal are seen."""

from __future__ import annotations

from typing import Any

import docker
import pytest
from docker.types import ServiceMode

from tests.harness.resources import Resources
from tests.support.foreign import ForeignObjects, by_prefix

pytestmark = pytest.mark.docker


def test_changed_and_removed_objects_are_reported_and_new_ones_are_not(
    docker_client: docker.DockerClient, resources: Resources, standin_image: str
) -> None:
    api: Any = docker_client.api
    decoy = resources.create_service(
        standin_image, "decoy", mode=ServiceMode("replicated", replicas=0)
    )
    doomed = resources.create_config("doomed", b"not the tool's either")
    mine = by_prefix(resources.name("mine-"))
    others = by_prefix("phxtest-")  # other tests on the shared daemon change theirs
    decoys = {decoy.name, doomed.name}

    def unstable(name: str) -> bool:
        return others(name) and name not in decoys

    before = ForeignObjects.take(api, mine, unstable)
    assert before.changes(ForeignObjects.take(api, mine, unstable)) == []

    resources.create_secret("mine-new", b"created by the test")  # claimed: never listed
    resources.create_secret("unrelated-new", b"created meanwhile")  # new: not a change
    raw = api.inspect_service(decoy.id)
    api.update_service(
        decoy.id,
        raw["Version"]["Index"],
        labels={**resources.labels, "touched": "yes"},
        fetch_current_spec=True,
    )
    doomed.remove()

    changes = ForeignObjects.take(api, mine, unstable)
    assert sorted(before.changes(changes)) == [
        f"config {doomed.name} ({str(doomed.id)[:12]}) removed",
        f"service {decoy.name} ({str(decoy.id)[:12]}) changed",
    ]
