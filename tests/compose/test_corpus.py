"""Every corpus file linted against a manifest built here, asserting EXACTLY its findings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from phoenix_certbot.compose import lint_compose, load_compose
from phoenix_certbot.findings import Finding
from phoenix_certbot.manifest.model import Manifest
from tests.compose.builders import (
    CORPUS,
    PORTAINER_ENV,
    PORTAINER_STACK,
    portainer_manifest,
    web_manifest,
)

E, W = "error", "warning"


@dataclass(frozen=True)
class Case:
    file: Path
    expected: list[tuple[str, str, int]]  # (id, severity, line)
    manifest: Manifest | None = None
    stack: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)


def portainer_case(
    file: Path, expected: list[tuple[str, str, int]], env: Mapping[str, str] | None = None
) -> Case:
    """Linted as stack `portainer` against the `portainer` manifest entry."""
    return Case(file, expected, portainer_manifest(), "portainer", env or {})


CASES = {
    "broken-ports-under-deploy": portainer_case(
        CORPUS / "broken-ports-under-deploy.yml",
        [
            # The service publishes nothing, so the verify URL cannot reach it ...
            ("compose.verify-port-unpublished", E, 20),
            # ... because its ports sit under deploy.
            ("compose.ports-under-deploy", E, 38),
        ],
        env=PORTAINER_ENV,
    ),
    "deploy-unknown-key": Case(
        CORPUS / "deploy-unknown-key.yml",
        [("compose.deploy-unknown-key", E, 8), ("compose.deploy-unknown-key", E, 9)],
    ),
    "deploy-order-invalid": Case(
        CORPUS / "deploy-order-invalid.yml", [("compose.deploy-order-invalid", E, 9)]
    ),
    "verify-port-unpublished": portainer_case(
        CORPUS / "verify-port-unpublished.yml", [("compose.verify-port-unpublished", E, 7)]
    ),
    "verify-port-target": portainer_case(
        CORPUS / "verify-port-target.yml", [("compose.verify-port-target", E, 14)]
    ),
    "verify-port-target-label": Case(
        CORPUS / "verify-port-target-label.yml",
        [("compose.verify-port-target", E, 7)],
        manifest=web_manifest(),
        stack="web",
    ),
    "host-port-start-first": Case(
        CORPUS / "host-port-start-first.yml", [("compose.host-port-start-first", E, 14)]
    ),
    "host-port-replicas": Case(
        CORPUS / "host-port-replicas.yml", [("compose.host-port-replicas", E, 12)]
    ),
    "host-port-unpinned": portainer_case(
        CORPUS / "host-port-unpinned.yml", [("compose.host-port-unpinned", W, 8)]
    ),
    "port-host-ip-ignored": portainer_case(
        CORPUS / "port-host-ip-ignored.yml",
        [("compose.port-host-ip-ignored", W, 8), ("compose.port-host-ip-ignored", W, 10)],
    ),
    "port-conflict": Case(CORPUS / "port-conflict.yml", [("compose.port-conflict", E, 14)]),
    "port-invalid": Case(
        CORPUS / "port-invalid.yml",
        [("compose.port-invalid", E, line) for line in (7, 8, 9, 10, 12)],
    ),
    "portainer-replicas": portainer_case(
        CORPUS / "portainer-replicas.yml",
        [("compose.portainer-replicas", E, 10), ("compose.portainer-replicas", E, 14)],
    ),
    "portainer-start-first": portainer_case(
        CORPUS / "portainer-start-first.yml", [("compose.portainer-start-first", E, 11)]
    ),
    "portainer-ssl-args": portainer_case(
        CORPUS / "portainer-ssl-args.yml",
        [("compose.portainer-ssl-args", E, 6), ("compose.portainer-ssl-args", E, 6)],
    ),
    "fixed-object-name": portainer_case(
        CORPUS / "fixed-object-name.yml",
        [("compose.fixed-object-name", W, 12), ("compose.fixed-object-name", W, 13)],
    ),
    "private-key-config": Case(
        CORPUS / "private-key-config.yml",
        [("compose.private-key-config", E, line) for line in (10, 14, 18)],
    ),
    # Clean files.
    "shipped-portainer-stack": portainer_case(PORTAINER_STACK, [], env=PORTAINER_ENV),
    "shipped-portainer-stack-no-stack-name": Case(
        PORTAINER_STACK, [], manifest=portainer_manifest(), env=PORTAINER_ENV
    ),
    "clean-ingress-short": portainer_case(
        CORPUS / "clean-ingress-short.yml", [], env=PORTAINER_ENV
    ),
    "clean-global-host": Case(
        CORPUS / "clean-global-host.yml",
        [],
        manifest=web_manifest("edge_edge", "https://10.0.0.31/"),
        stack="edge",
        env={"EDGE_FULLCHAIN": "edge.fullchain_0123456789ab", "EDGE_PRIVKEY": "k"},
    ),
    "clean-anchors": Case(CORPUS / "clean-anchors.yml", [], manifest=web_manifest(), stack="web"),
    "anchors-overridden-by-env": Case(
        CORPUS / "clean-anchors.yml",
        # The same file with the environment asking for two replicas and another port:
        # now host mode collides, and the verify URL's 443 is no longer published.
        [("compose.host-port-replicas", E, 4), ("compose.verify-port-unpublished", E, 10)],
        manifest=web_manifest(),
        stack="web",
        env={"WEB_REPLICAS": "2", "WEB_PORT": "8443"},
    ),
}


def _lint(case: Case) -> list[Finding]:
    stack = load_compose([case.file], environ=case.env)
    return lint_compose([stack], case.manifest, case.stack)


@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus(name: str) -> None:
    case = CASES[name]
    findings = _lint(case)
    assert [(f.id, f.severity.value, f.line) for f in findings] == case.expected
    assert {f.file for f in findings} <= {str(case.file)}
    for finding in findings:
        assert "\n" not in finding.message
        assert "\n" not in finding.fix


def test_every_corpus_file_is_covered() -> None:
    covered = {case.file.name for case in CASES.values()}
    assert {p.name for p in CORPUS.glob("*.yml")} <= covered


def test_shipped_stack_without_variables_warns_about_them_only() -> None:
    stack = load_compose([PORTAINER_STACK], environ={})
    findings = lint_compose([stack], portainer_manifest(), "portainer")
    assert [(f.id, f.severity.value) for f in findings] == [("compose.variable-unset", W)] * 2
    assert [f.message.split()[1] for f in findings] == ["PORTAINER_SSLCERT", "PORTAINER_SSLKEY"]


def test_broken_stack_fix_shows_the_service_level_block() -> None:
    findings = _lint(CASES["broken-ports-under-deploy"])
    moved = next(f for f in findings if f.id == "compose.ports-under-deploy")
    assert moved.fix == (
        "move to service level: ports: ["
        "{target: 9443, published: 9443, protocol: tcp, mode: host}, "
        "{target: 8000, published: 8000, protocol: tcp, mode: host}]"
    )
    assert "Additional property ports is not allowed" in moved.message
    assert (moved.service, moved.file) == (
        "portainer_portainer",
        str(CASES["broken-ports-under-deploy"].file),
    )
    unpublished = next(f for f in findings if f.id == "compose.verify-port-unpublished")
    assert unpublished.certificate == "portainer"
    assert "https://10.0.0.111:9443/api/system/status" in unpublished.message


def test_fixed_name_fix_names_the_stack_env_variable() -> None:
    findings = _lint(CASES["fixed-object-name"])
    assert [f.fix for f in findings] == [
        "name: ${PORTAINER_SSLCERT}, filled by `phoenix-cert stack-env`",
        "name: ${PORTAINER_SSLKEY}, filled by `phoenix-cert stack-env`",
    ]
