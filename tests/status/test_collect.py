"""The status adapter: certificates read one by one, the swarm read in three API calls."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

from phoenix_certbot.manifest.load import parse
from phoenix_certbot.manifest.model import Manifest
from phoenix_certbot.rotation.plan import CertDigest
from phoenix_certbot.rotation.run import file_hashes
from phoenix_certbot.status.collect import collect, read_certificate
from phoenix_certbot.status.model import Deployment, DiskProblem
from phoenix_certbot.swarm.client import SwarmClient
from tests.support import pki


class CountingApi:
    """Answers the three list calls of `SwarmClient.snapshot` with an empty swarm (or the
    services given) and counts every call made to it."""

    def __init__(self, services: list[dict[str, Any]] | None = None) -> None:
        self.calls: Counter[str] = Counter()
        self._services = services or []

    def services(self) -> list[dict[str, Any]]:
        self.calls["services"] += 1
        return self._services

    def secrets(self) -> list[dict[str, Any]]:
        self.calls["secrets"] += 1
        return []

    def configs(self) -> list[dict[str, Any]]:
        self.calls["configs"] += 1
        return []

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"status must not call {name}()")


def write_manifest(tmp_path: Path, names: list[str], **extra: Any) -> Manifest:
    certificates = [
        {
            "name": n,
            "sans": [f"{n}.test"],
            "services": [
                {"service": f"svc-{n}", "secrets": [{"name": f"{n}.crt", "source": "fullchain"}]}
            ],
            **extra,
        }
        for n in names
    ]
    document = {
        "version": 2,
        "settings": {
            "certbot_live_dir": str(tmp_path / "live"),
            "state_dir": str(tmp_path / "state"),
        },
        "certificates": certificates,
    }
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(document))
    return parse(path.read_text(), path)


def test_swarm_is_read_in_three_api_calls_however_many_certificates(tmp_path: Path) -> None:
    few = write_manifest(tmp_path, ["a"])
    many = write_manifest(tmp_path, [f"c{i}" for i in range(40)])
    for manifest in (few, many):
        api = CountingApi()
        report = collect(manifest, SwarmClient(api))
        assert api.calls == {"services": 1, "secrets": 1, "configs": 1}
        assert len(report.certificates) == len(manifest.certificates)
        assert all(s.state is Deployment.MISSING for c in report.certificates for s in c.services)


def test_each_certificate_is_read_on_its_own(tmp_path: Path) -> None:
    ca = pki.make_ca()
    config = tmp_path / "le"
    pki.write_lineage(config, "good", pki.issue(["good.test"], ca), ca)
    now = pki.utcnow()
    expired = pki.issue(
        ["old.test"],
        ca,
        not_before=now - dt.timedelta(days=90),
        not_after=now - dt.timedelta(days=1),
    )
    pki.write_lineage(config, "old", expired, ca)
    manifest = write_manifest(tmp_path, ["good", "old", "gone"])
    manifest = parse(
        manifest.path.read_text().replace(str(tmp_path / "live"), str(config / "live")),
        manifest.path,
    )
    good, old, gone = (read_certificate(e, now) for e in manifest.certificates)

    assert isinstance(good, CertDigest) and good.name == "good"
    assert isinstance(old, DiskProblem) and old.check == "expired"
    assert old.digest is not None and old.digest.leaf_sha256 == expired.sha256
    assert isinstance(gone, DiskProblem) and gone.check == "missing" and gone.digest is None

    report = collect(manifest, SwarmClient(CountingApi()), now)
    assert [c.disk.ok for c in report.certificates] == [True, False, False]
    assert report.certificates[1].disk.not_after == expired.cert.not_valid_after_utc


def test_file_targets_are_hashed_and_absent_ones_are_none(tmp_path: Path) -> None:
    present = tmp_path / "present.pem"
    present.write_bytes(b"pem")
    manifest = write_manifest(tmp_path, ["a"])
    document = json.loads(manifest.path.read_text())
    document["certificates"][0]["services"][0]["files"] = [
        {"path": str(present), "source": "fullchain"},
        {"path": str(tmp_path / "absent.pem"), "source": "cert"},
    ]
    manifest.path.write_text(json.dumps(document))
    hashes = file_hashes(parse(manifest.path.read_text(), manifest.path).certificates)
    assert hashes == {present: hashlib.sha256(b"pem").hexdigest(), tmp_path / "absent.pem": None}
