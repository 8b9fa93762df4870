"""Certificates made on the fly for tests: a CA, leaves signed by it, self-signed leaves.

Every test that needs a certificate makes its own here, so nothing depends on files that
could expire in the repository.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def sha256(self) -> str:
        return self.cert.fingerprint(hashes.SHA256()).hex()


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def make_ca(common_name: str = "phoenix test CA") -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = utcnow()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def issue(
    sans: list[str] | tuple[str, ...],
    ca: Issued | None = None,
    *,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    common_name: str | None = None,
) -> Issued:
    """A leaf for `sans`, signed by `ca` (self-signed when `ca` is None)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = utcnow()
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, common_name or (sans[0] if sans else "leaf"))]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.cert.subject if ca else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(hours=1))
        .not_valid_after(not_after or now + dt.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_san(s) for s in sans]), critical=False
        )
    cert = builder.sign(ca.key if ca else key, hashes.SHA256())
    return Issued(cert, key)


@dataclass(frozen=True)
class LineageFiles:
    live: Path
    cert: Path
    chain: Path
    fullchain: Path
    privkey: Path


def write_lineage(
    config_dir: Path, name: str, leaf: Issued, ca: Issued, version: int = 1
) -> LineageFiles:
    """Lay out files the way certbot does: archive/NAME/certN.pem and live/NAME/ symlinks."""
    archive = config_dir / "archive" / name
    live = config_dir / "live" / name
    archive.mkdir(parents=True, exist_ok=True)
    live.mkdir(parents=True, exist_ok=True)
    payloads = {
        "cert": leaf.cert_pem,
        "chain": ca.cert_pem,
        "fullchain": leaf.cert_pem + ca.cert_pem,
        "privkey": leaf.key_pem,
    }
    for kind, data in payloads.items():
        target = archive / f"{kind}{version}.pem"
        target.write_bytes(data)
        if kind == "privkey":
            target.chmod(0o600)
        link = live / f"{kind}.pem"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(Path("..") / ".." / "archive" / name / f"{kind}{version}.pem")
    return LineageFiles(
        live, live / "cert.pem", live / "chain.pem", live / "fullchain.pem", live / "privkey.pem"
    )


# --- Additions for certificate-inspection tests (keys other than EC, intermediates, bulk) ---

# An arbitrary private-enterprise OID for a non-critical filler extension.
_PADDING_OID = x509.ObjectIdentifier("1.3.6.1.4.1.55555.1")


@dataclass(frozen=True)
class KeyedIssued:
    """Like `Issued`, for any key type (`Issued.key` is typed as an EC key)."""

    cert: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def ed25519_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def issue_with_key(
    sans: list[str] | tuple[str, ...],
    key: CertificateIssuerPrivateKeyTypes,
    ca: Issued | None = None,
    *,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    padding: int = 0,
    dns_only: bool = False,
) -> KeyedIssued:
    """A leaf for `sans` with the given key, signed by `ca` (self-signed when None).

    `padding` adds a filler extension of that many bytes, to make oversize certificates.
    `dns_only` makes every SAN a DNS name, even one spelled like an IP address.
    """
    now = utcnow()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, sans[0] if sans else "leaf")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.cert.subject if ca else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(hours=1))
        .not_valid_after(not_after or now + dt.timedelta(days=90))
    )
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(s) if dns_only else _san(s) for s in sans]),
            critical=False,
        )
    if padding:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(_PADDING_OID, b"\0" * padding), critical=False
        )
    signer: CertificateIssuerPrivateKeyTypes = ca.key if ca else key
    # Ed25519/Ed448 sign without a separate hash; every other key type takes SHA-256.
    prehashed = not isinstance(signer, ed25519.Ed25519PrivateKey)
    return KeyedIssued(builder.sign(signer, hashes.SHA256() if prehashed else None), key)


def make_intermediate(ca: Issued, common_name: str = "phoenix test intermediate") -> Issued:
    """A CA certificate signed by `ca`, for chains longer than one link."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = utcnow()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1825))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca.key, hashes.SHA256())
    )
    return Issued(cert, key)


def garbage(size: int = 64) -> bytes:
    """Bytes that are neither PEM nor DER (deterministic; includes NUL and high bytes)."""
    return (b"not a certificate \x00\xff " * (size // 20 + 1))[:size]
