"""Faults of `state_dir`: a corrupt `state.json`, and a full filesystem. Shared swarm.

The rules: a corrupt `state.json` is bad input (exit 2, one line naming the file), kept
aside rather than silently read as empty, and nothing is changed; the next run starts from
there. A `state_dir` that cannot be written stops the run with a clear error before any
service update; once there is space again, the next run rotates.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.rig import FaultRig

pytestmark = pytest.mark.docker
CORRUPT = b'{"certs": {"web": {"last_rotation": {"time": "2026-01-0'  # cut off mid-write
TMPFS_SIZE = "16k"


def _files_holding(folder: Path, data: bytes) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.read_bytes() == data)


def test_a_corrupt_state_json_stops_the_run_with_exit_2_and_is_kept_aside(
    rig: FaultRig,
) -> None:
    rig.setup()
    rig.state_dir.mkdir(mode=0o700)
    state = rig.state_dir / "state.json"
    state.write_bytes(CORRUPT)
    state.chmod(0o600)
    with rig.watch():
        refused = rig.rotate()
        assert refused.returncode == 2, refused.report
        assert str(state) in refused.stderr, refused.report
        assert "Traceback" not in refused.stderr
        assert rig.lab.managed(rig.standin.cert_base) == []  # nothing created
        kept = _files_holding(rig.state_dir, CORRUPT)
        assert kept and kept != ["state.json"], f"corrupt bytes kept in {kept}"
        rig.settled(rig.old)
        recovery = rig.rotate()
        assert recovery.returncode == 0, recovery.report
        settled_at = rig.settled(rig.new)
    assert rig.updates(refused.started, refused.ended) == 0
    assert rig.updates(recovery.started, recovery.ended) == 1
    assert _files_holding(rig.state_dir, CORRUPT) == kept
    rig.conclude("corrupt-state", refused, recovery, settled_at)


@contextlib.contextmanager
def full_tmpfs(folder: Path) -> Iterator[Path]:
    """`folder` as a tiny tmpfs, filled up: yields the filler file (remove it to make room).
    Unmounted afterwards, whatever happens."""
    folder.mkdir(mode=0o700)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "phxfaults", str(folder)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    try:
        filler = folder / ".filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for _block in range(1024):  # far more than fits: bounded all the same
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass  # full
        finally:
            os.close(fd)
        yield filler
    finally:
        if subprocess.run(["umount", str(folder)], check=False, timeout=30).returncode:
            subprocess.run(["umount", "-l", str(folder)], check=False, timeout=30)


def test_a_full_state_dir_stops_the_run_before_any_service_update(rig: FaultRig) -> None:
    rig.setup()
    with full_tmpfs(rig.state_dir) as filler:
        with rig.watch():
            stopped = rig.rotate()
            assert stopped.returncode == 1, stopped.report
            assert str(rig.state_dir) in stopped.stderr, stopped.report
            assert "No space left on device" in stopped.stderr
            assert "Traceback" not in stopped.stderr
            rig.returned_settled(stopped)
            rig.settled(rig.old)
            filler.unlink()  # the operator makes room
            recovery = rig.rotate()
            assert recovery.returncode == 0, recovery.report
            settled_at = rig.settled(rig.new)
        # Before the tmpfs goes: its files are scanned for keys too.
        rig.conclude("full-state-dir", stopped, recovery, settled_at)
    assert rig.updates(stopped.started, stopped.ended) == 0
    assert rig.updates(recovery.started, recovery.ended) == 1
