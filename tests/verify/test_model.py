"""The report: exit-code precedence and the JSON contract."""

from __future__ import annotations

import json

import pytest

from phoenix_certbot.findings import Finding, Severity
from phoenix_certbot.verify.model import Checked, Group, VerifyReport
from phoenix_certbot.verify.render import report_json


def _f(finding_id: str, severity: Severity = Severity.ERROR) -> Finding:
    return Finding(finding_id, severity, "message", "fix")


COMPOSE_ERROR = _f("compose.ports-under-deploy")
CERT_ERROR = _f("cert.expired")
MANIFEST_ERROR = _f("manifest.invalid")
LIVE_ERROR = _f("live.wrong-cert")
FILE_WARNING = _f("cert.expiring", Severity.WARNING)
LIVE_WARNING = _f("live.converging", Severity.WARNING)
INFO = _f("manifest.no-verify", Severity.INFO)


@pytest.mark.parametrize(
    ("findings", "unreachable", "code"),
    [
        ((), False, 0),
        ((FILE_WARNING, LIVE_WARNING, INFO), False, 0),
        ((LIVE_ERROR,), False, 1),
        ((LIVE_ERROR, FILE_WARNING), False, 1),
        ((COMPOSE_ERROR,), False, 2),
        ((CERT_ERROR, LIVE_ERROR), False, 2),
        ((LIVE_ERROR, MANIFEST_ERROR), False, 2),
        ((), True, 3),
        ((COMPOSE_ERROR, LIVE_ERROR), True, 3),
    ],
)
def test_exit_code_precedence(findings: tuple[Finding, ...], unreachable: bool, code: int) -> None:
    report = VerifyReport(findings, Checked(), docker_unreachable=unreachable)
    assert report.exit_code == code
    assert report.ok is (code == 0)


def test_json_shape_is_the_contract() -> None:
    finding = Finding(
        "compose.ports-under-deploy",
        Severity.ERROR,
        "ports under deploy",
        "move them",
        file="stack.yml",
        line=38,
        service="portainer_portainer",
        certificate="portainer",
    )
    checked = Checked(
        compose_files=1,
        certificates=2,
        services=3,
        urls=4,
        nodes=5,
        skipped={Group.NODES: "no host-mode port"},
    )
    document = json.loads(json.dumps(report_json(VerifyReport((finding,), checked))))
    assert list(document) == ["ok", "findings", "checked"]
    assert document["ok"] is False
    assert document["findings"] == [
        {
            "id": "compose.ports-under-deploy",
            "severity": "error",
            "message": "ports under deploy",
            "fix": "move them",
            "file": "stack.yml",
            "line": 38,
            "service": "portainer_portainer",
            "certificate": "portainer",
        }
    ]
    assert document["checked"] == {
        "compose_files": 1,
        "certificates": 2,
        "services": 3,
        "urls": 4,
        "nodes": 5,
        "agents": 0,
        "swarm_nodes": 0,
        "skipped": {"nodes": "no host-mode port"},
    }


def test_json_of_a_clean_run() -> None:
    document = report_json(VerifyReport((), Checked()))
    assert document["ok"] is True
    assert document["findings"] == []
    assert set(document["checked"]) == {
        "compose_files",
        "certificates",
        "services",
        "urls",
        "nodes",
        "agents",
        "swarm_nodes",
        "skipped",
    }
