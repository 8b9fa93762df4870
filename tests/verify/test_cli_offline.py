"""`phoenix-cert verify --offline` through the real command line (CliRunner)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from phoenix_certbot.cli.main import cli
from phoenix_certbot.manifest.model import Source
from phoenix_certbot.naming import versioned_name
from tests.support import pki
from tests.verify import builders as b

EXAMPLE_SANS = ("portainer.internal.thinkheads.ai", "10.0.0.111")
STACK_ENV = {
    "PORTAINER_SSLCERT": "portainer.sslcert_0123456789ab",
    "PORTAINER_SSLKEY": "portainer.sslkey_0123456789ab",
}


@pytest.fixture
def example_manifest(tmp_path: Path) -> Path:
    """The shipped example manifest, its lineage pointed at a fresh test lineage."""
    _, live = b.lineage(tmp_path, sans=EXAMPLE_SANS)
    return b.example_manifest_copy(tmp_path / "manifest.json", live, tmp_path / "state")


def _verify(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["verify", *args], env=env, catch_exceptions=False)


def test_shipped_stack_and_manifest_are_clean(example_manifest: Path) -> None:
    result = _verify(
        "--offline",
        "--manifest",
        str(example_manifest),
        "--compose",
        str(b.PORTAINER_STACK),
        env=STACK_ENV,
    )
    assert result.exit_code == 0, result.output
    assert "error:" not in result.output
    assert result.output.splitlines()[-1].startswith("verify ok (exit 0)")


def test_shipped_stack_json(example_manifest: Path) -> None:
    result = _verify(
        "--offline",
        "--json",
        "--manifest",
        str(example_manifest),
        "--compose",
        str(b.PORTAINER_STACK),
        "--stack",
        "prod_portainer_service",
        env=STACK_ENV,
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["ok"] is True
    assert [f for f in document["findings"] if f["severity"] == "error"] == []
    assert document["checked"] == {
        "compose_files": 1,
        "certificates": 1,
        "services": 0,
        "urls": 0,
        "nodes": 0,
        "agents": 0,
        "swarm_nodes": 0,
        "skipped": dict.fromkeys(("services", "urls", "nodes", "portainer", "swarm"), "--offline"),
    }


def test_ports_under_deploy_is_exit_2_with_its_line(example_manifest: Path) -> None:
    result = _verify(
        "--offline",
        "--json",
        "--manifest",
        str(example_manifest),
        "--compose",
        str(b.BROKEN_STACK),
        env=STACK_ENV,
    )
    assert result.exit_code == 2, result.output
    findings = json.loads(result.stdout)["findings"]
    under_deploy = [f for f in findings if f["id"] == "compose.ports-under-deploy"]
    assert len(under_deploy) == 1
    assert under_deploy[0]["file"] == str(b.BROKEN_STACK)
    assert under_deploy[0]["line"] == 38
    assert under_deploy[0]["severity"] == "error"
    assert under_deploy[0]["service"] == "portainer"  # no --stack: the compose name


def test_ports_under_deploy_text(example_manifest: Path) -> None:
    result = _verify(
        "--offline", "--manifest", str(example_manifest), "--compose", str(b.BROKEN_STACK)
    )
    assert result.exit_code == 2
    assert f"error: {b.BROKEN_STACK}:38: [compose.ports-under-deploy]" in result.output
    assert "    fix: move to service level" in result.output


def test_certificate_problems_are_exit_2(tmp_path: Path) -> None:
    soon = pki.utcnow() + b.days(1)
    _, live = b.lineage(tmp_path, sans=EXAMPLE_SANS, not_after=soon)
    manifest = b.example_manifest_copy(tmp_path / "m.json", live, tmp_path / "state")
    result = _verify("--offline", "--json", "--manifest", str(manifest))
    assert result.exit_code == 2
    (finding,) = json.loads(result.stdout)["findings"]
    assert (finding["id"], finding["severity"], finding["certificate"]) == (
        "cert.expiring",
        "error",
        "portainer",
    )


def test_warn_days_option(tmp_path: Path) -> None:
    _, live = b.lineage(tmp_path, sans=EXAMPLE_SANS, not_after=pki.utcnow() + b.days(20))
    manifest = b.example_manifest_copy(tmp_path / "m.json", live, tmp_path / "state")
    assert _verify("--offline", "--manifest", str(manifest)).exit_code == 0
    result = _verify("--offline", "--json", "--warn-days", "30", "--manifest", str(manifest))
    assert result.exit_code == 0
    assert [f["id"] for f in json.loads(result.stdout)["findings"]] == ["cert.expiring"]


def test_malformed_manifest_is_exit_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "m.json"
    bad.write_text("{ not json")
    result = _verify("--offline", "--manifest", str(bad))
    assert result.exit_code == 2
    first = result.output.splitlines()[0]
    assert first.startswith(f"error: {bad}: [manifest.invalid] $: not valid JSON")


def test_unreadable_compose_file_is_exit_2(example_manifest: Path, tmp_path: Path) -> None:
    broken = tmp_path / "stack.yml"
    broken.write_text("services:\n  a: [\n")
    result = _verify(
        "--offline", "--json", "--manifest", str(example_manifest), "--compose", str(broken)
    )
    assert result.exit_code == 2
    (finding,) = json.loads(result.stdout)["findings"]
    assert finding["id"] == "compose.invalid"
    assert finding["file"] == str(broken)
    assert finding["line"] is not None


def test_help_lists_the_options() -> None:
    result = _verify("--help")
    for option in (
        "--manifest",
        "--compose",
        "--env-file",
        "--stack",
        "--offline",
        "--json",
        "--timeout",
        "--warn-days",
    ):
        assert option in result.output


def _current_names(manifest: Path) -> dict[str, str]:
    """What `phoenix-cert stack-env` would print for the example manifest."""
    material = b.material_of(b.load(manifest))
    return {
        "PORTAINER_SSLCERT": versioned_name(
            "portainer.sslcert", material.payload_sha256(Source.FULLCHAIN)
        ),
        "PORTAINER_SSLKEY": versioned_name(
            "portainer.sslkey", material.payload_sha256(Source.PRIVKEY)
        ),
    }


def test_current_stack_names_give_no_finding_at_all(example_manifest: Path) -> None:
    result = _verify(
        "--offline",
        "--json",
        "--manifest",
        str(example_manifest),
        "--compose",
        str(b.PORTAINER_STACK),
        env=_current_names(example_manifest),
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout)["findings"] == []


def test_stale_stack_names_are_a_warning(example_manifest: Path, tmp_path: Path) -> None:
    names = _current_names(example_manifest)
    env_file = tmp_path / "stack.env"
    env_file.write_text(
        f"PORTAINER_SSLCERT={names['PORTAINER_SSLCERT']}\nPORTAINER_SSLKEY=portainer.sslkey\n"
    )
    result = _verify(
        "--offline",
        "--json",
        "--manifest",
        str(example_manifest),
        "--compose",
        str(b.PORTAINER_STACK),
        "--env-file",
        str(env_file),
    )
    assert result.exit_code == 0
    (finding,) = json.loads(result.stdout)["findings"]
    assert (finding["id"], finding["severity"], finding["file"]) == (
        "compose.stale-object-name",
        "warning",
        str(b.PORTAINER_STACK),
    )
    lines = b.PORTAINER_STACK.read_text().splitlines()
    assert "${PORTAINER_SSLKEY}" in lines[finding["line"] - 1]
    assert names["PORTAINER_SSLKEY"] in finding["fix"]
