"""certbot gets a real certificate from the session's Pebble."""

from __future__ import annotations

import pytest
from cryptography import x509

from tests.harness.certbot_runner import Certbot
from tests.harness.pebble import HTTP_PORT, Pebble

pytestmark = pytest.mark.pebble

NAME = "standin.example.test"


def test_certbot_issues_a_lineage_from_pebble(certbot: Certbot, pebble: Pebble) -> None:
    result = certbot.run(
        "certonly",
        "--standalone",
        "--http-01-port", str(HTTP_PORT),
        # Pebble skips validation here; keep certbot's own listener on loopback all the same.
        "--http-01-address", "127.0.0.1",
        "-d", NAME,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr

    lineage = certbot.live / NAME
    leaf = x509.load_pem_x509_certificate((lineage / "cert.pem").read_bytes())
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [NAME]

    intermediate = x509.load_pem_x509_certificate(pebble.intermediate_pem())
    assert leaf.issuer == intermediate.subject
    leaf.verify_directly_issued_by(intermediate)
    root = x509.load_pem_x509_certificate(pebble.root_pem())
    intermediate.verify_directly_issued_by(root)
    assert x509.load_pem_x509_certificate((lineage / "chain.pem").read_bytes()) == intermediate
