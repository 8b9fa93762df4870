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


def test_the_request_audit_names_changes_to_objects_that_existed_before() -> None:
    before = ForeignObjects(
        objects={},
        names={
            ("service", "svc111aaa"): "phxtest-1-web",
            ("service", "svc222bbb"): "someone-elses",
            ("secret", "sec333ccc"): "someone-elses.sslcert_0123",
            ("config", "cfg444ddd"): "phxtest-session-lease",
        },
    )
    sent = [
        ("GET", "/v1.41/services/svc222bbb"),  # reading touches nothing
        ("POST", "/v1.41/services/svc111aaa/update?version=7"),  # the test's own
        ("POST", "/v1.41/secrets/create"),  # creating touches nothing
        ("DELETE", "/v1.41/secrets/sec999new"),  # made during the test, pruned
        ("POST", "/v1.41/configs/cfg444ddd/update?version=3"),  # the session's lease
        ("POST", "/v1.41/services/someone-elses/update?version=2"),  # by name
        ("DELETE", "/v1.41/secrets/sec333"),  # by a short id
    ]
    allowed = by_prefix("phxtest-1-", "phxtest-session-lease")
    assert before.touched(sent, allowed) == [
        "POST /v1.41/services/someone-elses/update?version=2: service someone-elses "
        "existed before the test",
        "DELETE /v1.41/secrets/sec333: secret someone-elses.sslcert_0123 existed before the test",
    ]
