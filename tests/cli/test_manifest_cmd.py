from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from phoenix_certbot.cli.main import cli
from tests.support import pki

REPO = Path(__file__).resolve().parents[2]


def manifest_for(tmp_path: Path, lineage_dir: Path) -> Path:
    data = json.loads((REPO / "manifests" / "certificate-manifest.json").read_text())
    data["settings"]["certbot_live_dir"] = str(lineage_dir)
    data["certificates"][0]["lineage"] = str(lineage_dir / "portainer")
    path = tmp_path / "m.json"
    path.write_text(json.dumps(data))
    path.chmod(0o600)
    return path


def test_check_validates_and_inspects_every_certificate(tmp_path: Path) -> None:
    ca = pki.make_ca()
    leaf = pki.issue(["portainer.internal.thinkheads.ai", "10.0.0.111"], ca)
    files = pki.write_lineage(tmp_path / "le", "portainer", leaf, ca)
    path = manifest_for(tmp_path, files.live.parent)
    result = CliRunner().invoke(cli, ["manifest", "check", "--manifest", str(path)])
    assert result.exit_code == 0, result.output
    assert f"sha256 {leaf.sha256[:16]}" in result.output
    doc = json.loads(
        CliRunner().invoke(cli, ["manifest", "check", "--manifest", str(path), "--json"]).output
    )
    assert doc["ok"] is True and doc["certificates"][0]["certificate"]["sha256"] == leaf.sha256


def test_check_reports_a_missing_lineage_with_exit_2(tmp_path: Path) -> None:
    path = manifest_for(tmp_path, tmp_path / "nowhere")
    result = CliRunner().invoke(cli, ["manifest", "check", "--manifest", str(path)])
    assert result.exit_code == 2
    assert str(tmp_path / "nowhere" / "portainer") in result.output
    assert (
        CliRunner()
        .invoke(cli, ["manifest", "check", "--manifest", str(path), "--no-certs"])
        .exit_code
        == 0
    )


def test_check_reports_a_san_not_covered(tmp_path: Path) -> None:
    ca = pki.make_ca()
    leaf = pki.issue(["portainer.internal.thinkheads.ai"], ca)  # the IP SAN is missing
    files = pki.write_lineage(tmp_path / "le", "portainer", leaf, ca)
    result = CliRunner().invoke(
        cli, ["manifest", "check", "--manifest", str(manifest_for(tmp_path, files.live.parent))]
    )
    assert result.exit_code == 2
    assert "10.0.0.111" in result.output and "cert1.pem" in result.output
    assert "PRIVATE KEY" not in result.output


def test_malformed_manifest_is_one_line_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text('{"version": 2, "certificates": [{"name": "x"}]}')
    path.chmod(0o600)
    result = CliRunner().invoke(cli, ["manifest", "check", "--manifest", str(path)])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0
    assert f"{path}: $.certificates[0].sans: required field is missing" in result.output


def test_migrate_prints_v2_and_notes(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "manifest",
            "migrate",
            "--manifest",
            str(REPO / "manifests/certificate-manifest.legacy.json"),
        ],
    )
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["certificates"][0]["services"] == [{"service": "prod_portainer_service_portainer"}]
    again = CliRunner().invoke(
        cli,
        ["manifest", "migrate", "--manifest", str(REPO / "manifests/certificate-manifest.json")],
    )
    assert again.exit_code == 2 and "already version 2" in again.output


def test_manifest_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOENIX_CERT_MANIFEST", str(REPO / "manifests/certificate-manifest.json"))
    result = CliRunner().invoke(cli, ["manifest", "check", "--no-certs"])
    assert result.exit_code == 0 and "certificate-manifest.json: version 2" in result.output
