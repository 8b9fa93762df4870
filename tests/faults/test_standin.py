"""Faults of the service itself (the Portainer stand-in): a new task that crash-loops, one
that serves the wrong leaf, and a URL that was failing before the run. Shared swarm.

The rules: a rollout the service does not take is rolled back, the old leaf served again
(exit 1), and not tried again before its backoff (the next run makes no update, says when
the next try is, exits 1). A check that was already failing before the run is reported and
is never by itself a reason to roll back.
"""

from __future__ import annotations

import re

import pytest

from tests.faults.rig import FaultRig
from tests.harness.ports import free_port
from tests.rotation.lab import SAN, Standin, write_private

pytestmark = pytest.mark.docker


def _rolled_back_then_backs_off(rig: FaultRig, row: str) -> None:
    with rig.watch():
        failed = rig.rotate(None, "--verify-timeout", "10")
        assert failed.returncode == 1, failed.report
        rig.returned_settled(failed)
        settled_at = rig.settled(rig.old)
        timer = rig.rotate()  # the hourly timer, right after
        assert timer.returncode == 1, timer.report
        said = timer.stdout + timer.stderr
        assert re.search(r"back(ing)? ?off|next try|tried again", said, re.I), timer.report
    assert rig.updates(failed.started, failed.ended) == 2  # the update and its rollback
    assert rig.updates(timer.started, timer.ended) == 0
    status = rig.status()["web"]
    assert status["failures"] == 1
    assert status["backoff_until"]
    rig.settled(rig.old)
    rig.conclude(row, failed, timer, settled_at)


def test_a_new_task_that_crash_loops_is_rolled_back_and_backs_off(rig: FaultRig) -> None:
    rig.setup(refuse_new=True)
    _rolled_back_then_backs_off(rig, "crash-loop")


def _pinned_service(rig: FaultRig) -> Standin:
    """A stand-in whose server reads its certificate from a bind-mounted folder, not from
    the secrets the manifest rotates: any new task still serves the old leaf (a server
    pointed at the wrong file)."""
    folder = rig.lab.root / "pinned"
    folder.mkdir()
    write_private(folder / "cert.pem", rig.old.cert_pem.decode())
    write_private(folder / "key.pem", rig.old.key_pem.decode())
    return rig.lab.deploy(
        "web",
        rig.old,
        args=["--sslcert", "/pinned/cert.pem", "--sslkey", "/pinned/key.pem"],
        mounts=[f"{folder}:/pinned:ro"],
    )


def test_a_new_task_serving_the_wrong_leaf_is_rolled_back_and_backs_off(rig: FaultRig) -> None:
    rig.setup(deploy=_pinned_service)
    _rolled_back_then_backs_off(rig, "wrong-leaf")


def test_a_url_failing_before_the_run_is_reported_not_rolled_back(rig: FaultRig) -> None:
    dead = f"https://127.0.0.1:{free_port()}/api/system/status"

    def entry(r: FaultRig) -> dict[str, object]:
        certificate = r.lab.entry("web", [r.standin])
        certificate["verify"] = [*certificate["verify"], {"url": dead, "server_name": SAN}]
        return certificate

    rig.setup(entry=entry)
    with rig.watch():
        run = rig.rotate(None, "--verify-timeout", "5")
        assert run.returncode == 1, run.report
        assert dead in run.stdout + run.stderr
        rig.returned_settled(run)
        settled_at = rig.settled(rig.new)
        again = rig.rotate()
        assert again.returncode == 0, again.report
    assert rig.updates(run.started, again.ended) == 1  # no rollback, nothing redone
    rig.settled(rig.new)
    rig.conclude("url-failing-before", run, again, settled_at)
