"""The swarm-wide lease against the real daemon: create, wait, renew, release, take over.

Each test uses a lease name of its own, so tests never wait for each other or for a real
run's lease on the shared daemon.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

import docker
import pytest

from phoenix_certbot.errors import LockTimeout, WriteConflict
from phoenix_certbot.rotation import lease_terms as lt
from phoenix_certbot.rotation.lease import SwarmLease, this_run
from phoenix_certbot.swarm.client import SwarmClient
from phoenix_certbot.swarm.model import VersionedConfig

pytestmark = pytest.mark.docker
REPO = Path(__file__).resolve().parents[2]
LEASE_LOGGER = "phoenix_certbot.rotation.lease"


@pytest.fixture
def swarm(docker_client: docker.DockerClient) -> SwarmClient:
    return SwarmClient.connect()


@pytest.fixture
def name(lease_name: str) -> str:
    return lease_name


def terms_of(swarm: SwarmClient, name: str) -> lt.Terms:
    found = swarm.read_config(name)
    assert found is not None
    return lt.from_labels(dict(found.labels))


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def wait_for(condition: object, what: str, timeout: float = 20.0) -> None:
    assert callable(condition)
    deadline = utcnow() + dt.timedelta(seconds=timeout)
    stop = threading.Event()
    for _attempt in range(int(timeout / 0.05) + 1):
        if condition():
            return
        if utcnow() > deadline:
            break
        stop.wait(0.05)
    pytest.fail(f"{what}: not within {timeout} s")


def test_acquire_creates_the_lease_and_release_frees_it(swarm: SwarmClient, name: str) -> None:
    lease = SwarmLease(swarm, name)
    lease.acquire(timeout_s=5)
    held = terms_of(swarm, name)
    assert held.state == lt.HELD
    assert held.holder == lease.holder
    assert held.holder.pid == os.getpid()
    lease.release()
    free = terms_of(swarm, name)
    assert free.state == lt.RELEASED
    assert free.holder == lease.holder  # the last holder stays readable for operators

    again = SwarmLease(swarm, name)
    again.acquire(timeout_s=0)  # a released lease is taken at the first try
    assert terms_of(swarm, name).holder == again.holder
    again.release()


def test_a_second_run_waits_then_gives_up_naming_the_holder(
    swarm: SwarmClient, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    first = SwarmLease(swarm, name)
    first.acquire(timeout_s=5)
    try:
        with caplog.at_level(logging.WARNING, LEASE_LOGGER), pytest.raises(LockTimeout) as info:
            SwarmLease(swarm, name, poll_s=0.2).acquire(timeout_s=1)
    finally:
        first.release()
    message = str(info.value)
    holder = first.holder
    assert f"swarm lease {name} held by" in message
    assert f"pid {holder.pid} on {holder.host}, run {holder.run}" in message
    assert "docs/operations.md" in message and "\n" not in message
    assert info.value.exit_code == 1
    assert any("waiting up to 1 s" in r.getMessage() for r in caplog.records)


def test_a_waiter_goes_on_as_soon_as_the_holder_releases(
    swarm: SwarmClient, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    first = SwarmLease(swarm, name)
    first.acquire(timeout_s=5)
    second = SwarmLease(SwarmClient.connect(), name, poll_s=0.1)
    failed: list[BaseException] = []

    def wait() -> None:
        try:
            second.acquire(timeout_s=30)
        except BaseException as exc:  # reported by the test thread below
            failed.append(exc)

    with caplog.at_level(logging.WARNING, LEASE_LOGGER):
        waiter = threading.Thread(target=wait)
        waiter.start()
        wait_for(
            lambda: any("waiting up to" in r.getMessage() for r in caplog.records),
            "the second run says it waits",
        )
        first.release()
        waiter.join(timeout=30)
    assert not failed
    assert terms_of(swarm, name).holder == second.holder
    second.release()


def test_renewal_keeps_a_live_lease_held_past_its_ttl(swarm: SwarmClient, name: str) -> None:
    holder = SwarmLease(swarm, name, ttl_s=4.0)
    holder.acquire(timeout_s=5)
    first = terms_of(swarm, name)
    try:
        with pytest.raises(LockTimeout):  # longer than a TTL: without renewals it would expire
            SwarmLease(SwarmClient.connect(), name, poll_s=0.2).acquire(timeout_s=5.5)
        renewed = terms_of(swarm, name)
    finally:
        holder.release()
    assert renewed.holder == holder.holder
    assert renewed.acquired == first.acquired
    assert renewed.expires is not None and first.expires is not None
    assert renewed.expires > first.expires


def start_holder(name: str, ttl_s: float, *extra: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.lease_holder", name, str(ttl_s), *extra],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # the holder prints once it holds the lease
    if not line.startswith("held "):
        process.kill()
        _, err = process.communicate(timeout=30)
        pytest.fail(f"lease holder did not start: {line!r} {err[-2000:]}")
    return process, line.split()[1]


def kill_hard(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL


def test_a_holder_killed_on_this_machine_is_taken_over_before_its_expiry(
    swarm: SwarmClient, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    process, run = start_holder(name, 60.0)
    try:
        held = terms_of(swarm, name)
        assert held.holder is not None and held.holder.run == run
    finally:
        kill_hard(process)
    with caplog.at_level(logging.WARNING, LEASE_LOGGER):
        lease = SwarmLease(swarm, name)
        lease.acquire(timeout_s=10)
    taken_at = utcnow()
    lease.release()
    assert held.expires is not None and taken_at < held.expires
    assert any("(abandoned)" in r.getMessage() for r in caplog.records)


def test_a_holder_killed_elsewhere_is_taken_over_once_its_ttl_passed(
    swarm: SwarmClient, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    process, _ = start_holder(name, 2.0, "--foreign")  # looks like another manager's run
    kill_hard(process)
    last = terms_of(swarm, name)  # its last renewal
    with caplog.at_level(logging.WARNING, LEASE_LOGGER):
        lease = SwarmLease(swarm, name, poll_s=0.1)
        lease.acquire(timeout_s=20)
    taken_at = utcnow()
    lease.release()
    assert last.expires is not None and taken_at >= last.expires
    assert any("(expired)" in r.getMessage() for r in caplog.records)


STALE_TTL_S = 0.5


def test_a_waiter_whose_clock_runs_an_hour_ahead_does_not_take_a_live_lease(
    swarm: SwarmClient, name: str
) -> None:
    """Managers on hypervisor VMs drift. By this waiter's clock the live lease expired an
    hour ago; the holder keeps renewing it, so it is not taken."""
    holder = SwarmLease(swarm, name, ttl_s=3.0)
    holder.acquire(timeout_s=5)

    def an_hour_ahead() -> dt.datetime:
        return utcnow() + dt.timedelta(hours=1)

    try:
        waiter = SwarmLease(SwarmClient.connect(), name, poll_s=0.1, now=an_hour_ahead)
        with pytest.raises(LockTimeout):  # longer than the holder's TTL
            waiter.acquire(timeout_s=4.0)
        assert terms_of(swarm, name).holder == holder.holder
    finally:
        holder.release()


def stale_lease(swarm: SwarmClient, name: str) -> VersionedConfig:
    """A lease held by a run on another machine that stopped renewing an hour ago; its
    TTL is short, so a waiter that watches it unchanged for STALE_TTL_S may take it."""
    gone = lt.Holder(host="elsewhere", pid=1, run="dead00", command="phoenix-cert rotate")
    terms = lt.to_labels(lt.held(gone, utcnow() - dt.timedelta(hours=1), STALE_TTL_S))
    found = swarm.read_config(name)
    if found is None:
        return swarm.create_config(name, b"stale", terms)
    swarm.relabel_config(found, terms)
    after = swarm.read_config(name)
    assert after is not None
    return after


def test_two_take_overs_of_one_version_cannot_both_win(swarm: SwarmClient, name: str) -> None:
    """The atomic step itself: both waiters read the same version of the expired lease;
    swarm accepts the first label update and refuses the second."""
    stale = stale_lease(swarm, name)
    first, second = this_run(), this_run()
    swarm.relabel_config(stale, lt.to_labels(lt.held(first, utcnow(), 30.0)))
    with pytest.raises(WriteConflict):
        swarm.relabel_config(stale, lt.to_labels(lt.held(second, utcnow(), 30.0)))
    assert terms_of(swarm, name).holder == first


class Counting:
    """The real adapter, counting the label updates swarm refused."""

    def __init__(self, swarm: SwarmClient, refused: list[str]) -> None:
        self.swarm = swarm
        self.refused = refused

    def read_config(self, name: str) -> VersionedConfig | None:
        return self.swarm.read_config(name)

    def create_config(self, name: str, data: bytes, labels: Mapping[str, str]) -> VersionedConfig:
        return self.swarm.create_config(name, data, labels)

    def relabel_config(self, config: VersionedConfig, labels: Mapping[str, str]) -> None:
        try:
            self.swarm.relabel_config(config, labels)
        except WriteConflict:
            self.refused.append(config.name)
            raise


def contend(leases: list[SwarmLease]) -> tuple[list[SwarmLease], list[LockTimeout]]:
    """Every lease waits for the stale lease's TTL, all from the same moment, then tries to
    take it over: who got it, who was refused (and then waited on the winner in vain)."""
    start = threading.Barrier(len(leases))
    won: list[SwarmLease] = []
    lost: list[LockTimeout] = []

    def take(lease: SwarmLease) -> None:
        start.wait(timeout=30)
        try:
            lease.acquire(timeout_s=4 * STALE_TTL_S)
        except LockTimeout as exc:
            lost.append(exc)
        else:
            won.append(lease)

    threads = [threading.Thread(target=take, args=(lease,)) for lease in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return won, lost


def test_simultaneous_take_overs_of_an_expired_lease_give_exactly_one_holder(
    swarm: SwarmClient, name: str
) -> None:
    contenders = 4
    clients = [SwarmClient.connect() for _ in range(contenders)]
    refused: list[str] = []
    for _round in range(3):
        stale_lease(swarm, name)
        leases = [SwarmLease(Counting(c, refused), name, poll_s=0.05) for c in clients]
        won, lost = contend(leases)
        assert len(won) == 1, f"{len(won)} holders"
        assert len(lost) == contenders - 1
        assert terms_of(swarm, name).holder == won[0].holder
        won[0].release()
    print(f"label updates refused by swarm over 3 rounds: {len(refused)}")


def test_the_lease_is_not_in_the_snapshot(swarm: SwarmClient, name: str) -> None:
    """So prune, status, stack-env and verify never see it as a certificate version."""
    lease = SwarmLease(swarm, name)
    lease.acquire(timeout_s=5)
    try:
        snapshot = swarm.snapshot()
    finally:
        lease.release()
    assert name not in {o.name for o in snapshot.objects}
    assert swarm.read_config(name) is not None  # it is there, only hidden
