"""The state directory: every change under the run lock; damaged files are bad input."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
from pathlib import Path

import filelock
import pytest

from phoenix_certbot.errors import EXIT_BAD_INPUT
from phoenix_certbot.rotation.state import StateCorrupt, StateStore
from tests.rotation.lab import (
    PHOENIX_CERT,
    Lab,
    invoke,
    served_sha256,
    spec_updates,
    write_private,
)


def test_a_change_outside_the_run_lock_is_refused(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    with pytest.raises(RuntimeError, match="outside the run lock"):
        store.hold("web", "a" * 64)
    with pytest.raises(RuntimeError, match="outside the run lock"):
        store.add_pending("/le/live/web")
    with store.locked():
        store.hold("web", "a" * 64)
    assert store.held() == {"web": "a" * 64}


def test_a_failed_rollout_counts_once_whichever_run_records_it(tmp_path: Path) -> None:
    """The run that decided a rollback it could not finish, and the next run that completes
    it, both record the failure of the same rollout: one failure, a 1 h backoff."""
    store = StateStore(tmp_path)
    leaf, t0 = "a" * 64, dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    with store.locked():
        store.record_rotation("web", leaf, "failed", verified=False, now=t0, rollout="r1")
        later = t0 + dt.timedelta(minutes=5)
        store.record_rotation("web", leaf, "failed", verified=False, now=later, rollout="r1")
        first = store.backoffs()["web"]
        assert (first.failures, first.until) == (1, t0 + dt.timedelta(hours=1))
        # Another rollout of the same leaf (`--force`) is another failure: 2 h.
        store.record_rotation("web", leaf, "failed", verified=False, now=later, rollout="r2")
        assert store.backoffs()["web"].failures == 2
        store.record_rotation("web", leaf, "ok", verified=True, now=later)
        assert store.backoffs() == {}
        assert "failed_rollout" not in store.read()["certs"]["web"]


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("state.json", '{"certs": {', "not JSON"),
        ("state.json", "[]", "a JSON list, not an object"),
        ("state.json", '{"held": ["web"]}', '"held" is not an object'),
        ("pending.json", '{"lineages": "/le/live/web"}', '"lineages" is not a list'),
    ],
)
def test_a_damaged_file_is_exit_2_and_moved_aside_under_the_lock(
    tmp_path: Path, name: str, content: str, why: str
) -> None:
    store = StateStore(tmp_path)
    damaged = tmp_path / name
    damaged.write_text(content)

    with pytest.raises(StateCorrupt, match="nothing changed") as outside:
        store.read() if name == "state.json" else store.pending()
    assert str(damaged) in str(outside.value) and why in str(outside.value)
    assert damaged.read_text() == content  # only a run holding the lock moves it

    with pytest.raises(StateCorrupt) as info, store.locked():
        pytest.fail("the damaged file must stop the command before it does anything")
    assert info.value.exit_code == EXIT_BAD_INPUT
    (aside,) = tmp_path.glob(f"{name}.corrupt-*")
    assert aside.read_text() == content and not damaged.exists()
    assert f"moved aside to {aside.name}" in str(info.value)
    with store.locked():  # the next run starts afresh
        assert store.held() == {} and store.pending() == []


def test_the_post_hook_waits_for_the_lock_before_it_touches_pending_lineages(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "pending.json").write_text(json.dumps({"lineages": ["/le/live/not-ours"]}))
    manifest = {
        "version": 2,
        "settings": {"certbot_live_dir": str(tmp_path / "live"), "state_dir": str(state)},
        "certificates": [
            {"name": "web", "sans": ["web.test"], "services": [{"service": "phx-never-used"}]}
        ],
    }
    path = write_private(tmp_path / "manifest.json", json.dumps(manifest))
    lock = filelock.FileLock(str(state / "lock"))
    lock.acquire(timeout=5)  # another run is in progress
    process = subprocess.Popen(
        [str(PHOENIX_CERT), "post-hook", "--manifest", str(path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        waited = _wait_for_line(process, "another phoenix-cert run holds", 30)
        assert waited, "post-hook did not wait for the lock"
        assert json.loads((state / "pending.json").read_text()) == {
            "lineages": ["/le/live/not-ours"]
        }
    finally:
        lock.release()
        stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stdout + stderr
    assert json.loads((state / "pending.json").read_text()) == {"lineages": []}


def _wait_for_line(process: subprocess.Popen[str], text: str, timeout_s: float) -> bool:
    assert process.stderr is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        line = process.stderr.readline()  # the process blocks on the lock after this line
        if text in line:
            return True
    return False


@pytest.mark.docker
def test_a_damaged_state_file_does_not_drop_a_hold_it_stops_the_run(lab: Lab) -> None:
    standin = lab.deploy("web")
    first = lab.lineage("web")
    manifest = lab.manifest([lab.entry("web", [standin])])
    assert invoke("rotate", "--manifest", manifest, "--all").exit_code == 0
    first.renew()
    assert invoke("rotate", "--manifest", manifest, "--all").exit_code == 0
    assert invoke("rollback", "--manifest", manifest, "web").exit_code == 0
    state = lab.state_dir / "state.json"
    damaged = state.read_text()[:-40]  # cut short, as by a full disk or a crash of an editor
    state.write_text(damaged)
    secrets = lab.secret_names()

    since = time.time()
    result = invoke("rotate", "--manifest", manifest, "--all")

    assert result.exit_code == 2, result.output
    assert str(state) in result.stderr and "moved aside" in result.stderr
    assert spec_updates(lab.events(since, time.time()), standin.name) == 0
    assert lab.secret_names() == secrets
    assert served_sha256(standin.port) == first.leaf.sha256  # still rolled back
    (aside,) = lab.state_dir.glob("state.json.corrupt-*")
    assert aside.read_text() == damaged
