"""Cross-checks against the manifest: service matching, several stacks, manifest-side rules."""

from __future__ import annotations

from phoenix_certbot.compose import RULE_SEVERITY, RULES, Rule, lint_compose, parse_compose
from phoenix_certbot.compose.model import ComposeFile
from phoenix_certbot.findings import Finding, Severity
from phoenix_certbot.manifest.model import ServiceBinding, Source
from tests.compose.builders import (
    PORTAINER_URL,
    config,
    entry,
    manifest,
    portainer_binding,
    portainer_manifest,
    secret,
)

UNPUBLISHED = (
    "services:\n"
    "  portainer:\n"
    "    image: portainer/portainer-ce:2.19.4\n"
    "    command: --sslcert /run/secrets/portainer.sslcert --sslkey /run/secrets/portainer.sslkey\n"
)


def _stack(text: str, file: str = "stack.yml") -> ComposeFile:
    return parse_compose(text, file, {})


def _ids(findings: list[Finding]) -> list[tuple[str, str | None, int | None]]:
    return [(f.id, f.file, f.line) for f in findings]


def test_every_rule_has_a_severity_and_a_prefix() -> None:
    assert set(RULE_SEVERITY) == set(Rule)
    assert all(rule.value.startswith("compose.") for rule in Rule)
    assert len(RULES) == len(set(RULES))


def test_without_stack_name_the_suffix_matches() -> None:
    findings = lint_compose([_stack(UNPUBLISHED)], portainer_manifest(), None)
    assert _ids(findings) == [("compose.verify-port-unpublished", "stack.yml", 2)]
    assert findings[0].service == "portainer"


def test_stack_name_must_match_exactly() -> None:
    assert lint_compose([_stack(UNPUBLISHED)], portainer_manifest(), "other") == []
    assert lint_compose([_stack(UNPUBLISHED)], portainer_manifest("prod_portainer"), "prod") != []


def test_ambiguous_suffix_is_left_unchecked() -> None:
    # `x_agent_portainer` ends with `_portainer` and with `_agent_portainer`.
    text = UNPUBLISHED + "  agent_portainer:\n    image: portainer/portainer-ce:2.19.4\n"
    assert lint_compose([_stack(text)], portainer_manifest("x_agent_portainer"), None) == []
    # Two stacks each with a `portainer` service: which one the manifest means is unknown.
    two = [_stack(UNPUBLISHED, "a.yml"), _stack(UNPUBLISHED, "b.yml")]
    assert lint_compose(two, portainer_manifest(), None) == []


def test_without_manifest_the_cross_checks_are_skipped() -> None:
    assert lint_compose([_stack(UNPUBLISHED)], None, "portainer") == []


def test_url_goes_to_the_bound_service_that_publishes_its_port() -> None:
    text = (
        UNPUBLISHED
        + "    ports: ['9443:9443']\n"
        + "  proxy:\n"
        + "    image: traefik:v2.11\n"
        + "    ports: ['443:443']\n"
    )
    both = manifest(
        entry(
            "portainer",
            (portainer_binding(), ServiceBinding("portainer_proxy")),
            (PORTAINER_URL, "https://portainer.example.com/"),
        )
    )
    # 9443 reaches portainer, 443 reaches proxy: nothing to report.
    assert lint_compose([_stack(text)], both, "portainer") == []
    # A URL on a port neither publishes is reported on each bound service.
    other = manifest(
        entry(
            "portainer",
            (portainer_binding(), ServiceBinding("portainer_proxy")),
            ("https://10.0.0.111:8443/",),
        )
    )
    assert _ids(lint_compose([_stack(text)], other, "portainer")) == [
        ("compose.verify-port-unpublished", "stack.yml", 5),
        ("compose.verify-port-unpublished", "stack.yml", 8),
    ]


def test_verify_url_default_port_is_443() -> None:
    text = UNPUBLISHED + "    ports: ['9443:9443']\n"
    m = portainer_manifest(url="https://portainer.example.com/api/system/status")
    (finding,) = lint_compose([_stack(text)], m, "portainer")
    assert finding.id == "compose.verify-port-unpublished"
    assert "tcp port 443" in finding.message
    # Portainer listens on 9443: the suggested block leads 443 there.
    assert finding.fix == (
        "publish it at service level: ports: "
        "[{target: 9443, published: 443, protocol: tcp, mode: host}]"
    )


