"""Certificates, lineages and manifests for the verify tests (files under tmp_path)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from phoenix_certbot.certs import CertificateMaterial, load_material
from phoenix_certbot.manifest import load as manifest_load
from phoenix_certbot.manifest.model import CertificateEntry, Manifest
from tests.support import pki

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_MANIFEST = REPO / "manifests" / "certificate-manifest.json"
PORTAINER_STACK = REPO / "manifests" / "portainer-stack.yml"
BROKEN_STACK = REPO / "tests" / "compose" / "corpus" / "broken-ports-under-deploy.yml"
SANS = ("portainer.test", "127.0.0.1")


def der(issued: pki.Issued) -> bytes:
    return issued.cert.public_bytes(serialization.Encoding.DER)


def days(n: float) -> dt.timedelta:
    return dt.timedelta(days=n)


def lineage(
    base: Path,
    name: str = "portainer",
    sans: tuple[str, ...] = SANS,
    *,
    ca: pki.Issued | None = None,
    leaf: pki.Issued | None = None,
    version: int = 1,
    **issue_args: Any,
) -> tuple[pki.Issued, Path]:
    """A certbot-like lineage under `base`; returns the leaf and the live/NAME folder."""
    ca = ca or pki.make_ca()
    leaf = leaf or pki.issue(list(sans), ca, **issue_args)
    files = pki.write_lineage(base / "letsencrypt", name, leaf, ca, version)
    return leaf, files.live


def secret(name: str, source: str, target: str, mode: str | None = None) -> dict[str, str]:
    data = {"name": name, "source": source, "target": target}
    if mode:
        data["mode"] = mode
    return data


def portainer_secrets(cert_base: str, key_base: str) -> list[dict[str, str]]:
    return [
        secret(cert_base, "fullchain", "portainer.sslcert"),
        secret(key_base, "privkey", "portainer.sslkey", "0400"),
    ]


def entry(
    name: str,
    live: Path,
    *,
    sans: tuple[str, ...] = SANS,
    services: list[dict[str, Any]] | None = None,
    verify: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "sans": list(sans),
        "lineage": str(live),
        "services": services or [],
        "verify": verify or [],
    }


def write_manifest(path: Path, entries: list[dict[str, Any]], state_dir: Path) -> Path:
    data = {"version": 2, "settings": {"state_dir": str(state_dir)}, "certificates": entries}
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def example_manifest_copy(path: Path, live: Path, state_dir: Path) -> Path:
    """manifests/certificate-manifest.json with its lineage (and state dir) moved to tmp."""
    data = json.loads(EXAMPLE_MANIFEST.read_text(encoding="utf-8"))
    data["settings"]["state_dir"] = str(state_dir)
    for item in data["certificates"]:
        item["lineage"] = str(live)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def load(path: Path) -> Manifest:
    return manifest_load.load(path)


def material_of(manifest: Manifest, name: str | None = None) -> CertificateMaterial:
    chosen: CertificateEntry = (
        manifest.certificates[0] if name is None else manifest.by_name(name)  # type: ignore[assignment]
    )
    return load_material(chosen)
