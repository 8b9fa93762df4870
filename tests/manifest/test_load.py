from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from phoenix_certbot.errors import ManifestError
from phoenix_certbot.manifest import load as manifest_load
from phoenix_certbot.manifest.model import ObjectKind, PortainerSettings, Settings, Source

EXAMPLE = Path(__file__).parents[2] / "manifests" / "certificate-manifest.json"


def example() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text())
    return data


def write(tmp_path: Path, data: object, mode: int = 0o600) -> Path:
    path = tmp_path / "certificate-manifest.json"
    path.write_text(json.dumps(data))
    path.chmod(mode)
    return path


def test_shipped_example_parses_to_the_documented_values() -> None:
    m = manifest_load.load(EXAMPLE, euid=1000)
    assert m.version == 2
    assert m.settings == Settings()
    (entry,) = m.certificates
    assert entry.name == "portainer"
    assert entry.sans == ("portainer.internal.thinkheads.ai", "10.0.0.111")
    assert entry.paths.lineage == Path("/etc/letsencrypt/live/portainer")
    assert entry.paths.key == Path("/etc/letsencrypt/live/portainer/privkey.pem")
    (binding,) = entry.services
    assert binding.service == "prod_portainer_service_portainer"
    cert, key = binding.secrets
    assert (cert.kind, cert.source, cert.target, cert.mode) == (
        ObjectKind.SECRET,
        Source.FULLCHAIN,
        "portainer.sslcert",
        0o444,
    )
    assert (key.source, key.mode, key.uid, key.gid) == (Source.PRIVKEY, 0o400, "0", "0")
    assert entry.verify[0].server_name == "portainer.internal.thinkheads.ai"


def test_defaults_fill_settings_lineage_target_and_key_mode(tmp_path: Path) -> None:
    data = {
        "version": 2,
        "certificates": [
            {
                "name": "web",
                "sans": ["web.test"],
                "services": [
                    {
                        "service": "s",
                        "secrets": [{"name": "web.key", "source": "privkey"}],
                        "configs": [{"name": "web.crt", "source": "fullchain"}],
                    }
                ],
            }
        ],
    }
    m = manifest_load.load(write(tmp_path, data), euid=0)
    entry = m.certificates[0]
    assert entry.paths.lineage == Path("/etc/letsencrypt/live/web")
    secret = entry.services[0].secrets[0]
    assert (secret.target, secret.mode) == ("web.key", 0o400)
    config = entry.services[0].configs[0]
    assert (config.target, config.mode) == ("/web.crt", 0o444)
    assert entry.verify == ()


def test_explicit_paths_for_an_internal_ca(tmp_path: Path) -> None:
    data = {
        "version": 2,
        "settings": {"keep_versions": 3, "max_parallel_updates": 4, "docker_timeout_s": 2.5},
        "certificates": [
            {
                "name": "ca",
                "sans": ["a.test"],
                "cert_path": "/pki/a.crt",
                "key_path": "/pki/a.key",
                "chain_path": "/pki/chain.pem",
            }
        ],
    }
    m = manifest_load.load(write(tmp_path, data), euid=0)
    paths = m.certificates[0].paths
    assert (paths.cert, paths.key, paths.chain, paths.lineage) == (
        Path("/pki/a.crt"),
        Path("/pki/a.key"),
        Path("/pki/chain.pem"),
        None,
    )
    assert m.settings.keep_versions == 3
    assert m.settings.max_parallel_updates == 4
    assert m.settings.docker_timeout_s == 2.5


def test_portainer_settings(tmp_path: Path) -> None:
    data = example()
    data["settings"]["portainer"] = {
        "url": "https://10.0.0.111:9443",
        "token_file": "/etc/phoenix-certbot/portainer.token",
        "ca_file": "portainer-ca.pem",
    }
    portainer = manifest_load.load(write(tmp_path, data), euid=0).settings.portainer
    assert portainer == PortainerSettings(
        url="https://10.0.0.111:9443",
        token_file=Path("/etc/phoenix-certbot/portainer.token"),
        ca_file=tmp_path / "portainer-ca.pem",  # relative to the manifest's folder
    )
    assert Settings().portainer == PortainerSettings()


