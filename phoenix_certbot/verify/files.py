"""File checks of `verify`: compose lint, manifest notes and certificate checks (pure).

Everything here takes loaded values (a manifest, compose stacks, certificate material or
the error that reading it raised) and returns findings; `verify.run` does the reading.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from cryptography import x509

from phoenix_certbot.certs import (
    CertificateMaterial,
    ExpiryStatus,
    check_chain,
    check_key_matches,
    check_payload,
    check_sans,
    check_validity,
    expiry_status,
    parse_certificate,
    parse_chain,
    parse_private_key,
)
from phoenix_certbot.compose import ComposeFile, lint_compose
from phoenix_certbot.errors import (
    CertExpired,
    CertFileMissing,
    CertificateError,
    CertNotYetValid,
    CertParseError,
    ChainBroken,
    ComposeError,
    KeyMismatch,
    ManifestError,
    PayloadEmpty,
    PayloadTooLarge,
    SanNotCovered,
)
from phoenix_certbot.findings import Finding, Severity
from phoenix_certbot.manifest.model import CertificateEntry, Manifest, Source

DEFAULT_WARN_DAYS = 14
DEFAULT_ERROR_DAYS = 2

_RENEW = "renew it (certbot renew --cert-name {name}), then run phoenix-cert rotate {name}"

# Certificate error class -> (finding id, fix). Most specific classes first.
_CERT_IDS: tuple[tuple[type[CertificateError], str, str], ...] = (
    (
        CertFileMissing,
        "cert.missing",
        "point the manifest entry at existing files (lineage or cert_path/key_path), "
        "or obtain the certificate with certbot",
    ),
    (
        CertParseError,
        "cert.unparsable",
        "put the PEM the manifest expects in that file (a certificate, or one unencrypted key)",
    ),
    (PayloadEmpty, "cert.empty", "restore or re-issue the file: Docker refuses empty secrets"),
    (
        PayloadTooLarge,
        "cert.oversize",
        "ship only the issuers clients need: Docker secrets are limited to 500 KiB",
    ),
    (
        KeyMismatch,
        "cert.key-mismatch",
        "point the key path at the key this certificate was issued for, or re-issue both",
    ),
    (
        ChainBroken,
        "cert.chain",
        "use the chain certbot (or the CA) wrote for this certificate, issuer first",
    ),
    (CertExpired, "cert.expired", _RENEW),
    (
        CertNotYetValid,
        "cert.not-yet-valid",
        "check this host's clock (timedatectl), or wait until the certificate starts",
    ),
    (
        SanNotCovered,
        "cert.san",
        "re-issue with every name of the entry's sans, or drop the name from sans",
    ),
    (
        CertificateError,
        "cert.unreadable",
        "wait for certbot to finish, or repair the lineage (certbot update_symlinks)",
    ),
)

CERT_FINDING_IDS = tuple(dict.fromkeys([i for _, i, _ in _CERT_IDS] + ["cert.expiring"]))
MANIFEST_FINDING_IDS = (
    "manifest.invalid",
    "manifest.legacy-format",
    "manifest.unknown-key",
    "manifest.legacy-command",
    "manifest.no-verify",
)
COMPOSE_INVALID = "compose.invalid"


@dataclass(frozen=True)
class LoadedCertificate:
    """One manifest entry's certificate as read from disk, or why it could not be read."""

    entry: CertificateEntry
    material: CertificateMaterial | None = None
    error: CertificateError | None = None


# -- compose -----------------------------------------------------------------------------
def compose_findings(
    stacks: Sequence[ComposeFile], manifest: Manifest | None, stack_name: str | None
) -> list[Finding]:
    return lint_compose(stacks, manifest, stack_name)


def compose_error_finding(exc: ComposeError) -> Finding:
    return Finding(
        id=COMPOSE_INVALID,
        severity=Severity.ERROR,
        message=exc.message,
        fix="fix the file so that `docker stack deploy` can read it",
        file=exc.file,
        line=exc.line,
    )


# -- manifest ----------------------------------------------------------------------------
def manifest_error_finding(exc: ManifestError) -> Finding:
    where = f"{exc.path}: " if exc.path else ""
    return Finding(
        id="manifest.invalid",
        severity=Severity.ERROR,
        message=f"{where}{exc.message}",
        fix="correct the manifest (phoenix-cert manifest check shows every problem)",
        file=exc.file or None,
    )


