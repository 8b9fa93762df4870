"""The readiness views inside `verify`: Portainer's view of its agents and this manager's
view of the swarm, run beside the other live checks and judged by `readiness`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Protocol

from phoenix_certbot.errors import PhoenixError
from phoenix_certbot.findings import Finding
from phoenix_certbot.manifest.model import Manifest, PortainerSettings
from phoenix_certbot.readiness.model import PortainerView, SwarmView
from phoenix_certbot.readiness.observe import (
    Budget,
    SwarmViewReader,
    observe_portainer,
    observe_swarm,
    portainer_api,
)
from phoenix_certbot.readiness.portainer import judge_portainer
from phoenix_certbot.readiness.swarm import judge_swarm
from phoenix_certbot.verify import live
from phoenix_certbot.verify.model import Group

log = logging.getLogger(__name__)

NO_PORTAINER = "no Portainer URL (--portainer-url or settings.portainer.url)"
STATUS_ONLY = "no token file: only Portainer's status was checked, not its agents"


class DockerReader(live.SwarmReader, SwarmViewReader, Protocol):
    """What verify reads from Docker: the services' and the swarm's views."""


PortainerObserver = Callable[[PortainerSettings, Budget], PortainerView]
SwarmObserver = Callable[[SwarmViewReader, Budget], SwarmView]


def _observe_portainer(settings: PortainerSettings, budget: Budget) -> PortainerView:
    return observe_portainer(settings, budget)


def _observe_swarm(reader: SwarmViewReader, budget: Budget) -> SwarmView:
    return observe_swarm(reader, budget)


@dataclass(frozen=True)
class Observers:
    """How verify gathers each view (tests pass fakes)."""

    portainer: PortainerObserver = _observe_portainer
    swarm: SwarmObserver = _observe_swarm


REAL = Observers()


def merged_portainer(given: PortainerSettings, manifest: Manifest | None) -> PortainerSettings:
    """The command line's Portainer options over the manifest's `settings.portainer`."""
    base = manifest.settings.portainer if manifest is not None else PortainerSettings()
    return PortainerSettings(
        url=given.url or base.url,
        token_file=given.token_file or base.token_file,
        server_name=given.server_name or base.server_name,
        ca_file=given.ca_file or base.ca_file,
    )


def check_portainer_input(settings: PortainerSettings) -> None:
    """BadInput now, before any check runs, for an unusable URL or CA file."""
    if settings.url:
        portainer_api(settings)


@dataclass(frozen=True)
class ViewOutcome:
    group: Group
    findings: tuple[Finding, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    skipped: str | None = None


@dataclass(frozen=True)
class Started:
    portainer: Future[PortainerView] | None
    swarm: Future[SwarmView] | None


def start(
    pool: Executor,
    portainer: PortainerSettings,
    docker: SwarmViewReader | None,
    budget: Budget,
    observers: Observers,
) -> Started:
    """Both views in `pool`: Portainer's when a URL is known, the swarm's when `docker`."""
    return Started(
        pool.submit(observers.portainer, portainer, budget) if portainer.url else None,
        pool.submit(observers.swarm, docker, budget) if docker is not None else None,
    )


def portainer_outcome(job: Future[PortainerView] | None) -> ViewOutcome:
    if job is None:
        return ViewOutcome(Group.PORTAINER, skipped=NO_PORTAINER)
    view = job.result()
    skipped = STATUS_ONLY if view.token_file is None and view.status.ok else None
    return ViewOutcome(
        Group.PORTAINER, tuple(judge_portainer(view)), {"agents": view.agents_checked}, skipped
    )


def swarm_outcome(job: Future[SwarmView]) -> ViewOutcome:
    try:
        view = job.result()
    except PhoenixError as exc:  # Docker went away or failed while we read the nodes
        return ViewOutcome(Group.SWARM, (live.docker_error(str(exc)),))
    return ViewOutcome(Group.SWARM, tuple(judge_swarm(view)), {"swarm_nodes": len(view.nodes)})