def _mutate(path: str, value: Any) -> dict[str, Any]:
    data = example()
    target: Any = data
    keys: list[Any] = [int(k) if k.isdigit() else k for k in path.split("/")]
    for key in keys[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return data


_DELETE = object()


@pytest.mark.parametrize(
    ("mutation", "json_path", "words"),
    [
        (("version", 3), "$.version", "expected 2"),
        (("certificates/0/name", _DELETE), "$.certificates[0].name", "required field is missing"),
        (
            ("certificates/0/services/0/secrets/0/source", "pem"),
            "$.certificates[0].services[0].secrets[0].source",
            "expected one of cert, chain, fullchain, privkey",
        ),
        (
            ("certificates/0/services/0/secrets/0/name", "bad name!"),
            "$.certificates[0].services[0].secrets[0].name",
            "does not match",
        ),
        (
            ("certificates/0/services/0/secrets/0/name", "x" * 52),
            "$.certificates[0].services[0].secrets[0].name",
            "is too long",
        ),
        (
            ("certificates/0/services/0/configs", [{"name": "k", "source": "privkey"}]),
            "$.certificates[0].services[0].configs[0].source",
            "expected one of cert, chain, fullchain",
        ),
        (("certificates/0/surprise", 1), "$.certificates[0].surprise", "unknown field"),
        (("settings/keep_versions", "2"), "$.settings.keep_versions", "expected integer"),
        (("settings/max_parallel_updates", 0), "$.settings.max_parallel_updates", "minimum"),
        (("settings/docker_timeout_s", 0), "$.settings.docker_timeout_s", "less than"),
        (
            ("certificates/0/cert_path", "/x.pem"),
            "$.certificates[0].key_path",
            "required when cert_path is given",
        ),
        (
            ("certificates/0/verify/0/url", "http://x"),
            "$.certificates[0].verify[0].url",
            "does not match",
        ),
        (("certificates", []), "$.certificates", "should be non-empty"),
        (
            ("settings/portainer", {"url": "http://10.0.0.111:9000"}),
            "$.settings.portainer.url",
            "does not match",
        ),
        (
            ("settings/portainer", {"token": "ptr_abc"}),
            "$.settings.portainer.token",
            "unknown field; expected one of: ca_file, server_name, token_file, url",
        ),
    ],
)
def test_schema_errors_name_file_path_and_expectation(
    tmp_path: Path, mutation: tuple[str, Any], json_path: str, words: str
) -> None:
    path = write(tmp_path, _mutate(*mutation))
    with pytest.raises(ManifestError) as info:
        manifest_load.load(path, euid=0)
    assert info.value.file == str(path)
    assert info.value.path == json_path
    assert words in info.value.message
    assert "\n" not in str(info.value)


def test_lineage_and_explicit_paths_together_are_refused(tmp_path: Path) -> None:
    data = {
        "version": 2,
        "certificates": [
            {
                "name": "a",
                "sans": ["a"],
                "lineage": "/l/a",
                "cert_path": "/a.crt",
                "key_path": "/a.key",
            }
        ],
    }
    with pytest.raises(ManifestError) as info:
        manifest_load.load(write(tmp_path, data), euid=0)
    assert (info.value.path, info.value.message) == (
        "$.certificates[0]",
        "give either lineage or cert_path/key_path, not both",
    )


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    data = example()
    data["certificates"].append(copy.deepcopy(data["certificates"][0]))
    data["certificates"][1]["services"] = []
    with pytest.raises(ManifestError) as info:
        manifest_load.load(write(tmp_path, data), euid=0)
    assert info.value.path == "$.certificates[1].name"


def test_one_base_name_cannot_carry_two_certificates(tmp_path: Path) -> None:
    data = example()
    other = copy.deepcopy(data["certificates"][0])
    other["name"] = "other"
    data["certificates"].append(other)
    with pytest.raises(ManifestError) as info:
        manifest_load.load(write(tmp_path, data), euid=0)
    assert info.value.path == "$.certificates[1].services[0].secrets[0].name"
    assert "already the fullchain of certificate 'portainer'" in info.value.message


def test_two_objects_on_one_target_of_one_service_are_refused(tmp_path: Path) -> None:
    data = example()
    data["certificates"][0]["services"][0]["secrets"][1]["target"] = "portainer.sslcert"
    with pytest.raises(ManifestError, match=r"already mounts 'portainer\.sslcert'"):
        manifest_load.load(write(tmp_path, data), euid=0)


def test_private_key_file_must_not_be_world_readable(tmp_path: Path) -> None:
    data = example()
    data["certificates"][0]["services"][0]["files"] = [
        {"path": "/srv/k.pem", "source": "privkey", "mode": "0644"}
    ]
    with pytest.raises(ManifestError) as info:
        manifest_load.load(write(tmp_path, data), euid=0)
    assert info.value.path == "$.certificates[0].services[0].files[0].mode"


def test_invalid_json_names_line(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text('{"version": 2,\n  "certificates": [,]}')
    with pytest.raises(ManifestError, match=r"m.json: \$: not valid JSON: .* line 2"):
        manifest_load.load(path, euid=0)


def test_scalar_document_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="expected a JSON object"):
        manifest_load.load(write(tmp_path, 42), euid=0)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="file not found"):
        manifest_load.load(tmp_path / "nope.json")


@pytest.mark.parametrize("mode", [0o664, 0o646])
def test_group_or_world_writable_manifest_is_refused_for_root(tmp_path: Path, mode: int) -> None:
    path = write(tmp_path, example(), mode)
    with pytest.raises(ManifestError, match="writable by group or others"):
        manifest_load.load(path, euid=0)
    # Not root: the manifest cannot drive anything privileged, so it is read.
    assert manifest_load.load(path, euid=1000).version == 2


def test_lookup_order(tmp_path: Path) -> None:
    assert manifest_load.locate("/x.json", env={"PHOENIX_CERT_MANIFEST": "/y.json"}) == Path(
        "/x.json"
    )
    assert manifest_load.locate(None, env={"PHOENIX_CERT_MANIFEST": "/y.json"}) == Path("/y.json")


def test_lookup_without_any_manifest_says_where_it_looked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(
        manifest_load, "DEFAULT_LOCATIONS", (tmp_path / "a.json", tmp_path / "b.json")
    )
    with pytest.raises(ManifestError, match=r"none at .*a\.json, .*b\.json"):
        manifest_load.locate(None, env={})
    (tmp_path / "b.json").write_text("{}")
    assert manifest_load.locate(None, env={}) == tmp_path / "b.json"


def test_by_lineage_matches_path_or_last_component() -> None:
    m = manifest_load.load(EXAMPLE, euid=1000)
    assert [e.name for e in m.by_lineage(Path("/etc/letsencrypt/live/portainer"))] == ["portainer"]
    assert [e.name for e in m.by_lineage(Path("/tmp/cfg/live/portainer"))] == ["portainer"]
    assert m.by_lineage(Path("/etc/letsencrypt/live/other")) == ()
