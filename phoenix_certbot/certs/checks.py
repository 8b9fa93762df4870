"""Pure certificate checks: PEM bytes and a file name in, values out or a named error raised.

No file system here (`files` reads); the caller passes the path so every error names the
file the operator has to fix. Messages are one line and never echo file content: a
"certificate" file may well hold a private key by mistake.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from phoenix_certbot.certs.model import (
    CertificateInfo,
    CertificateMaterial,
    ExpiryStatus,
    require_aware,
)
from phoenix_certbot.errors import (
    CertExpired,
    CertNotYetValid,
    CertParseError,
    ChainBroken,
    KeyMismatch,
    PayloadEmpty,
    PayloadTooLarge,
    SanNotCovered,
)
from phoenix_certbot.manifest.model import Source

# Docker refuses secret and config payloads over 500 KiB (swarmkit's MaxSecretSize).
MAX_PAYLOAD_BYTES = 500 * 1024

_CERT_BEGIN = b"-----BEGIN CERTIFICATE-----"
_KEY_BEGIN = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _when(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_size(data: bytes, file: str, what: str = "file") -> None:
    """PayloadEmpty / PayloadTooLarge for a payload Docker would refuse."""
    if not data.strip():
        raise PayloadEmpty(file, f"{what} is empty")
    if len(data) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(
            file,
            f"{what} is {len(data)} bytes, over Docker's secret limit of "
            f"{MAX_PAYLOAD_BYTES} bytes (500 KiB)",
        )


def parse_certificates(pem: bytes, file: str) -> tuple[x509.Certificate, ...]:
    """Every CERTIFICATE block of `pem`, in file order; at least one."""
    check_size(pem, file)
    if _CERT_BEGIN not in pem:
        if _KEY_BEGIN.search(pem):
            raise CertParseError(file, "holds a private key where a certificate is expected")
        raise CertParseError(file, "no PEM certificate found")
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        # cryptography's message says nothing the operator can act on beyond this.
        raise CertParseError(file, "malformed PEM certificate") from None
    return tuple(certs)


def parse_certificate(pem: bytes, file: str) -> x509.Certificate:
    """The single certificate in `pem`; more than one is an error (use parse_certificates)."""
    certs = parse_certificates(pem, file)
    if len(certs) != 1:
        raise CertParseError(file, f"expected one certificate, found {len(certs)}")
    return certs[0]


def parse_chain(pem: bytes, file: str) -> tuple[x509.Certificate, ...]:
    """Issuer certificates; an empty or blank chain is allowed (self-signed, private CA)."""
    if not pem.strip():
        return ()
    return parse_certificates(pem, file)


def parse_private_key(pem: bytes, file: str) -> PrivateKeyTypes:
    check_size(pem, file)
    found = len(_KEY_BEGIN.findall(pem))
    if found == 0:
        what = "a certificate" if _CERT_BEGIN in pem else "no PEM private key"
        raise CertParseError(file, f"holds {what} where a private key is expected")
    if found > 1:
        raise CertParseError(file, f"holds {found} private keys; expected one")
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        # The only TypeError here is "key is encrypted but no password was given".
        raise CertParseError(file, "private key is encrypted; it must be unencrypted") from None
    except (ValueError, UnsupportedAlgorithm):
        # Never chain or echo the library error: it could quote the key material.
        raise CertParseError(file, "malformed or unsupported private key") from None


def to_pem(certs: Sequence[x509.Certificate]) -> bytes:
    """Canonical PEM, so CRLFs, comments or re-wrapped lines never change a payload hash."""
    return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certs)


def info_of(cert: x509.Certificate) -> CertificateInfo:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        # Clients ignore the subject CN for host matching, so neither do we.
        dns: list[str] = []
        ips: list[str] = []
    else:
        dns = san.get_values_for_type(x509.DNSName)
        ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        dns_names=tuple(dns),
        ip_addresses=tuple(ips),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
        serial=cert.serial_number,
    )


def check_key_matches(cert: x509.Certificate, key: PrivateKeyTypes, key_file: str) -> None:
    """KeyMismatch unless `key` is the private half of the certificate's public key.

    Comparing SubjectPublicKeyInfo DER works the same for RSA, EC, Ed25519 and Ed448.
    """
    if key.public_key().public_bytes(*_SPKI) != cert.public_key().public_bytes(*_SPKI):
        raise KeyMismatch(key_file, "private key does not match the certificate's public key")


def _label(index: int, cert: x509.Certificate) -> str:
    who = "leaf" if index < 0 else f"chain[{index}]"
    return f"{who} ({cert.subject.rfc4514_string()})"


def check_chain(leaf: x509.Certificate, chain: Sequence[x509.Certificate], file: str) -> None:
    """ChainBroken unless leaf is issued by chain[0] and chain[i] by chain[i+1].

    `verify_directly_issued_by` (cryptography>=40, so no fallback is needed) checks the issuer
    name and the signature; it does not check validity dates or CA flags, nor do we.
    """
    subjects = [leaf, *chain]
    for link, issuer in enumerate(chain):
        subject = subjects[link]
        try:
            subject.verify_directly_issued_by(issuer)
        except ValueError:
            reason = "issuer name does not match"
        except InvalidSignature:
            reason = "signature does not verify"
        except (TypeError, UnsupportedAlgorithm):
            reason = "signature algorithm not supported"
        else:
            continue
        raise ChainBroken(
            file,
            f"chain link {link} broken: {_label(link - 1, subject)} is not issued by "
            f"{_label(link, issuer)}: {reason}",
        )


def check_validity(info: CertificateInfo, now: dt.datetime, file: str) -> None:
    require_aware(now)
    if now < info.not_before:
        raise CertNotYetValid(file, f"certificate is not valid before {_when(info.not_before)}")
    if now > info.not_after:
        raise CertExpired(file, f"certificate expired on {_when(info.not_after)}")


def check_sans(info: CertificateInfo, sans: Sequence[str], file: str) -> None:
    missing = [name for name in sans if not info.covers(name)]
    if missing:
        names = ", ".join([*info.dns_names, *info.ip_addresses]) or "no SANs"
        raise SanNotCovered(
            file, f"certificate does not cover {', '.join(missing)} (it covers: {names})"
        )


def check_payload(material: CertificateMaterial, source: Source) -> None:
    """PayloadEmpty / PayloadTooLarge for the payload of one `source`.

    An empty chain is a valid material but not a valid Docker secret: a caller that
    mounts `Source.CHAIN` should call this for it.
    """
    files = {
        Source.CERT: material.cert_path,
        Source.CHAIN: material.chain_path or material.cert_path,
        Source.FULLCHAIN: material.cert_path,
        Source.PRIVKEY: material.key_path,
    }
    check_size(material.payload(source), str(files[source]), f"{source.value} payload")


def check_material(material: CertificateMaterial, sans: Sequence[str], now: dt.datetime) -> None:
    """Run every check in a fixed order; the first failure raises."""
    cert_file = str(material.cert_path)
    key_file = str(material.key_path)
    chain_file = str(material.chain_path or material.cert_path)
    # Fullchain is the largest certificate payload; the chain alone may be empty.
    for source in (Source.CERT, Source.FULLCHAIN, Source.PRIVKEY):
        check_payload(material, source)
    leaf = parse_certificate(material.cert_pem, cert_file)
    chain = parse_chain(material.chain_pem, chain_file)
    key = parse_private_key(material.key_pem, key_file)
    check_key_matches(leaf, key, key_file)
    check_chain(leaf, chain, chain_file)
    info = info_of(leaf)
    check_validity(info, now, cert_file)
    check_sans(info, sans, cert_file)


def expiry_status(
    info: CertificateInfo, now: dt.datetime, warn_days: int, error_days: int
) -> ExpiryStatus:
    """ERROR with fewer than `error_days` left (or expired), WARN under `warn_days`."""
    left = info.days_left(now)
    if left < error_days:
        return ExpiryStatus.ERROR
    if left < warn_days:
        return ExpiryStatus.WARN
    return ExpiryStatus.OK
