"""SIGKILL at each failpoint of a rotation (the process kills itself: PHOENIX_CERT_FAILPOINT),
then the next run. Shared swarm, one stand-in per row.

The rule: the next run resolves what the killed one left (finishes or undoes it) before
anything else; a good certificate ends served with exactly one update of the service in
all; a certificate the service rejects ends rolled back (exit 1), the old leaf served.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.faults.rig import FaultRig
from tests.faults.runs import SIGKILLED
from tests.rotation.lab import Standin, leaf_sha256_of, write_private

pytestmark = pytest.mark.docker


@dataclass(frozen=True)
class Row:
    failpoint: str
    refuse_new: bool  # the new task fails at start with the new leaf
    next_exit: int
    ends_on: str  # "old" | "new"
    updates: int  # spec writes of the service, killed run and next run together


ROWS = {
    "objects-created": Row("objects-created", False, 0, "new", 1),
    "journal-written": Row("journal-written", False, 0, "new", 1),
    "service-updated": Row("service-updated", False, 0, "new", 1),
    "service-updated-rejected": Row("service-updated", True, 1, "old", 2),
    "rollback-updated": Row("rollback-updated", True, 1, "old", 2),
    "before-prune": Row("before-prune", False, 0, "new", 1),
    "before-record": Row("before-record", False, 0, "new", 1),
}


@pytest.mark.parametrize("name", list(ROWS))
def test_sigkill_at_failpoint_then_next_run(rig: FaultRig, name: str) -> None:
    row = ROWS[name]
    rig.setup(refuse_new=row.refuse_new)
    with rig.watch():
        killed = rig.rotate(row.failpoint)
        assert killed.returncode == SIGKILLED, killed.report
        recovery = rig.rotate()
        assert recovery.returncode == row.next_exit, recovery.report
        leaf = rig.new if row.ends_on == "new" else rig.old
        settled_at = rig.settled(leaf)
    assert rig.updates(killed.started, recovery.ended) == row.updates
    recorded = rig.status()["web"]["last_rotation"]["result"]
    assert recorded == ("ok" if row.ends_on == "new" else "failed")
    rig.conclude(f"kill:{name}", killed, recovery, settled_at)


def _files_service(rig: FaultRig) -> Standin:
    """A stand-in that reads its certificate from files on this host (a bind mount), as
    the manifest's `files` targets are meant for; they hold the old leaf at first."""
    folder = rig.lab.root / "certs"
    folder.mkdir()
    write_private(folder / "fullchain.pem", (rig.old.cert_pem + rig.lab.ca.cert_pem).decode())
    (folder / "fullchain.pem").chmod(0o644)
    write_private(folder / "privkey.pem", rig.old.key_pem.decode())
    return rig.lab.deploy(
        "web",
        rig.old,
        args=["--sslcert", "/certs/fullchain.pem", "--sslkey", "/certs/privkey.pem"],
        mounts=[f"{folder}:/certs:ro"],
    )


def _files_entry(rig: FaultRig) -> dict[str, Any]:
    folder = rig.lab.root / "certs"
    binding = {
        "service": rig.standin.name,
        "files": [
            {"path": str(folder / "fullchain.pem"), "source": "fullchain"},
            {"path": str(folder / "privkey.pem"), "source": "privkey", "mode": "0600"},
        ],
    }
    return rig.lab.entry("web", [rig.standin], bindings=[binding])


def test_sigkill_between_files_written_and_the_update_then_next_run(rig: FaultRig) -> None:
    rig.setup(deploy=_files_service, entry=_files_entry)
    fullchain = rig.lab.root / "certs" / "fullchain.pem"
    with rig.watch():
        killed = rig.rotate("files-written")
        assert killed.returncode == SIGKILLED, killed.report
        # The file is new, the running task still serves what it read at start.
        assert leaf_sha256_of(fullchain) == rig.new.sha256
        recovery = rig.rotate()
        assert recovery.returncode == 0, recovery.report
        # What recovery did is reported, though it is no failure.
        assert f"recovered {rig.standin.name}: undone" in recovery.stdout, recovery.report
        settled_at = rig.settled(rig.new)
    assert leaf_sha256_of(fullchain) == rig.new.sha256
    assert rig.updates(killed.started, recovery.ended) == 1
    rig.conclude("kill:files-written", killed, recovery, settled_at)