def manifest_findings(manifest: Manifest) -> list[Finding]:
    file = str(manifest.path)
    found: list[Finding] = []
    if manifest.version != 2:
        found.append(
            Finding(
                "manifest.legacy-format",
                Severity.INFO,
                f"legacy manifest format (version {manifest.version})",
                "convert it: phoenix-cert manifest migrate",
                file=file,
            )
        )
    found.extend(
        Finding(
            "manifest.unknown-key",
            Severity.WARNING,
            f"unknown key {key} is ignored",
            "remove it, or migrate to version 2: phoenix-cert manifest migrate",
            file=file,
        )
        for key in manifest.unknown_keys
    )
    for entry in manifest.certificates:
        if entry.legacy_command:
            found.append(
                Finding(
                    "manifest.legacy-command",
                    Severity.WARNING,
                    f"post_renewal_command is not migrated: {entry.legacy_command}",
                    "bind the service in `services` instead, or pass --run-legacy-commands "
                    "to rotate",
                    file=file,
                    certificate=entry.name,
                )
            )
        if entry.services and not entry.verify:
            found.append(
                Finding(
                    "manifest.no-verify",
                    Severity.INFO,
                    "no verify URL: nothing checks that the services serve this certificate",
                    "add a verify entry with the URL (and server_name) clients use",
                    file=file,
                    certificate=entry.name,
                )
            )
    return found


# -- certificates ------------------------------------------------------------------------
def certificate_error_finding(name: str, exc: CertificateError) -> Finding:
    for cls, finding_id, fix in _CERT_IDS:
        if isinstance(exc, cls):
            return Finding(
                finding_id,
                Severity.ERROR,
                exc.message,
                fix.format(name=name),
                file=exc.file,
                certificate=name,
            )
    raise AssertionError("CertificateError is the last entry")  # pragma: no cover


def _sources(entry: CertificateEntry) -> list[Source]:
    # What every entry ships; the chain alone only when a binding mounts it (may be empty).
    used = {o.source for b in entry.services for o in b.objects}
    used |= {f.source for b in entry.services for f in b.files}
    return [Source.CERT, Source.FULLCHAIN, Source.PRIVKEY] + (
        [Source.CHAIN] if Source.CHAIN in used else []
    )


def _attempt(check: Callable[[], object]) -> CertificateError | None:
    try:
        check()
    except CertificateError as exc:
        return exc
    return None


def _check_chain(leaf: x509.Certificate, chain_pem: bytes, chain_file: str) -> None:
    check_chain(leaf, parse_chain(chain_pem, chain_file), chain_file)


def _check_key(leaf: x509.Certificate, key_pem: bytes, key_file: str) -> None:
    check_key_matches(leaf, parse_private_key(key_pem, key_file), key_file)


def certificate_findings(
    loaded: LoadedCertificate,
    now: dt.datetime,
    warn_days: int = DEFAULT_WARN_DAYS,
    error_days: int = DEFAULT_ERROR_DAYS,
) -> list[Finding]:
    """Every independent problem of one certificate, not only the first.

    Unlike `certs.check_material`, which stops at the first failure, a key mismatch and a
    missing SAN are both reported. Expiry within `error_days` is an error, within
    `warn_days` a warning.
    """
    entry = loaded.entry
    if loaded.error is not None:
        return [certificate_error_finding(entry.name, loaded.error)]
    material = loaded.material
    if material is None:
        raise ValueError("LoadedCertificate needs a material or an error")
    cert_file, key_file = str(material.cert_path), str(material.key_path)
    chain_file = str(material.chain_path or material.cert_path)
    problems: list[CertificateError | None] = []
    for source in _sources(entry):
        problems.append(_attempt(partial(check_payload, material, source)))
    leaf = parse_certificate(material.cert_pem, cert_file)  # canonical PEM from the loader
    problems.append(_attempt(partial(_check_chain, leaf, material.chain_pem, chain_file)))
    problems.append(_attempt(partial(_check_key, leaf, material.key_pem, key_file)))
    validity = _attempt(partial(check_validity, material.info, now, cert_file))
    problems.append(validity)
    problems.append(_attempt(partial(check_sans, material.info, entry.sans, cert_file)))
    found = [certificate_error_finding(entry.name, p) for p in problems if p is not None]
    if validity is None:
        found.extend(_expiry(entry, material, now, warn_days, error_days))
    return list(dict.fromkeys(found))


def _expiry(
    entry: CertificateEntry,
    material: CertificateMaterial,
    now: dt.datetime,
    warn_days: int,
    error_days: int,
) -> list[Finding]:
    status = expiry_status(material.info, now, warn_days, error_days)
    if status is ExpiryStatus.OK:
        return []
    left = material.info.days_left(now)
    limit = error_days if status is ExpiryStatus.ERROR else warn_days
    when = material.info.not_after.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [
        Finding(
            "cert.expiring",
            Severity.ERROR if status is ExpiryStatus.ERROR else Severity.WARNING,
            f"expires in {left:.1f} days ({when}), within the {limit}-day limit",
            _RENEW.format(name=entry.name),
            file=str(material.cert_path),
            certificate=entry.name,
        )
    ]
