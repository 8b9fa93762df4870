"""A run killed anywhere, or cut off from Docker mid-way, is finished or undone by the next
one, on the real daemon. Kills land on the failpoints of `phoenix_certbot.failpoints`."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from phoenix_certbot.manifest.load import load
from phoenix_certbot.rotation.run import RunOptions, rotate
from phoenix_certbot.swarm.client import SwarmClient
from tests.rotation.lab import (
    SAN,
    Lab,
    intent_files,
    invoke,
    killed_at,
    served_sha256,
    spec_updates,
)
from tests.support import pki
from tests.support.stall_proxy import StallingProxy

pytestmark = pytest.mark.docker


def rerun(manifest: Path) -> tuple[int, dict[str, Any]]:
    """The next run, as the timer would start it: exit code and JSON document."""
    result = invoke("rotate", "--manifest", manifest, "--all", "--json")
    document: dict[str, Any] = json.loads(result.stdout)
    return result.exit_code, document


def results(document: dict[str, Any], key: str) -> list[tuple[str, str]]:
    return [(s["service"], s["result"]) for s in document[key]]


def intents(lab: Lab) -> list[Path]:
    return intent_files(lab.state_dir)


def test_killed_after_the_update_with_a_refused_certificate_the_next_run_rolls_back(
    lab: Lab,
) -> None:
    refused = pki.issue([SAN], lab.ca)
    standin = lab.deploy("web", env={"STANDIN_FAIL_IF_CERT_SHA256": refused.sha256})
    first = lab.lineage("web")
    manifest = lab.manifest([lab.entry("web", [standin])])
    assert invoke("rotate", "--manifest", manifest, "--all").exit_code == 0
    good = lab.mounted(standin)
    first.renew(refused)

    killed_at("service-updated", "rotate", "--manifest", manifest, "--all")
    assert lab.mounted(standin) != good  # the refused version is mounted
    assert len(intents(lab)) == 1

    code, document = rerun(manifest)

    assert code == 1, document
    assert results(document, "recovered") == [(standin.name, "rolled-back")]
    assert document["services"] == []  # a failed rollout: backing off, not tried again
    assert [w["certificate"] for w in document["backing_off"]] == ["web"]
    assert lab.mounted(standin) == good
    assert served_sha256(standin.port) == first.leaf.sha256
    assert intents(lab) == []
    state = json.loads((lab.state_dir / "state.json").read_text())
    assert state["certs"]["web"]["last_rotation"]["result"] == "failed"
    assert state["certs"]["web"]["failures"] == 1


def test_killed_during_its_rollback_the_next_run_finishes_the_rollback(lab: Lab) -> None:
    refused = pki.issue([SAN], lab.ca)
    bootstrap = pki.issue([SAN], lab.ca)
    standin = lab.deploy("web", bootstrap, env={"STANDIN_FAIL_IF_CERT_SHA256": refused.sha256})
    lab.lineage("web", refused)
    manifest = lab.manifest([lab.entry("web", [standin])])
    good = lab.mounted(standin)

    killed_at("rollback-updated", "rotate", "--manifest", manifest, "--all")
    assert lab.mounted(standin) == good  # the rollback was accepted, not waited for
    assert len(intents(lab)) == 1

    code, document = rerun(manifest)

    assert code == 1, document
    assert results(document, "recovered") == [(standin.name, "rolled-back")]
    assert document["services"] == []
    lab.wait_running(standin)
    assert served_sha256(standin.port) == bootstrap.sha256
    assert intents(lab) == []


@pytest.mark.parametrize("point", ["journal-written", "objects-created"])
def test_killed_before_any_update_the_next_run_just_rotates(lab: Lab, point: str) -> None:
    standin = lab.deploy("web")
    lineage = lab.lineage("web")
    manifest = lab.manifest([lab.entry("web", [standin])])

    killed_at(point, "rotate", "--manifest", manifest, "--all")
    assert len(intents(lab)) == 1

    code, document = rerun(manifest)

    assert code == 0, document
    assert document["recovered"] == []  # nothing had changed: nothing to report
    assert results(document, "services") == [(standin.name, "updated")]
    assert served_sha256(standin.port) == lineage.leaf.sha256
    assert intents(lab) == []


def test_killed_after_the_update_with_a_good_certificate_the_next_run_finishes(
    lab: Lab,
) -> None:
    standin = lab.deploy("web")
    lineage = lab.lineage("web")
    manifest = lab.manifest([lab.entry("web", [standin])])

    killed_at("service-updated", "rotate", "--manifest", manifest, "--all")
    assert len(intents(lab)) == 1

    since = time.time()
    code, document = rerun(manifest)

    assert code == 0, document
    assert spec_updates(lab.events(since, time.time()), standin.name) == 0
    assert results(document, "recovered") == [(standin.name, "updated")]
    assert document["services"] == []  # nothing left to do after finishing
    assert served_sha256(standin.port) == lineage.leaf.sha256
    assert intents(lab) == []
    state = json.loads((lab.state_dir / "state.json").read_text())
    assert state["certs"]["web"]["verified_leaf"] == lineage.leaf.sha256


def test_killed_between_the_file_writes_and_the_update_the_next_run_restarts_it(
    lab: Lab,
) -> None:
    standin = lab.deploy("web")
    lineage = lab.lineage("web")
    target = lab.root / "files" / "web.pem"
    target.parent.mkdir()
    target.write_bytes(b"the certificate of before\n")
    binding = lab.binding(standin) | {
        "files": [{"path": str(target), "source": "fullchain", "mode": "0644"}]
    }
    manifest = lab.manifest([lab.entry("web", [standin], bindings=[binding])])
    force = lab.inspect(standin)["Spec"]["TaskTemplate"].get("ForceUpdate", 0)

    killed_at("files-written", "rotate", "--manifest", manifest, "--all")
    assert target.read_bytes() != b"the certificate of before\n"  # written, no update yet
    assert lab.inspect(standin)["Spec"]["TaskTemplate"].get("ForceUpdate", 0) == force

    code, document = rerun(manifest)

    # Only our own unfinished work was put back (no update had landed), then the new leaf
    # deployed and verified: no failure, exit 0, and the report says what recovery did.
    assert code == 0, document
    assert results(document, "recovered") == [(standin.name, "undone")]
    (recovered,) = document["recovered"]
    assert "written its files but not updated the service; files put back" in recovered["detail"]
    assert "interrupted update interrupted" not in recovered["detail"]
    assert results(document, "services") == [(standin.name, "updated")]
    state = json.loads((lab.state_dir / "state.json").read_text())
    assert state["certs"]["web"].get("failures", 0) == 0
    assert target.read_bytes() == (lab.live_dir / "web" / "fullchain.pem").read_bytes()
    spec = lab.inspect(standin)["Spec"]["TaskTemplate"]
    assert spec.get("ForceUpdate", 0) > force  # restarted after the files changed
    assert served_sha256(standin.port) == lineage.leaf.sha256
    assert intents(lab) == []


def test_docker_timing_out_during_the_wait_is_rolled_back_not_exit_3(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    bootstrap = pki.issue([SAN], lab.ca)
    standin = lab.deploy("web", bootstrap)
    lab.lineage("web")
    manifest = load(lab.manifest([lab.entry("web", [standin])]))
    before = lab.mounted(standin)

    with StallingProxy() as proxy:
        with monkeypatch.context() as patch:
            patch.setenv("DOCKER_HOST", proxy.docker_host)
            swarm = SwarmClient.connect(timeout_s=3)
        # Once swarm has accepted the service update (not the run lease's config update),
        # the daemon stops answering for a while: the wait's first read times out (3 s);
        # then it answers again, for the rollback.
        proxy.stall_after(
            lambda method, path: method == "POST" and "/services/" in path and "/update" in path
        )

        def answer_again() -> None:
            stalled = proxy.wait_stalled(120)
            time.sleep(max(0.0, stalled + 4.5 - time.time()))
            proxy.resume()

        resumer = threading.Thread(target=answer_again, daemon=True)
        resumer.start()
        outcome = rotate(manifest, manifest.certificates, RunOptions(), lambda _: None, swarm)
        resumer.join(timeout=130)

    assert proxy.held, "nothing was held back after the update"
    assert outcome.exit_code == 1, outcome
    (service,) = outcome.services
    assert service.result.value == "rolled-back"
    assert "no answer within 3 s" in service.detail
    assert lab.mounted(standin) == before
    lab.wait_running(standin)
    assert served_sha256(standin.port) == bootstrap.sha256
    assert intents(lab) == []
