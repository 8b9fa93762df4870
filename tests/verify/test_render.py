"""Text output: one finding per problem with where, id, message and fix; then a summary."""

from __future__ import annotations

from phoenix_certbot.findings import Finding, Severity
from phoenix_certbot.verify.model import Checked, Group, VerifyReport
from phoenix_certbot.verify.render import finding_text, report_text


def test_compose_finding_names_file_and_line() -> None:
    finding = Finding(
        "compose.ports-under-deploy",
        Severity.ERROR,
        "'ports' under 'deploy'",
        "move to service level",
        file="stack.yml",
        line=38,
        service="portainer_portainer",
    )
    assert finding_text(finding) == (
        "error: stack.yml:38: [compose.ports-under-deploy] 'ports' under 'deploy'\n"
        "    fix: move to service level"
    )


def test_certificate_finding_names_the_entry_and_the_file() -> None:
    finding = Finding(
        "cert.expiring",
        Severity.WARNING,
        "expires in 3.0 days",
        "renew it",
        file="/etc/letsencrypt/archive/portainer/cert3.pem",
        certificate="portainer",
    )
    assert finding_text(finding).splitlines()[0] == (
        "warning: /etc/letsencrypt/archive/portainer/cert3.pem (certificate portainer): "
        "[cert.expiring] expires in 3.0 days"
    )


def test_live_finding_names_service_and_certificate() -> None:
    finding = Finding(
        "live.wrong-cert",
        Severity.ERROR,
        "serves another leaf",
        "rotate",
        service="p_portainer",
        certificate="portainer",
    )
    assert finding_text(finding).splitlines()[0] == (
        "error: service p_portainer, certificate portainer: [live.wrong-cert] serves another leaf"
    )
    bare = Finding("live.docker-unreachable", Severity.ERROR, "no Docker", "start it")
    assert finding_text(bare).splitlines()[0] == "error: [live.docker-unreachable] no Docker"


def test_summary_line() -> None:
    findings = (
        Finding("live.connect", Severity.ERROR, "m", "f"),
        Finding("cert.expiring", Severity.WARNING, "m", "f"),
        Finding("cert.expiring", Severity.WARNING, "m", "f", file="x"),
    )
    checked = Checked(compose_files=1, certificates=1, services=1, urls=2, nodes=1)
    lines = report_text(VerifyReport(findings, checked)).splitlines()
    assert len(lines) == 7
    assert lines[-1] == (
        "verify FAILED (exit 1): 1 error, 2 warnings, 0 info; checked 1 compose file, "
        "1 certificate, 1 service, 2 URLs, 1 node, 0 agents, 0 swarm nodes"
    )


def test_summary_of_an_offline_run() -> None:
    offline = dict.fromkeys((Group.SERVICES, Group.URLS, Group.NODES), "--offline")
    text = report_text(VerifyReport((), Checked(certificates=1, skipped=offline)))
    assert text == (
        "verify ok (exit 0): 0 errors, 0 warnings, 0 info; checked 0 compose files, "
        "1 certificate, 0 services, 0 URLs, 0 nodes, 0 agents, 0 swarm nodes; skipped "
        "services: --offline; urls: --offline; nodes: --offline"
    )
