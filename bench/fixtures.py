"""Certificates on disk (certbot-style lineages made with the test PKI) and manifests."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.support import pki


class Lineages:
    """Lineages under `root/letsencrypt`, all signed by one CA; EC keys (fast to make)."""

    def __init__(self, root: Path) -> None:
        self.config_dir = root / "letsencrypt"
        self.live_dir = self.config_dir / "live"
        self.ca = pki.make_ca("phoenix benchmark CA")
        self._versions: dict[str, int] = {}

    def write(self, name: str, san: str) -> pki.Issued:
        """Write the next version of lineage `name` (as certbot does) and return its leaf."""
        version = self._versions.get(name, 0) + 1
        leaf = pki.issue([san], self.ca)
        pki.write_lineage(self.config_dir, name, leaf, self.ca, version)
        self._versions[name] = version
        return leaf

    def fullchain(self, name: str) -> Path:
        return self.live_dir / name / "fullchain.pem"

    def privkey(self, name: str) -> Path:
        return self.live_dir / name / "privkey.pem"


def fullchain_pem(leaf: pki.Issued, ca: pki.Issued) -> bytes:
    return leaf.cert_pem + ca.cert_pem


def binding(
    service: str,
    cert_base: str,
    key_base: str,
    cert_target: str = "portainer.sslcert",
    key_target: str = "portainer.sslkey",
) -> dict[str, Any]:
    return {
        "service": service,
        "secrets": [
            {"name": cert_base, "source": "fullchain", "target": cert_target},
            {"name": key_base, "source": "privkey", "target": key_target, "mode": "0400"},
        ],
    }


def entry(
    name: str,
    san: str,
    bindings: Sequence[dict[str, Any]],
    verify_ports: Sequence[int] = (),
    lineage: Path | None = None,
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": name,
        "sans": [san],
        "services": list(bindings),
        "verify": [
            {"url": f"https://127.0.0.1:{port}/api/system/status", "server_name": san}
            for port in verify_ports
        ],
    }
    if lineage is not None:
        document["lineage"] = str(lineage)
    return document


def write_manifest(
    path: Path,
    live_dir: Path,
    state_dir: Path,
    certificates: Sequence[dict[str, Any]],
    update_timeout_s: int = 180,
) -> Path:
    document = {
        "version": 2,
        "settings": {
            "certbot_live_dir": str(live_dir),
            "keep_versions": 2,
            "update_timeout_s": update_timeout_s,
            "state_dir": str(state_dir),
        },
        "certificates": list(certificates),
    }
    # Owner-only, as phoenix-cert requires of a manifest when it runs as root.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=1)
    return path
