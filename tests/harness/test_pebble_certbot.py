"""certbot gets a real certificate from the session's Pebble."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from phoenix_certbot.certs import check_material, load_material
from phoenix_certbot.errors import SanNotCovered
from phoenix_certbot.manifest.load import lineage_paths
from phoenix_certbot.manifest.model import CertificateEntry, Source
from tests.harness.certbot_runner import Certbot
from tests.harness.pebble import Pebble

pytestmark = pytest.mark.pebble

NAME = "standin.example.test"


def test_certbot_issues_a_lineage_from_pebble(certbot: Certbot, pebble: Pebble) -> None:
    result = certbot.run(
        "certonly",
        "--standalone",
        "--http-01-port", str(certbot.http_port),
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

    # The same lineage through phoenix-cert's own inspection: it resolves live/ to the
    # archive files of one version, and every check passes on what Pebble issued.
    entry = CertificateEntry(name=NAME, sans=(NAME,), paths=lineage_paths(lineage))
    material = load_material(entry)
    check_material(material, entry.sans, dt.datetime.now(dt.timezone.utc))
    assert material.cert_path.name == "cert1.pem" and "archive" in material.cert_path.parts
    assert material.info.sha256 == leaf.fingerprint(hashes.SHA256()).hex()
    assert material.info.dns_names == (NAME,)
    assert material.payload(Source.CHAIN) == (lineage / "chain.pem").read_bytes()
    assert material.payload(Source.FULLCHAIN) == (lineage / "fullchain.pem").read_bytes()
    with pytest.raises(SanNotCovered):
        check_material(material, (NAME, "10.0.0.111"), dt.datetime.now(dt.timezone.utc))
