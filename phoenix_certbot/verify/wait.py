"""`phoenix-cert wait-ready`: the readiness views, repeated until they pass or the time is up.

Each attempt asks Portainer (status; with a token, every agent through Portainer) and the
swarm (nodes, managers, ports, MTU), within one request timeout: the views run in daemon
threads that the attempt stops waiting for, so nothing the network or Docker does can
stretch an attempt. Attempts start only before --timeout, so the whole wait ends within
--timeout plus one request timeout. The result is a `VerifyReport` (the JSON contract of
`verify --json`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from phoenix_certbot.errors import EXIT_BAD_INPUT, PhoenixError
from phoenix_certbot.findings import Finding, Severity
from phoenix_certbot.manifest.model import PortainerSettings
from phoenix_certbot.readiness.model import PortainerView, SwarmView
from phoenix_certbot.readiness.observe import REQUEST_TIMEOUT_S, Budget, SwarmViewReader
from phoenix_certbot.readiness.portainer import judge_portainer
from phoenix_certbot.readiness.swarm import judge_swarm
from phoenix_certbot.verify import live, views
from phoenix_certbot.verify.model import Checked, Group, VerifyReport

_T = TypeVar("_T")
_GRACE_S = 0.25  # thread start and judgement, on top of an attempt's budget


@dataclass(frozen=True)
class WaitOptions:
    portainer: PortainerSettings
    timeout_s: float = 300.0
    interval_s: float = 2.0
    request_timeout_s: float = REQUEST_TIMEOUT_S


@dataclass(frozen=True)
class Attempt:
    number: int
    at_s: float  # seconds since the wait began, when the attempt ended
    report: VerifyReport


@dataclass
class _Outcome(Generic[_T]):
    value: _T | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


def in_background(work: Callable[[], _T]) -> _Outcome[_T]:
    """Start `work` in a daemon thread: a call that hangs (a Docker daemon that accepts and
    never answers) can be left behind, and does not keep the process alive at exit."""
    outcome: _Outcome[_T] = _Outcome()

    def run() -> None:
        try:
            outcome.value = work()
        except BaseException as exc:  # handed to the waiting thread
            outcome.error = exc
        finally:
            outcome.done.set()

    threading.Thread(target=run, name="wait-ready view", daemon=True).start()
    return outcome


def check_once(
    portainer: PortainerSettings,
    docker: SwarmViewReader | None,
    request_timeout_s: float,
    observers: views.Observers = views.REAL,
) -> VerifyReport:
    """One attempt: both views within one request timeout."""
    budget = Budget.starting_now(request_timeout_s, request_timeout_s)
    p_job = in_background(lambda: observers.portainer(portainer, budget))
    s_job = in_background(lambda: observers.swarm(docker, budget)) if docker is not None else None
    for job in (p_job, s_job):
        if job is not None:
            job.done.wait(max(0.0, budget.deadline + _GRACE_S - time.monotonic()))
    findings: list[Finding] = []
    counts: dict[str, int] = {}
    skipped: dict[Group, str] = {}
    portainer_view = _result(p_job, request_timeout_s)
    if isinstance(portainer_view, PortainerView):
        findings.extend(judge_portainer(portainer_view))
        counts["agents"] = portainer_view.agents_checked
        if portainer_view.token_file is None:
            skipped[Group.PORTAINER] = views.STATUS_ONLY
    else:
        findings.append(_stuck("portainer.unreachable", f"Portainer: {portainer_view}"))
    if s_job is None:
        skipped[Group.SWARM] = "--no-swarm-checks"
    else:
        swarm_view = _result(s_job, request_timeout_s)
        if isinstance(swarm_view, SwarmView):
            findings.extend(judge_swarm(swarm_view))
            counts["swarm_nodes"] = len(swarm_view.nodes)
        else:
            findings.append(live.docker_error(f"reading the swarm: {swarm_view}"))
    checked = Checked(
        agents=counts.get("agents", 0),
        swarm_nodes=counts.get("swarm_nodes", 0),
        skipped={
            Group.COMPOSE: "wait-ready",
            Group.CERTIFICATES: "wait-ready",
            **dict.fromkeys((Group.SERVICES, Group.URLS, Group.NODES), "wait-ready"),
            **skipped,
        },
    )
    return VerifyReport(tuple(findings), checked)


def _result(job: _Outcome[_T], timeout_s: float) -> _T | str:
    """The view, or why there is none (one line)."""
    if not job.done.is_set():
        return f"no answer within {timeout_s:g} s"
    if job.error is not None:
        if isinstance(job.error, PhoenixError):
            return str(job.error)
        raise job.error
    assert job.value is not None  # noqa: S101 - set whenever no error was
    return job.value


def _stuck(finding_id: str, message: str) -> Finding:
    return Finding(
        finding_id,
        Severity.ERROR,
        message,
        "check that Portainer runs and answers on its HTTPS port",
    )


def wait_ready(
    options: WaitOptions,
    docker: SwarmViewReader | None,
    *,
    progress: Callable[[Attempt], None] = lambda _attempt: None,
    observers: views.Observers = views.REAL,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Attempt:
    """Attempts every `interval_s` until one passes (no error), one finds bad input (the
    token: it will not fix itself), or no attempt may start any more. The last attempt."""
    started = clock()
    deadline = started + options.timeout_s
    number = 0
    while True:
        number += 1
        begun = clock()
        report = check_once(options.portainer, docker, options.request_timeout_s, observers)
        attempt = Attempt(number, clock() - started, report)
        progress(attempt)
        if report.ok or report.exit_code == EXIT_BAD_INPUT:
            return attempt
        next_start = max(begun + options.interval_s, clock())
        if next_start >= deadline:
            return attempt
        sleep(max(0.0, next_start - clock()))
