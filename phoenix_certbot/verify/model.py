"""What a `phoenix-cert verify` run found and what it checked; the exit code rule (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from phoenix_certbot.errors import EXIT_BAD_INPUT, EXIT_DOCKER, EXIT_FAILED, EXIT_OK
from phoenix_certbot.findings import Finding, Severity
from phoenix_certbot.readiness.portainer import BAD_INPUT_IDS

# Finding ids that describe the input files; every other id (`live.`) describes what runs.
FILE_PREFIXES = ("compose.", "manifest.", "cert.")
LIVE_PREFIX = "live."


class Group(str, Enum):
    """The checks `verify` runs; `Checked.skipped` names those that did not run, and why."""

    COMPOSE = "compose"
    CERTIFICATES = "certificates"
    SERVICES = "services"
    URLS = "urls"
    NODES = "nodes"
    PORTAINER = "portainer"
    SWARM = "swarm"


MANIFEST_LIVE_GROUPS = (Group.SERVICES, Group.URLS, Group.NODES)
LIVE_GROUPS = (*MANIFEST_LIVE_GROUPS, Group.PORTAINER, Group.SWARM)


def is_file_finding(finding: Finding) -> bool:
    """Is it about what the operator gave us (files, a token): exit 2 when an error?"""
    return finding.id.startswith(FILE_PREFIXES) or finding.id in BAD_INPUT_IDS


@dataclass(frozen=True)
class Checked:
    """How many things each group checked, and which groups were skipped (group -> reason)."""

    compose_files: int = 0
    certificates: int = 0
    services: int = 0
    urls: int = 0
    nodes: int = 0
    agents: int = 0  # nodes whose agent Portainer was asked to reach
    swarm_nodes: int = 0  # nodes of the swarm view (state, reachability, ports)
    skipped: Mapping[Group, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "compose_files": self.compose_files,
            "certificates": self.certificates,
            "services": self.services,
            "urls": self.urls,
            "nodes": self.nodes,
            "agents": self.agents,
            "swarm_nodes": self.swarm_nodes,
            "skipped": {group.value: why for group, why in self.skipped.items()},
        }


@dataclass(frozen=True)
class VerifyReport:
    findings: tuple[Finding, ...]
    checked: Checked
    # Docker was needed (not --offline) and could not be used: exit 3 whatever else.
    docker_unreachable: bool = False

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def exit_code(self) -> int:
        """3 Docker needed but unreachable; 2 an error in the files (or the Portainer
        token); 1 a live error; 0."""
        if self.docker_unreachable:
            return EXIT_DOCKER
        errors = self.errors
        if any(is_file_finding(f) for f in errors):
            return EXIT_BAD_INPUT
        if errors:
            return EXIT_FAILED
        return EXIT_OK

    @property
    def ok(self) -> bool:
        return self.exit_code == EXIT_OK

    def counts(self) -> dict[Severity, int]:
        return {s: sum(1 for f in self.findings if f.severity is s) for s in Severity}


def skipped(groups: Iterable[Group], reason: str) -> dict[Group, str]:
    return dict.fromkeys(groups, reason)
