"""Shared helpers for the certificate tests: build materials in memory, spot leaked keys."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cryptography import x509

from phoenix_certbot.certs import CertificateMaterial, info_of, to_pem


def material(
    cert: x509.Certificate,
    key_pem: bytes,
    chain: Sequence[x509.Certificate] = (),
    *,
    cert_pem: bytes | None = None,
    chain_pem: bytes | None = None,
) -> CertificateMaterial:
    """A material as `load_material` would build it, without touching the disk."""
    return CertificateMaterial(
        name="web",
        cert_path=Path("/certs/web/cert.pem"),
        key_path=Path("/certs/web/privkey.pem"),
        cert_pem=to_pem([cert]) if cert_pem is None else cert_pem,
        chain_pem=to_pem(chain) if chain_pem is None else chain_pem,
        key_pem=key_pem,
        info=info_of(cert),
        chain_path=Path("/certs/web/chain.pem") if chain else None,
    )


def key_fragments(key_pem: bytes, width: int = 12) -> list[str]:
    """Overlapping base64 slices of the key body: any one in a message means a leak."""
    body = b"".join(line for line in key_pem.splitlines() if not line.startswith(b"-----"))
    text = body.decode()
    return [text[i : i + width] for i in range(0, len(text) - width, width // 2)]


def assert_no_key(text: str, key_pem: bytes) -> None:
    assert "PRIVATE KEY" not in text
    leaked = [fragment for fragment in key_fragments(key_pem) if fragment in text]
    assert not leaked, f"key material in text: {leaked[:3]}"
