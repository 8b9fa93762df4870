"""Value types of certificate inspection: what a certificate says and what we would ship.

Nothing here touches the file system or parses PEM; `checks` builds `CertificateInfo` and
`files` builds `CertificateMaterial`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from phoenix_certbot.manifest.model import Source

_SECONDS_PER_DAY = 86400.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ExpiryStatus(str, Enum):
    """How close a certificate is to its end: `checks.expiry_status` decides."""

    OK = "ok"
    WARN = "warn"
    ERROR = "error"


def require_aware(now: dt.datetime) -> dt.datetime:
    """Reject naive datetimes: comparing one with the aware UTC validity dates would raise
    a bare TypeError far from the caller that forgot the timezone."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    return now


@dataclass(frozen=True)
class CertificateInfo:
    """The public facts of a leaf certificate. Dates are timezone-aware UTC."""

    subject: str
    issuer: str
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime
    sha256: str  # lowercase hex of the DER leaf
    serial: int

    def days_left(self, now: dt.datetime) -> float:
        """Days until `not_after`; negative once expired."""
        return (self.not_after - require_aware(now)).total_seconds() / _SECONDS_PER_DAY

    def covers(self, name: str) -> bool:
        """Whether a client asking for `name` would accept this certificate.

        An IP address is only matched by an IP SAN (clients never match an IP against a
        DNS SAN, even one spelled the same). A DNS name matches a DNS SAN exactly or a
        wildcard `*.rest` whose `*` stands for exactly one non-empty label.
        """
        ip = _parse_ip(name)
        if ip is not None:
            return any(_parse_ip(candidate) == ip for candidate in self.ip_addresses)
        return _dns_covered(name, self.dns_names)


def _parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _normalise_dns(name: str) -> str:
    # DNS is case-insensitive and "example.com." is the same name as "example.com".
    return name.strip().lower().rstrip(".")


def _dns_covered(name: str, patterns: Iterable[str]) -> bool:
    wanted = _normalise_dns(name)
    if not wanted:
        return False
    first, _, rest = wanted.partition(".")
    for pattern in map(_normalise_dns, patterns):
        if pattern == wanted:
            return True
        # Only a whole leftmost "*" label is a wildcard (partial ones like "w*.x" are not
        # honoured by browsers), and it never spans a dot nor matches the bare parent.
        if pattern.startswith("*.") and rest and first and first != "*" and pattern[2:] == rest:
            return True
    return False


@dataclass(frozen=True)
class CertificateMaterial:
    """Everything needed to ship one certificate: canonical PEM, the key, and its facts.

    The PEM bytes are excluded from repr (and so from str, logs and tracebacks that
    format the object): `key_pem` obviously, and the certificate fields too, since a
    material built from a mixed-up file could carry a key there. `info` says what matters.
    """

    name: str
    cert_path: Path
    key_path: Path
    cert_pem: bytes = field(repr=False)  # the leaf only
    chain_pem: bytes = field(repr=False)  # issuers, leaf's issuer first; may be empty
    key_pem: bytes = field(repr=False)
    info: CertificateInfo
    # Where the chain was read from (chain file, fullchain file, or the cert file when it
    # carried the chain); None when there is no chain. Used to name the file in errors.
    chain_path: Path | None = None

    def payload(self, source: Source) -> bytes:
        """The bytes a secret, config or file of kind `source` carries."""
        if source is Source.CERT:
            return self.cert_pem
        if source is Source.CHAIN:
            return self.chain_pem
        if source is Source.FULLCHAIN:
            return self.cert_pem + self.chain_pem
        return self.key_pem

    def payload_sha256(self, source: Source) -> str:
        return hashlib.sha256(self.payload(source)).hexdigest()
