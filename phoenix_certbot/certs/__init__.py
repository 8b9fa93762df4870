"""Certificate inspection: a pure core (`model`, `checks`) and a file reader (`files`)."""

from __future__ import annotations

from phoenix_certbot.certs.checks import (
    MAX_PAYLOAD_BYTES,
    check_chain,
    check_key_matches,
    check_material,
    check_payload,
    check_sans,
    check_size,
    check_validity,
    expiry_status,
    info_of,
    parse_certificate,
    parse_certificates,
    parse_chain,
    parse_private_key,
    to_pem,
)
from phoenix_certbot.certs.files import load_material
from phoenix_certbot.certs.model import CertificateInfo, CertificateMaterial, ExpiryStatus

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "CertificateInfo",
    "CertificateMaterial",
    "ExpiryStatus",
    "check_chain",
    "check_key_matches",
    "check_material",
    "check_payload",
    "check_sans",
    "check_size",
    "check_validity",
    "expiry_status",
    "info_of",
    "load_material",
    "parse_certificate",
    "parse_certificates",
    "parse_chain",
    "parse_private_key",
    "to_pem",
]
