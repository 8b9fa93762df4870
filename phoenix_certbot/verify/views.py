"""The readiness views inside `verify`: Portainer's view of its agents, run beside the
other live checks and judged by `readiness.portainer`."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from phoenix_certbot.findings import Finding
from phoenix_certbot.manifest.model import Manifest, PortainerSettings
from phoenix_certbot.readiness.model import PortainerView
from phoenix_certbot.readiness.observe import Budget, observe_portainer, portainer_api
from phoenix_certbot.readiness.portainer import judge_portainer

PortainerObserver = Callable[[PortainerSettings, Budget], PortainerView]
NO_PORTAINER = "no Portainer URL (--portainer-url or settings.portainer.url)"
STATUS_ONLY = "no token file: only Portainer's status was checked, not its agents"


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


def _observe(settings: PortainerSettings, budget: Budget) -> PortainerView:
    return observe_portainer(settings, budget)


@dataclass(frozen=True)
class Observers:
    """How verify gathers each view (tests pass fakes)."""

    portainer: PortainerObserver = _observe


REAL = Observers()


@dataclass(frozen=True)
class PortainerOutcome:
    findings: tuple[Finding, ...]
    agents: int
    skipped: str | None


def portainer_outcome(job: Future[PortainerView]) -> PortainerOutcome:
    view = job.result()
    skipped = STATUS_ONLY if view.token_file is None and view.status.ok else None
    return PortainerOutcome(tuple(judge_portainer(view)), view.agents_checked, skipped)
