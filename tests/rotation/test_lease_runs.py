"""Whole runs and the swarm-wide lease, on the real daemon: who waits, who does not."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from phoenix_certbot.errors import LockTimeout
from phoenix_certbot.manifest import load as manifest_load
from phoenix_certbot.rotation import lease_terms as lt
from phoenix_certbot.rotation.lease import LeaseLost, SwarmLease
from phoenix_certbot.rotation.run import RunOptions, rotate
from phoenix_certbot.swarm.client import SwarmClient
from tests.rotation.lab import (
    PHOENIX_CERT,
    SAN,
    Lab,
    intent_files,
    phoenix_cert,
    served_sha256,
    spec_updates,
)
from tests.support import pki

pytestmark = pytest.mark.docker


def start(
    *args: str | Path, stderr: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """`phoenix-cert ARGS` in the background; its stderr goes to a file the test polls."""
    with stderr.open("w") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [str(PHOENIX_CERT), *map(str, args)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=handle,
            text=True,
            env=env,
        )


def finish(process: subprocess.Popen[str], timeout: float = 150.0) -> str:
    try:
        out, _ = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    return out


def poll(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    for _attempt in range(int(timeout / 0.05) + 1):
        if condition():
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    pytest.fail(f"{what}: not within {timeout} s")


def held_by(name: str, pid: int) -> Callable[[], bool]:
    swarm = SwarmClient.connect()

    def check() -> bool:
        found = swarm.read_config(name)
        holder = lt.from_labels(dict(found.labels)).holder if found else None
        return holder is not None and holder.pid == pid

    return check


def test_two_runs_with_their_own_state_dirs_update_each_service_once(
    lab: Lab, lease_name: str, tmp_path: Path
) -> None:
    """Two managers' runs: the local lock cannot see the other (two state directories);
    the swarm lease makes the second wait, and then it finds nothing to do."""
    web, api = lab.deploy("web"), lab.deploy("api")
    lineage = lab.lineage("web")
    entry = lab.entry("web", [web, api])
    first_manifest = lab.manifest([entry], name="a.json", state_dir=tmp_path / "state-a")
    second_manifest = lab.manifest([entry], name="b.json", state_dir=tmp_path / "state-b")

    since = time.time()
    first = start("rotate", "--manifest", first_manifest, "--all", stderr=tmp_path / "a.err")
    second_err_file = tmp_path / "b.err"
    try:
        poll(held_by(lease_name, first.pid), "the first run holds the lease")
        # Paused (well within its TTL) until the second run is surely waiting: on a busy
        # machine the second one's start could otherwise outlast the whole first run.
        first.send_signal(signal.SIGSTOP)
        try:
            second = start("rotate", "--manifest", second_manifest, "--all", stderr=second_err_file)
            poll(lambda: "waiting up to" in second_err_file.read_text(), "the second run waits")
        finally:
            first.send_signal(signal.SIGCONT)
        second_out = finish(second)
    finally:
        first_out = finish(first)
    first_err, second_err = (tmp_path / "a.err").read_text(), (tmp_path / "b.err").read_text()
    assert first.returncode == 0, first_out + first_err
    assert second.returncode == 0, second_out + second_err
    events = lab.events(since, time.time())
    assert spec_updates(events, web.name) == 1
    assert spec_updates(events, api.name) == 1
    assert f"held by phoenix-cert rotate (pid {first.pid} on " in second_err
    assert "waiting up to 600 s" in second_err
    assert "update service" not in second_out
    assert served_sha256(web.port) == served_sha256(api.port) == lineage.leaf.sha256
    assert lt.from_labels(dict(SwarmClient.connect().read_config(lease_name).labels)).state == (
        lt.RELEASED
    )


def test_what_changes_nothing_does_not_wait_and_what_changes_waits(
    lab: Lab, lease_name: str, tmp_path: Path
) -> None:
    standin = lab.deploy("web")
    lineage = lab.lineage("web")
    manifest = lab.manifest([lab.entry("web", [standin])])
    assert phoenix_cert("rotate", "--manifest", manifest, "--all").returncode == 0
    lineage = lineage.renew()
    assert phoenix_cert("rotate", "--manifest", manifest, "--all").returncode == 0

    other = SwarmLease(SwarmClient.connect(), lease_name)  # another manager's run
    other.acquire(timeout_s=5)
    try:
        # Reading and recording commands go on at once (a wait would be 600 s: a timeout).
        hook_env = {"RENEWED_LINEAGE": str(lineage.live)}
        for args, env in (
            (("plan", "--all"), None),
            (("rotate", "--all", "--dry-run"), None),
            (("status",), None),
            (("stack-env",), None),
            (("deploy-hook", "--defer"), hook_env),
        ):
            result = phoenix_cert(*args, "--manifest", manifest, env=env, timeout=60)
            assert result.returncode == 0, (args, result.stdout, result.stderr)
            assert "swarm lease" not in result.stderr, args

        # A run that changes the swarm waits, bounded, and says for whom.
        loaded = manifest_load.load(manifest)
        with pytest.raises(LockTimeout) as info:
            rotate(loaded, loaded.certificates, RunOptions(lock_timeout_s=1), lambda _: None)
        assert f"run {other.holder.run}" in str(info.value)

        err = tmp_path / "rollback.err"
        version = lab.version(standin)
        rollback = start("rollback", "--manifest", manifest, "web", stderr=err)
        try:
            poll(lambda: "waiting up to" in err.read_text(), "rollback says it waits")
            assert lab.version(standin) == version  # nothing changed while it waited
        finally:
            released = time.time()
            other.release()
            out = finish(rollback)
    finally:
        other.release()
    assert rollback.returncode == 0, out + err.read_text()
    assert spec_updates(lab.events(released, time.time()), standin.name) == 1
    assert json.loads(phoenix_cert("status", "--manifest", manifest, "--json").stdout)


def test_a_run_killed_while_it_holds_the_lease_is_taken_over_by_the_next_run(
    lab: Lab, lease_name: str, tmp_path: Path
) -> None:
    standin = lab.deploy("web")
    lineage = lab.lineage("web")
    entry = lab.entry("web", [standin])
    first_manifest = lab.manifest([entry], name="a.json", state_dir=tmp_path / "state-a")
    second_manifest = lab.manifest([entry], name="b.json", state_dir=tmp_path / "state-b")

    first = start("rotate", "--manifest", first_manifest, "--all", stderr=tmp_path / "a.err")
    try:
        # Killed in the middle of its run: the lease stays behind, held.
        poll(held_by(lease_name, first.pid), "the first run holds the lease")
        first.send_signal(signal.SIGKILL)
    finally:
        finish(first)
    assert first.returncode == -signal.SIGKILL
    left = lt.from_labels(dict(SwarmClient.connect().read_config(lease_name).labels))
    assert left.state == lt.HELD and left.holder is not None and left.holder.pid == first.pid

    second = phoenix_cert("rotate", "--manifest", second_manifest, "--all", timeout=120)
    assert second.returncode == 0, second.stdout + second.stderr
    # On the same host the dead holder is seen at once; elsewhere after its TTL
    # (test_lease_swarm.py covers that one).
    assert f"took over swarm lease {lease_name} from phoenix-cert rotate (pid {first.pid}" in (
        second.stderr
    )
    assert "(abandoned)" in second.stderr
    assert served_sha256(standin.port) == lineage.leaf.sha256


def test_a_hook_that_only_records_takes_the_lease_when_it_must_resolve_a_killed_run(
    lab: Lab, lease_name: str, tmp_path: Path
) -> None:
    """`deploy-hook --defer` changes nothing, unless an interrupted run left an intent:
    finishing or undoing that changes services, so it waits for the swarm lease then."""
    standin = lab.deploy("web")
    lineage = lab.lineage("web")
    manifest = lab.manifest([lab.entry("web", [standin])])
    assert phoenix_cert("rotate", "--manifest", manifest, "--all").returncode == 0
    lineage = lineage.renew()
    killed = phoenix_cert(
        "rotate", "--manifest", manifest, "--all", env={"PHOENIX_CERT_FAILPOINT": "service-updated"}
    )
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    journal = lab.state_dir / "journal"
    assert list(journal.glob("*.json"))

    other = SwarmLease(SwarmClient.connect(), lease_name)  # another manager's run
    other.acquire(timeout_s=5)
    err = tmp_path / "hook.err"
    env = {**os.environ, "RENEWED_LINEAGE": str(lineage.live)}
    try:
        hook = start("deploy-hook", "--defer", "--manifest", manifest, stderr=err, env=env)
        try:
            poll(lambda: "waiting up to" in err.read_text(), "the hook waits for the lease")
            assert list(journal.glob("*.json"))  # nothing resolved while it waits
        finally:
            other.release()
            out = finish(hook)
    finally:
        other.release()
    assert hook.returncode == 0, out + err.read_text()
    assert not list(journal.glob("*.json"))
    assert served_sha256(standin.port) == lineage.leaf.sha256


OTHER = lt.Holder(host="mgr2.test", pid=4242, run="0ther0", command="phoenix-cert rotate")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def take_over(swarm: SwarmClient, name: str) -> None:
    """What another manager's run does when our lease has expired (our renewals lost while
    Docker was away, say): its own terms on the lease, on the version it read."""
    found = swarm.read_config(name)
    assert found is not None
    swarm.relabel_config(found, lt.to_labels(lt.held(OTHER, utcnow(), 600.0)))


def holder_now(swarm: SwarmClient, name: str) -> lt.Terms:
    found = swarm.read_config(name)
    assert found is not None
    return lt.from_labels(dict(found.labels))


def release_other(name: str) -> None:
    swarm = SwarmClient.connect()
    found = swarm.read_config(name)
    assert found is not None
    terms = lt.from_labels(dict(found.labels))
    swarm.relabel_config(found, lt.to_labels(lt.released(terms, utcnow())))


def run_taken_over(path: Path, name: str, said: str) -> LeaseLost:
    """A rotate run (in this process) whose lease OTHER takes over when the run reports
    `said`; what it raised."""
    manifest = manifest_load.load(path)
    swarm = SwarmClient.connect()
    taken: list[str] = []

    def report(line: str) -> None:
        if said in line and not taken:
            take_over(swarm, name)
            taken.append(line)

    with pytest.raises(LeaseLost) as lost:
        rotate(manifest, manifest.certificates, RunOptions(), report, swarm)
    assert lost.value.exit_code == 4
    assert "run 0ther0" in str(lost.value) and "mgr2.test" in str(lost.value)
    assert holder_now(swarm, name).holder == OTHER  # our release wrote nothing on it
    return lost.value


def test_a_run_whose_lease_was_taken_over_sends_no_update_and_exits_4(
    lab: Lab, lease_name: str
) -> None:
    standin = lab.deploy("web")
    lineage = lab.lineage("web")
    path = lab.manifest([lab.entry("web", [standin])])
    before, since = lab.mounted(standin), time.time()

    run_taken_over(path, lease_name, "created ")  # once the versions exist, before the update

    assert spec_updates(lab.events(since, time.time()), standin.name) == 0
    assert lab.mounted(standin) == before
    assert len(intent_files(lab.state_dir)) == 1  # for our next run

    release_other(lease_name)
    since = time.time()
    after = phoenix_cert("rotate", "--manifest", path, "--all")
    assert after.returncode == 0, after.stdout + after.stderr
    assert spec_updates(lab.events(since, time.time()), standin.name) == 1
    assert served_sha256(standin.port) == lineage.leaf.sha256
    assert intent_files(lab.state_dir) == []


def test_a_rollback_whose_lease_was_taken_over_is_not_sent_and_the_next_run_sends_it(
    lab: Lab, lease_name: str
) -> None:
    refused, bootstrap = pki.issue([SAN], lab.ca), pki.issue([SAN], lab.ca)
    standin = lab.deploy("web", bootstrap, env={"STANDIN_FAIL_IF_CERT_SHA256": refused.sha256})
    lab.lineage("web", refused)
    path = lab.manifest([lab.entry("web", [standin])])
    good, since = lab.mounted(standin), time.time()

    # The refused certificate does not converge: taken over as the run decides to undo.
    run_taken_over(path, lease_name, ": rolling back (")

    assert spec_updates(lab.events(since, time.time()), standin.name) == 1  # no rollback
    assert lab.mounted(standin) != good
    (left,) = intent_files(lab.state_dir)
    assert json.loads(left.read_text())["phase"] == "rollback"

    release_other(lease_name)
    since = time.time()
    after = phoenix_cert("rotate", "--manifest", path, "--all", "--json")
    assert after.returncode == 1, after.stdout + after.stderr  # the failed rollout, undone
    assert [s["result"] for s in json.loads(after.stdout)["recovered"]] == ["rolled-back"]
    assert spec_updates(lab.events(since, time.time()), standin.name) == 1
    assert lab.mounted(standin) == good
    lab.wait_running(standin)
    assert served_sha256(standin.port) == bootstrap.sha256
