"""What every compose lint rule sees: the services, and how the manifest binds them.

A manifest names Swarm services (`<stack>_<service>`). With a stack name we match that
exactly; without one, a manifest service matches the compose service whose name is its
`_<service>` suffix, and only when exactly one compose service fits, so an ambiguous name
is left unchecked rather than checked against the wrong service.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

from phoenix_certbot.compose.model import ComposeFile, ComposeService
from phoenix_certbot.findings import Finding, Severity
from phoenix_certbot.manifest.model import CertificateEntry, Manifest, ServiceBinding

_DEFAULT_PORTS = {"https": 443, "http": 80}


class Rule(str, Enum):
    """Every finding id of the compose lint, with its severity in RULE_SEVERITY."""

    DEPLOY_PORTS = "compose.ports-under-deploy"
    DEPLOY_UNKNOWN_KEY = "compose.deploy-unknown-key"
    DEPLOY_ORDER_INVALID = "compose.deploy-order-invalid"
    VERIFY_PORT_UNPUBLISHED = "compose.verify-port-unpublished"
    VERIFY_PORT_TARGET = "compose.verify-port-target"
    HOST_PORT_START_FIRST = "compose.host-port-start-first"
    HOST_PORT_REPLICAS = "compose.host-port-replicas"
    HOST_PORT_UNPINNED = "compose.host-port-unpinned"
    PORT_HOST_IP_IGNORED = "compose.port-host-ip-ignored"
    PORT_CONFLICT = "compose.port-conflict"
    PORT_INVALID = "compose.port-invalid"
    PORTAINER_REPLICAS = "compose.portainer-replicas"
    PORTAINER_START_FIRST = "compose.portainer-start-first"
    PORTAINER_SSL_ARGS = "compose.portainer-ssl-args"
    FIXED_OBJECT_NAME = "compose.fixed-object-name"
    PRIVATE_KEY_CONFIG = "compose.private-key-config"
    VARIABLE_UNSET = "compose.variable-unset"


_E, _W = Severity.ERROR, Severity.WARNING
RULE_SEVERITY: dict[Rule, Severity] = {
    Rule.DEPLOY_PORTS: _E,
    Rule.DEPLOY_UNKNOWN_KEY: _E,
    Rule.DEPLOY_ORDER_INVALID: _E,
    Rule.VERIFY_PORT_UNPUBLISHED: _E,
    Rule.VERIFY_PORT_TARGET: _E,
    Rule.HOST_PORT_START_FIRST: _E,
    Rule.HOST_PORT_REPLICAS: _E,
    Rule.HOST_PORT_UNPINNED: _W,
    Rule.PORT_HOST_IP_IGNORED: _W,
    Rule.PORT_CONFLICT: _E,
    Rule.PORT_INVALID: _E,
    Rule.PORTAINER_REPLICAS: _E,
    Rule.PORTAINER_START_FIRST: _E,
    Rule.PORTAINER_SSL_ARGS: _E,
    Rule.FIXED_OBJECT_NAME: _W,
    Rule.PRIVATE_KEY_CONFIG: _E,
    Rule.VARIABLE_UNSET: _W,
}


# Findings that mean `docker stack deploy` refuses the file itself (the Compose format), as
# opposed to a file it accepts that then fails or misbehaves in Swarm. The engine's own
# parser (`compose.engine`) must refuse exactly the corpus files that have one of these.
FORMAT_RULES = frozenset(
    {Rule.DEPLOY_PORTS, Rule.DEPLOY_UNKNOWN_KEY, Rule.DEPLOY_ORDER_INVALID, Rule.PORT_INVALID}
)


@dataclass(frozen=True)
class Bound:
    """A compose service that a manifest entry rotates certificates into."""

    service: ComposeService
    entry: CertificateEntry
    binding: ServiceBinding


@dataclass(frozen=True)
class VerifyUrl:
    url: str
    host: str
    port: int
    scheme: str


@dataclass(frozen=True)
class LintContext:
    stacks: tuple[ComposeFile, ...]
    services: tuple[ComposeService, ...]
    manifest: Manifest | None
    stack_name: str | None
    bound: tuple[Bound, ...]

    @classmethod
    def build(
        cls, stacks: Sequence[ComposeFile], manifest: Manifest | None, stack_name: str | None
    ) -> LintContext:
        services = tuple(s for stack in stacks for s in stack.services)
        bound = _match(services, manifest, stack_name) if manifest else ()
        return cls(tuple(stacks), services, manifest, stack_name, bound)

    # Services are compared by identity: rules must use `self.services` (the objects the
    # bindings refer to), not re-read `ComposeFile.services`.
    def bindings_of(self, service: ComposeService) -> tuple[Bound, ...]:
        return tuple(b for b in self.bound if b.service is service)

    def services_of(self, entry: CertificateEntry) -> tuple[ComposeService, ...]:
        found: list[ComposeService] = []
        for b in self.bound:
            if b.entry is entry and not any(s is b.service for s in found):
                found.append(b.service)
        return tuple(found)

    def swarm_name(self, service: ComposeService) -> str:
        return f"{self.stack_name}_{service.name}" if self.stack_name else service.name

    def finding(
        self,
        rule: Rule,
        where: tuple[str, int] | None,
        message: str,
        fix: str,
        *,
        service: ComposeService | None = None,
        certificate: str | None = None,
    ) -> Finding:
        return Finding(
            id=rule.value,
            severity=RULE_SEVERITY[rule],
            message=message,
            fix=fix,
            file=where[0] if where else None,
            line=where[1] if where else None,
            service=self.swarm_name(service) if service else None,
            certificate=certificate,
        )


def verify_urls(entry: CertificateEntry) -> tuple[VerifyUrl, ...]:
    """The entry's verify URLs with host and port (default 443/80); unparsable ones dropped."""
    urls: list[VerifyUrl] = []
    for target in entry.verify:
        try:
            parts = urlsplit(target.url)
            port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
        except ValueError:
            continue
        if parts.hostname and port:
            urls.append(VerifyUrl(target.url, parts.hostname, port, parts.scheme))
    return tuple(urls)


def _match(
    services: tuple[ComposeService, ...], manifest: Manifest, stack_name: str | None
) -> tuple[Bound, ...]:
    bound: list[Bound] = []
    for entry in manifest.certificates:
        for binding in entry.services:
            if stack_name:
                fits = [s for s in services if f"{stack_name}_{s.name}" == binding.service]
            else:
                fits = [s for s in services if binding.service.endswith(f"_{s.name}")]
            if len(fits) == 1:
                bound.append(Bound(fits[0], entry, binding))
    return tuple(bound)
