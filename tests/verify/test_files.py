"""File checks: certificate findings (each problem, expiry thresholds) and manifest notes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from phoenix_certbot.certs import load_material
from phoenix_certbot.errors import CertificateError, ComposeError, ManifestError
from phoenix_certbot.findings import Finding, Severity
from phoenix_certbot.manifest.model import (
    CertificateEntry,
    CertificatePaths,
    Manifest,
    ServiceBinding,
    Settings,
)
from phoenix_certbot.verify.files import (
    CERT_FINDING_IDS,
    LoadedCertificate,
    certificate_findings,
    compose_error_finding,
    manifest_error_finding,
    manifest_findings,
)
from tests.support import pki
from tests.verify.builders import SANS, days, lineage

NOW = pki.utcnow()


def _entry(live: Path, sans: tuple[str, ...] = SANS, name: str = "portainer") -> CertificateEntry:
    paths = CertificatePaths(
        cert=live / "cert.pem",
        key=live / "privkey.pem",
        chain=live / "chain.pem",
        fullchain=live / "fullchain.pem",
        lineage=live,
    )
    return CertificateEntry(name=name, sans=sans, paths=paths)


def _check(entry: CertificateEntry, now: dt.datetime = NOW, warn: int = 14) -> list[Finding]:
    try:
        loaded = LoadedCertificate(entry, material=load_material(entry))
    except CertificateError as exc:
        loaded = LoadedCertificate(entry, error=exc)
    return certificate_findings(loaded, now, warn_days=warn, error_days=2)


def _ids(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.id, f.severity.value) for f in findings]


def test_good_certificate_has_no_finding(tmp_path: Path) -> None:
    _, live = lineage(tmp_path)
    assert _check(_entry(live)) == []


def test_missing_lineage_names_the_certificate_and_the_file(tmp_path: Path) -> None:
    findings = _check(_entry(tmp_path / "nowhere"))
    assert _ids(findings) == [("cert.missing", "error")]
    assert findings[0].certificate == "portainer"
    assert findings[0].file == str(tmp_path / "nowhere")
    assert findings[0].fix


def test_missing_key_file(tmp_path: Path) -> None:
    _, live = lineage(tmp_path)
    (live / "privkey.pem").unlink()
    findings = _check(_entry(live))
    assert _ids(findings) == [("cert.missing", "error")]
    assert findings[0].file == str(live / "privkey.pem")


def test_key_mismatch_and_missing_san_are_both_reported(tmp_path: Path) -> None:
    _, live = lineage(tmp_path)
    other = pki.issue(list(SANS))
    archive_key = (live / "privkey.pem").resolve()
    archive_key.write_bytes(other.key_pem)
    findings = _check(_entry(live, sans=(*SANS, "missing.test")))
    assert _ids(findings) == [("cert.key-mismatch", "error"), ("cert.san", "error")]
    assert findings[0].file == str(archive_key)
    assert "missing.test" in findings[1].message


def test_broken_chain(tmp_path: Path) -> None:
    _, live = lineage(tmp_path)
    (live / "chain.pem").resolve().write_bytes(pki.make_ca("another CA").cert_pem)
    (live / "fullchain.pem").unlink()  # only chain.pem states the chain now
    assert _ids(_check(_entry(live))) == [("cert.chain", "error")]


def test_expired_certificate_is_an_error_without_an_expiry_warning(tmp_path: Path) -> None:
    _, live = lineage(tmp_path, not_before=NOW - days(90), not_after=NOW - days(1))
    assert _ids(_check(_entry(live))) == [("cert.expired", "error")]


def test_not_yet_valid(tmp_path: Path) -> None:
    _, live = lineage(tmp_path, not_before=NOW + days(1), not_after=NOW + days(90))
    assert _ids(_check(_entry(live))) == [("cert.not-yet-valid", "error")]


@pytest.mark.parametrize(
    ("days_left", "warn_days", "expected"),
    [
        (30, 14, []),
        (13.5, 14, [("cert.expiring", "warning")]),
        (20, 30, [("cert.expiring", "warning")]),
        (14.5, 14, []),
        (1.5, 14, [("cert.expiring", "error")]),
        (2.5, 14, [("cert.expiring", "warning")]),
        (1.0, 0, [("cert.expiring", "error")]),
    ],
)
def test_expiry_thresholds(
    tmp_path: Path, days_left: float, warn_days: int, expected: list[tuple[str, str]]
) -> None:
    _, live = lineage(tmp_path, not_after=NOW + days(days_left))
    findings = _check(_entry(live), warn=warn_days)
    assert _ids(findings) == expected
    for finding in findings:
        assert finding.file == str((live / "cert.pem").resolve())
        assert "certbot renew --cert-name portainer" in finding.fix


def test_private_key_in_the_certificate_file(tmp_path: Path) -> None:
    _, live = lineage(tmp_path)
    (live / "cert.pem").resolve().write_bytes(pki.issue(["x.test"]).key_pem)
    assert _ids(_check(_entry(live))) == [("cert.unparsable", "error")]


def test_every_certificate_id_is_prefixed() -> None:
    assert all(i.startswith("cert.") for i in CERT_FINDING_IDS)
    assert len(set(CERT_FINDING_IDS)) == len(CERT_FINDING_IDS)


def test_manifest_notes() -> None:
    paths = CertificatePaths(cert=Path("/c"), key=Path("/k"))
    manifest = Manifest(
        path=Path("/m.json"),
        version=1,
        settings=Settings(),
        certificates=(
            CertificateEntry("a", ("a.test",), paths, services=(ServiceBinding("s_a"),)),
            CertificateEntry("b", ("b.test",), paths, legacy_command="systemctl reload x"),
        ),
        unknown_keys=("$[0].frobnicate",),
    )
    assert _ids(manifest_findings(manifest)) == [
        ("manifest.legacy-format", "info"),
        ("manifest.unknown-key", "warning"),
        ("manifest.no-verify", "info"),
        ("manifest.legacy-command", "warning"),
    ]


def test_load_errors_become_findings() -> None:
    manifest = manifest_error_finding(ManifestError("/m.json", "$.certificates[0].sans", "bad"))
    assert (manifest.id, manifest.severity, manifest.file) == (
        "manifest.invalid",
        Severity.ERROR,
        "/m.json",
    )
    assert manifest.message == "$.certificates[0].sans: bad"
    compose = compose_error_finding(ComposeError("/s.yml", 7, "invalid YAML"))
    assert (compose.id, compose.file, compose.line, compose.message) == (
        "compose.invalid",
        "/s.yml",
        7,
        "invalid YAML",
    )
