"""The shared watch: one poll for every service waited for, at the time the waiters need it
(pure: an in-memory stand-in for the Docker adapter's `watch`)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Collection

import pytest

from phoenix_certbot.errors import DockerUnavailable
from phoenix_certbot.rotation.watch import Seen, Watch
from phoenix_certbot.swarm.client import NotFound, SwarmClient
from phoenix_certbot.swarm.model import ServiceState, TaskState
from tests.rotation.fakes import service


class FakeSwarm:
    where = "fake"

    def __init__(self, ids: Collection[str]) -> None:
        self.states = {i: dataclasses.replace(service(i), id=i) for i in ids}
        self.polls: list[tuple[float, frozenset[str]]] = []
        self.fail: Exception | None = None

    def watch(
        self, service_ids: Collection[str]
    ) -> tuple[dict[str, ServiceState], dict[str, tuple[TaskState, ...]]]:
        self.polls.append((time.monotonic(), frozenset(service_ids)))
        if self.fail is not None:
            raise self.fail
        found = {i: self.states[i] for i in service_ids if i in self.states}
        return found, {i: () for i in found}


def _watch(swarm: FakeSwarm) -> Watch:
    return Watch(swarm)  # type: ignore[arg-type]  # the one method Watch calls


def _read_all(watch: Watch, wanted: dict[str, float]) -> dict[str, Seen | Exception]:
    """Each service read from its own thread, as the engine's waiters do."""
    results: dict[str, Seen | Exception] = {}
    start = threading.Barrier(len(wanted))

    def one(ident: str, due: float) -> None:
        start.wait(10)
        try:
            results[ident] = watch.read(ident, due)
        except Exception as exc:  # handed to the test
            results[ident] = exc

    threads = [threading.Thread(target=one, args=item) for item in wanted.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return results


def test_waiters_due_together_share_one_poll_of_all_their_services() -> None:
    swarm = FakeSwarm([f"s{i}" for i in range(32)])
    watch = _watch(swarm)
    now = watch.now()
    results = _read_all(watch, {f"s{i}": now for i in range(32)})
    assert all(isinstance(r, Seen) and r.state.id == i for i, r in results.items())
    # Waiters meet at the next point of the watch's grid; on a busy machine a few may
    # arrive after it and meet at the one after.
    assert 1 <= len(swarm.polls) <= 3
    assert frozenset(results) == frozenset().union(*(ids for _, ids in swarm.polls))


def test_a_waiter_gets_no_poll_older_than_it_asked_for() -> None:
    swarm = FakeSwarm(["early", "late"])
    watch = _watch(swarm)
    now = watch.now()
    results = _read_all(watch, {"early": now, "late": now + 0.2})
    late = results["late"]
    assert isinstance(late, Seen) and late.at >= now + 0.2
    assert isinstance(results["early"], Seen)
    assert len(swarm.polls) == 2


def test_a_failed_poll_fails_every_waiter_of_that_poll() -> None:
    swarm = FakeSwarm(["a", "b"])
    swarm.fail = DockerUnavailable("fake: no answer")
    watch = _watch(swarm)
    now = watch.now()
    results = _read_all(watch, {"a": now, "b": now})
    assert all(isinstance(r, DockerUnavailable) for r in results.values())
    swarm.fail = None
    assert watch.read("a", watch.now()).state.id == "a"  # the next poll is fresh


def test_a_service_that_is_gone_is_not_found() -> None:
    watch = _watch(FakeSwarm(["there"]))
    with pytest.raises(NotFound, match="gone no longer exists"):
        watch.read("gone", watch.now())


def test_the_adapter_has_the_method_the_watch_calls() -> None:
    assert callable(SwarmClient.watch)