def test_port_conflict_across_stacks() -> None:
    portainer = _stack(UNPUBLISHED + "    ports: ['9443:9443']\n", "portainer.yml")
    other = _stack("services:\n  admin:\n    image: nginx\n    ports: ['9443:443']\n", "other.yml")
    findings = lint_compose([portainer, other], None, None)
    assert _ids(findings) == [("compose.port-conflict", "other.yml", 4)]
    assert "service portainer (portainer.yml:5)" in findings[0].message


def test_host_mode_on_a_global_service_shares_no_port_with_host_mode_elsewhere() -> None:
    text = (
        "services:\n"
        "  a:\n"
        "    image: nginx\n"
        "    ports: [{target: 80, published: 80, mode: host}]\n"
        "    deploy: {mode: global, placement: {constraints: [node.role == worker]}}\n"
        "  b:\n"
        "    image: nginx\n"
        "    ports: [{target: 80, published: 80, mode: host}]\n"
        "    deploy: {placement: {constraints: [node.hostname == w1]}}\n"
    )
    assert _ids(lint_compose([_stack(text)], None, None)) == [
        ("compose.port-conflict", "stack.yml", 8)
    ]


def test_private_key_config_from_the_manifest() -> None:
    text = (
        "services:\n"
        "  web:\n"
        "    image: nginx\n"
        "    configs: [site_tls]\n"
        "configs:\n"
        "  site_tls:\n"
        "    name: ${SITE_TLS}\n"
        "    external: true\n"
    )
    binding = ServiceBinding(
        "site_web",
        configs=(
            config("site_tls", Source.PRIVKEY, "/etc/nginx/tls"),
            config("web.tlskey", Source.PRIVKEY, "/etc/nginx/other"),
            config("web.chain", Source.FULLCHAIN, "/etc/nginx/chain.pem"),
        ),
    )
    stack = parse_compose(text, "stack.yml", {"SITE_TLS": "site_tls_0123456789ab"})
    findings = lint_compose([stack], manifest(entry("site", (binding,))), "site")
    # One on the stack's config that carries it, one on the service for the config the
    # stack does not declare.
    assert _ids(findings) == [
        ("compose.private-key-config", "stack.yml", 2),
        ("compose.private-key-config", "stack.yml", 6),
    ]
    assert all(f.certificate == "site" and f.service == "site_web" for f in findings)


def test_ssl_args_accept_absolute_targets_and_configs() -> None:
    text = (
        "services:\n"
        "  portainer:\n"
        "    image: portainer/portainer-ee:2.19.4\n"
        "    command: [--sslcert=/certs/fullchain.pem, --sslkey, /run/secrets/key]\n"
        "    ports: ['9443:9443']\n"
    )
    binding = ServiceBinding(
        "portainer_portainer",
        secrets=(secret("key", Source.PRIVKEY),),
        configs=(config("cert", Source.FULLCHAIN, "/certs/fullchain.pem"),),
    )
    m = manifest(entry("portainer", (binding,), (PORTAINER_URL,)))
    assert lint_compose([_stack(text)], m, "portainer") == []


def test_findings_are_sorted_and_unique() -> None:
    text = (
        "services:\n"
        "  z:\n"
        "    image: nginx\n"
        "    ports: ['127.0.0.1:8000-8003:8000-8003']\n"
        "    deploy: {ports: ['1:1'], foo: 1}\n"
        "  a:\n"
        "    image: nginx\n"
        "    ports: ['8000:80']\n"
    )
    findings = lint_compose([_stack(text), _stack(text, "again.yml")], None, None)
    keys = [(f.file, f.line, f.id) for f in findings]
    assert keys == sorted(keys)
    assert len(findings) == len(set(findings))
    assert [f.severity for f in findings if f.id == "compose.port-host-ip-ignored"] == [
        Severity.WARNING
    ] * 2
