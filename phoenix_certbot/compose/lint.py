"""`lint_compose`: pure checks of stack files against Swarm's rules and the manifest.

Data in, findings out: no Docker, no file system. Each rule is a small function in
RULES; `context.Rule` lists every finding id and RULE_SEVERITY its severity.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from phoenix_certbot.compose import rules_deploy, rules_objects, rules_ports
from phoenix_certbot.compose.context import RULE_SEVERITY, LintContext, Rule
from phoenix_certbot.compose.model import ComposeFile
from phoenix_certbot.findings import Finding
from phoenix_certbot.manifest.model import Manifest

__all__ = ["RULES", "RULE_SEVERITY", "Rule", "lint_compose"]

RuleCheck = Callable[[LintContext], Iterable[Finding]]

RULES: tuple[RuleCheck, ...] = (
    rules_deploy.deploy_keys,  # ports-under-deploy, deploy-unknown-key
    rules_deploy.update_orders,  # deploy-order-invalid
    rules_ports.verify_ports,  # verify-port-unpublished, verify-port-target, host-port-unpinned
    rules_deploy.host_mode,  # host-port-start-first, host-port-replicas
    rules_ports.host_ip_ignored,  # port-host-ip-ignored
    rules_ports.port_conflicts,  # port-conflict
    rules_ports.invalid_ports,  # port-invalid
    rules_deploy.portainer_database,  # portainer-replicas, portainer-start-first
    rules_objects.portainer_ssl_args,  # portainer-ssl-args
    rules_objects.fixed_object_names,  # fixed-object-name
    rules_objects.private_key_configs,  # private-key-config
    rules_objects.unset_variables,  # variable-unset
)


def lint_compose(
    stacks: Sequence[ComposeFile], manifest: Manifest | None, stack_name: str | None
) -> list[Finding]:
    """Findings for `stacks` (each one `docker stack deploy` invocation's files).

    Manifest services are matched to compose services as `<stack_name>_<service>`, or by
    their `_<service>` suffix when `stack_name` is None. Without a manifest, the checks
    that need one are skipped. Sorted by file, line and id.
    """
    context = LintContext.build(stacks, manifest, stack_name)
    findings = {finding for rule in RULES for finding in rule(context)}
    return sorted(findings, key=lambda f: (f.file or "", f.line or 0, f.id, f.message))
