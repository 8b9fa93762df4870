"""`compose.stale-object-name`: stack variables naming another version than the one on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoenix_certbot.certs import CertificateMaterial
from phoenix_certbot.compose import parse_compose
from phoenix_certbot.manifest.model import Manifest, Source
from phoenix_certbot.naming import versioned_name
from phoenix_certbot.verify.stack_names import stale_object_names
from tests.verify import builders as b

STACK = """\
services:
  web:
    image: x
    secrets:
{mounts}
secrets:
  web.cert:
{declaration}
"""
LONG = "      - source: web.cert\n        target: {target}\n"
SHORT = "      - web.cert\n"
EXTERNAL = "    external: true\n    name: ${WEB_CERT}\n"
LEGACY = "    external:\n      name: ${WEB_CERT}\n"
FIXED = "    external: true\n    name: web.cert_0123456789ab\n"


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Manifest, dict[str, CertificateMaterial], str]:
    _, live = b.lineage(tmp_path)
    binding = {"service": "site_web", "secrets": [b.secret("web.cert", "fullchain", "web.cert")]}
    path = b.write_manifest(
        tmp_path / "m.json", [b.entry("web", live, services=[binding])], tmp_path / "s"
    )
    manifest = b.load(path)
    material = b.material_of(manifest)
    current = versioned_name("web.cert", material.payload_sha256(Source.FULLCHAIN))
    return manifest, {"web": material}, current


@pytest.mark.parametrize(
    ("mounts", "declaration"),
    [
        (LONG.format(target="web.cert"), EXTERNAL),
        (LONG.format(target="/run/secrets/web.cert"), EXTERNAL),
        (SHORT, EXTERNAL),
        (SHORT, LEGACY),
    ],
)
def test_stale_name_is_found(
    setup: tuple[Manifest, dict[str, CertificateMaterial], str],
    mounts: str,
    declaration: str,
) -> None:
    manifest, materials, current = setup
    text = STACK.format(mounts=mounts, declaration=declaration)
    stale = parse_compose(text, "stack.yml", {"WEB_CERT": "web.cert_000000000000"})
    (finding,) = stale_object_names([stale], manifest, "site", materials)
    assert finding.id == "compose.stale-object-name"
    assert finding.service == "site_web"
    assert finding.line is not None
    assert text.splitlines()[finding.line - 1].strip().endswith("${WEB_CERT}")
    assert f"WEB_CERT={current}" in finding.fix
    fresh = parse_compose(text, "stack.yml", {"WEB_CERT": current})
    assert stale_object_names([fresh], manifest, "site", materials) == []


@pytest.mark.parametrize(
    ("declaration", "env"),
    [
        (FIXED, {}),  # compose.fixed-object-name says it
        (EXTERNAL, {}),  # compose.variable-unset says it
    ],
)
def test_other_rules_cover_fixed_and_unset_names(
    setup: tuple[Manifest, dict[str, CertificateMaterial], str],
    declaration: str,
    env: dict[str, str],
) -> None:
    manifest, materials, _ = setup
    stack = parse_compose(STACK.format(mounts=SHORT, declaration=declaration), "s.yml", env)
    assert stale_object_names([stack], manifest, "site", materials) == []


def test_mount_elsewhere_is_not_compared(
    setup: tuple[Manifest, dict[str, CertificateMaterial], str],
) -> None:
    manifest, materials, _ = setup
    text = STACK.format(mounts=LONG.format(target="other.pem"), declaration=EXTERNAL)
    stack = parse_compose(text, "s.yml", {"WEB_CERT": "web.cert_000000000000"})
    assert stale_object_names([stack], manifest, "site", materials) == []
