"""The wait-ready loop (fake views, fake clock): when it stops, and what it reports."""

from __future__ import annotations

from collections.abc import Callable

from phoenix_certbot.manifest.model import PortainerSettings
from phoenix_certbot.readiness.model import Call, PortainerView, SwarmView
from phoenix_certbot.readiness.observe import Budget, SwarmViewReader
from phoenix_certbot.swarm.model import NodeInfo
from phoenix_certbot.verify import views
from phoenix_certbot.verify.model import Group
from phoenix_certbot.verify.wait import Attempt, WaitOptions, check_once, wait_ready

URL = "https://10.0.0.111:9443"
SETTINGS = PortainerSettings(url=URL)
UP = PortainerView(URL, Call("GET /api/system/status", 200), "2.19.4")
DOWN = PortainerView(URL, Call("GET /api/system/status", error="connect failed: refused"))
DENIED = PortainerView(
    URL, UP.status, "2.19.4", "/etc/t", endpoints=Call("GET /api/endpoints", 401)
)
NODE = NodeInfo("n" * 25, "10.0.0.111", "manager", "active", "ready", reachability="reachable")


class Clock:
    """Time that moves only when slept, or by `step` per reading."""

    def __init__(self, step: float = 0.0) -> None:
        self.now = 100.0
        self.step = step
        self.slept: list[float] = []

    def __call__(self) -> float:
        self.now += self.step
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.now += seconds


def portainer_answers(
    *views_in_turn: PortainerView,
) -> Callable[[PortainerSettings, Budget], PortainerView]:
    answers = list(views_in_turn)

    def observe(_settings: PortainerSettings, _budget: Budget) -> PortainerView:
        return answers.pop(0) if len(answers) > 1 else answers[0]

    return observe


def swarm_view(reader: SwarmViewReader, _budget: Budget) -> SwarmView:
    return SwarmView(reader.nodes())


class Reader:
    def nodes(self) -> tuple[NodeInfo, ...]:
        return (NODE,)

    def overlay_networks(self) -> tuple[()]:
        return ()

    def advertise_address(self) -> str:
        return NODE.address


def run(
    *answers: PortainerView, timeout: float = 10, interval: float = 2, clock: Clock | None = None
) -> tuple[Attempt, list[Attempt], Clock]:
    clock = clock or Clock()
    seen: list[Attempt] = []
    last = wait_ready(
        WaitOptions(SETTINGS, timeout, interval, request_timeout_s=1),
        Reader(),
        progress=seen.append,
        observers=views.Observers(portainer_answers(*answers), swarm_view),
        clock=clock,
        sleep=clock.sleep,
    )
    return last, seen, clock


def test_ready_at_the_first_attempt() -> None:
    last, seen, clock = run(UP)
    assert (last.number, last.report.ok, clock.slept) == (1, True, [])
    assert last.report.checked.swarm_nodes == 1
    assert seen == [last]


def test_attempts_every_interval_until_ready() -> None:
    last, seen, clock = run(DOWN, DOWN, UP)
    assert [a.report.ok for a in seen] == [False, False, True]
    assert clock.slept == [2.0, 2.0]
    assert last.number == 3


def test_at_the_deadline_the_last_findings() -> None:
    last, seen, _ = run(DOWN, timeout=5, interval=2)
    assert len(seen) == 3  # at 0, 2 and 4 s; the next would start at 6 s, after 5 s
    assert [f.id for f in last.report.findings] == ["portainer.unreachable"]
    assert last.report.exit_code == 1


def test_a_slow_attempt_starts_the_next_at_once() -> None:
    clock = Clock(step=0.5)  # every reading of the clock costs 0.5 s: attempts take 1.5 s
    last, _, _ = run(DOWN, timeout=10, interval=1, clock=clock)
    assert clock.slept and all(s == 0 for s in clock.slept)
    assert last.at_s < 10 + 1.5


def test_a_refused_token_stops_at_once() -> None:
    last, seen, _ = run(DENIED, UP)
    assert len(seen) == 1
    assert [f.id for f in last.report.findings] == ["portainer.auth"]
    assert last.report.exit_code == 2


def test_a_view_that_hangs_is_left_behind() -> None:
    import threading

    release = threading.Event()

    def hangs(_settings: PortainerSettings, _budget: Budget) -> PortainerView:
        release.wait(10)
        return UP

    report = check_once(SETTINGS, None, 0.3, views.Observers(hangs, swarm_view))
    release.set()
    assert [f.id for f in report.findings] == ["portainer.unreachable"]
    assert report.findings[0].message == "Portainer: no answer within 0.3 s"
    assert report.checked.skipped[Group.SWARM] == "--no-swarm-checks"
