from __future__ import annotations

import json
from pathlib import Path

import pytest

from phoenix_certbot.errors import ManifestError
from phoenix_certbot.manifest import load as manifest_load
from phoenix_certbot.manifest.legacy import forced_service
from phoenix_certbot.manifest.migrate import migrate

EXAMPLE = Path(__file__).parents[2] / "manifests" / "certificate-manifest.legacy.json"


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "legacy.json"
    path.write_text(json.dumps(data))
    path.chmod(0o600)
    return path


def entry(**extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        "common_name": "a.test",
        "sans": ["a.test"],
        "cert_path": "/ssl/a.crt",
        "key_path": "/ssl/a.key",
        "owner": "root:root",
        "permissions": "600",
    }
    base.update(extra)
    return base


def test_shipped_legacy_example_becomes_a_force_update() -> None:
    m = manifest_load.load(EXAMPLE, euid=1000)
    assert m.version == 1
    (e,) = m.certificates
    assert e.paths.cert.name.endswith(".crt") and e.paths.lineage is None
    (binding,) = e.services
    assert binding.service == "prod_portainer_service_portainer"
    assert binding.restart_only
    assert e.legacy_command is None


@pytest.mark.parametrize(
    ("command", "service"),
    [
        ("docker service update --force web", "web"),
        ("docker service update web --force --detach=false", "web"),
        ("docker service update --force stack_web -q", "stack_web"),
        ("docker restart web", None),
        ("docker service update web", None),  # without --force nothing would restart
        ("docker service update --force web; rm -rf /", None),
        ("docker service update --force $(whoami)", None),
        ("docker service update --force 'unclosed", None),
        ("docker service update --force --image evil web", None),
    ],
)
def test_forced_service_recognises_only_the_plain_form(command: str, service: str | None) -> None:
    assert forced_service(command) == service


def test_other_commands_are_kept_but_not_structured(tmp_path: Path) -> None:
    m = manifest_load.load(
        write(tmp_path, [entry(post_renewal_command="systemctl reload nginx")]), euid=0
    )
    e = m.certificates[0]
    assert e.services == ()
    assert e.legacy_command == "systemctl reload nginx"


def test_unknown_keys_are_reported_not_fatal(tmp_path: Path) -> None:
    m = manifest_load.load(write(tmp_path, [entry(colour="blue", guest_id="101")]), euid=0)
    assert m.unknown_keys == ("$[0].colour",)


def test_sans_default_to_common_name(tmp_path: Path) -> None:
    raw = entry()
    del raw["sans"]
    m = manifest_load.load(write(tmp_path, [raw]), euid=0)
    assert m.certificates[0].sans == ("a.test",)


@pytest.mark.parametrize(
    ("data", "json_path"),
    [
        ([entry(cert_path="")], "$[0].cert_path"),
        ([{"common_name": "a"}], "$[0].cert_path"),
        ([entry(sans="a.test")], "$[0].sans"),
        ([entry(post_renewal_command=5)], "$[0].post_renewal_command"),
        (["a"], "$[0]"),
        ([entry(), entry()], "$[1].common_name"),
        ([], "$"),
    ],
)
def test_legacy_errors_name_the_field(tmp_path: Path, data: object, json_path: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(ManifestError) as info:
        manifest_load.load(path, euid=0)
    assert info.value.path == json_path
    assert str(path) in str(info.value)


def test_migration_output_is_a_valid_v2_manifest(tmp_path: Path) -> None:
    data = [
        entry(post_renewal_command="docker service update --force web"),
        {**entry(common_name="b.test", post_renewal_command="systemctl reload x"), "extra": 1},
    ]
    result = migrate(manifest_load.load(write(tmp_path, data), euid=0))
    assert result.document["certificates"][0]["services"] == [{"service": "web"}]
    assert result.document["certificates"][1]["services"] == []
    assert any(
        "$[1].post_renewal_command not migrated" in n and "systemctl reload x" in n
        for n in result.notes
    )
    assert any("$[1].extra" in n for n in result.notes)
    out = tmp_path / "v2.json"
    out.write_text(json.dumps(result.document))
    out.chmod(0o600)
    again = manifest_load.load(out, euid=0)
    assert again.version == 2
    assert [e.name for e in again.certificates] == ["a.test", "b.test"]
    assert again.certificates[0].services[0].restart_only
