from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from phoenix_certbot.certs import (
    MAX_PAYLOAD_BYTES,
    ExpiryStatus,
    check_chain,
    check_material,
    check_payload,
    expiry_status,
    info_of,
    parse_certificate,
    parse_certificates,
    parse_chain,
    parse_private_key,
)
from phoenix_certbot.errors import (
    CertExpired,
    CertificateError,
    CertNotYetValid,
    CertParseError,
    ChainBroken,
    KeyMismatch,
    PayloadEmpty,
    PayloadTooLarge,
    SanNotCovered,
)
from phoenix_certbot.manifest.model import Source
from tests.certs.util import assert_no_key, material
from tests.support import pki

CERT = "/certs/web/cert.pem"
KEY = "/certs/web/privkey.pem"
CHAIN = "/certs/web/chain.pem"
SANS = ("web.example.com", "10.0.0.111")


@pytest.fixture(scope="module")
def ca() -> pki.Issued:
    return pki.make_ca()


@pytest.fixture(scope="module")
def leaf(ca: pki.Issued) -> pki.Issued:
    return pki.issue(list(SANS), ca)


def now() -> dt.datetime:
    return pki.utcnow()


def raised(
    exc_class: type[CertificateError], file: str, excinfo: pytest.ExceptionInfo[Exception]
) -> str:
    """Assert the exact class and that the message names the file; return the message."""
    assert type(excinfo.value) is exc_class
    assert isinstance(excinfo.value, CertificateError)
    assert excinfo.value.file == file
    message = str(excinfo.value)
    assert message.startswith(f"{file}: ")
    assert "\n" not in message
    return message


# --- whole material -------------------------------------------------------------------------


def test_valid_pair_with_chain_passes(ca: pki.Issued, leaf: pki.Issued) -> None:
    check_material(material(leaf.cert, leaf.key_pem, [ca.cert]), SANS, now())


def test_self_signed_without_chain_passes() -> None:
    leaf = pki.issue(["web.example.com"])
    check_material(material(leaf.cert, leaf.key_pem), ["web.example.com"], now())


@pytest.mark.parametrize("make_key", [pki.rsa_key, pki.ed25519_key], ids=["rsa", "ed25519"])
def test_non_ec_keys_pass(
    ca: pki.Issued, make_key: Callable[[], CertificateIssuerPrivateKeyTypes]
) -> None:
    leaf = pki.issue_with_key(["web.example.com"], make_key(), ca)
    check_material(material(leaf.cert, leaf.key_pem, [ca.cert]), ["web.example.com"], now())


def test_expired(ca: pki.Issued) -> None:
    when = now()
    leaf = pki.issue(
        ["web.example.com"],
        ca,
        not_before=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
        not_after=dt.datetime(2024, 3, 1, 12, tzinfo=dt.timezone.utc),
    )
    with pytest.raises(CertExpired) as excinfo:
        check_material(material(leaf.cert, leaf.key_pem, [ca.cert]), ["web.example.com"], when)
    assert "2024-03-01T12:00:00Z" in raised(CertExpired, CERT, excinfo)


def test_not_yet_valid(ca: pki.Issued) -> None:
    start = now() + dt.timedelta(days=2)
    leaf = pki.issue(["web.example.com"], ca, not_before=start)
    with pytest.raises(CertNotYetValid) as excinfo:
        check_material(material(leaf.cert, leaf.key_pem, [ca.cert]), ["web.example.com"], now())
    assert start.strftime("%Y-%m-%dT%H:%M:%SZ") in raised(CertNotYetValid, CERT, excinfo)


def test_wrong_key(ca: pki.Issued, leaf: pki.Issued) -> None:
    other = pki.issue(list(SANS), ca)
    with pytest.raises(KeyMismatch) as excinfo:
        check_material(material(leaf.cert, other.key_pem, [ca.cert]), SANS, now())
    raised(KeyMismatch, KEY, excinfo)


def test_rsa_key_for_an_ec_certificate_is_a_mismatch(ca: pki.Issued, leaf: pki.Issued) -> None:
    rsa_pem = pki.issue_with_key(["x"], pki.rsa_key()).key_pem
    with pytest.raises(KeyMismatch) as excinfo:
        check_material(material(leaf.cert, rsa_pem, [ca.cert]), SANS, now())
    raised(KeyMismatch, KEY, excinfo)


def test_missing_sans_are_all_listed(ca: pki.Issued) -> None:
    leaf = pki.issue(["web.example.com"], ca)
    wanted = ["web.example.com", "api.example.com", "10.0.0.5"]
    with pytest.raises(SanNotCovered) as excinfo:
        check_material(material(leaf.cert, leaf.key_pem, [ca.cert]), wanted, now())
    message = raised(SanNotCovered, CERT, excinfo)
    assert "api.example.com, 10.0.0.5" in message
    assert "(it covers: web.example.com)" in message


def test_ip_san_covers_ip_but_dns_san_of_same_text_does_not(ca: pki.Issued) -> None:
    by_ip = pki.issue(["10.0.0.111"], ca)
    check_material(material(by_ip.cert, by_ip.key_pem, [ca.cert]), ["10.0.0.111"], now())
    by_dns = pki.issue_with_key(["10.0.0.111"], pki.ec_key(), ca, dns_only=True)
    assert info_of(by_dns.cert).dns_names == ("10.0.0.111",)
    with pytest.raises(SanNotCovered) as excinfo:
        check_material(material(by_dns.cert, by_dns.key_pem, [ca.cert]), ["10.0.0.111"], now())
    assert "does not cover 10.0.0.111" in raised(SanNotCovered, CERT, excinfo)


def test_wildcard_certificate(ca: pki.Issued) -> None:
    leaf = pki.issue(["*.example.com"], ca)
    mat = material(leaf.cert, leaf.key_pem, [ca.cert])
    check_material(mat, ["a.example.com", "b.example.com"], now())
    with pytest.raises(SanNotCovered) as excinfo:
        check_material(mat, ["a.example.com", "example.com", "x.a.example.com"], now())
    assert "example.com, x.a.example.com" in raised(SanNotCovered, CERT, excinfo)


def test_empty_certificate_payload(leaf: pki.Issued) -> None:
    with pytest.raises(PayloadEmpty) as excinfo:
        check_material(material(leaf.cert, leaf.key_pem, cert_pem=b""), SANS, now())
    raised(PayloadEmpty, CERT, excinfo)


def test_empty_key_payload(leaf: pki.Issued) -> None:
    with pytest.raises(PayloadEmpty) as excinfo:
        check_material(material(leaf.cert, b"  \n"), SANS, now())
    raised(PayloadEmpty, KEY, excinfo)


def test_fullchain_over_docker_limit(ca: pki.Issued) -> None:
    # Each part is under the limit; together (the fullchain secret) they are not.
    leaf = pki.issue_with_key(["web.example.com"], pki.ed25519_key(), ca, padding=300 * 1024)
    big_issuer = pki.issue_with_key(["filler"], pki.ed25519_key(), padding=300 * 1024)
    mat = material(leaf.cert, leaf.key_pem, [big_issuer.cert])
    assert len(mat.cert_pem) < MAX_PAYLOAD_BYTES
    assert len(mat.chain_pem) < MAX_PAYLOAD_BYTES
    with pytest.raises(PayloadTooLarge) as excinfo:
        check_material(mat, ["web.example.com"], now())
    assert "fullchain payload" in raised(PayloadTooLarge, CERT, excinfo)


def test_empty_chain_is_not_a_valid_chain_payload() -> None:
    # Valid material, but Docker refuses an empty secret: callers mounting CHAIN check it.
    own = pki.issue(["web.example.com"])
    with pytest.raises(PayloadEmpty) as excinfo:
        check_payload(material(own.cert, own.key_pem), Source.CHAIN)
    assert "chain payload is empty" in raised(PayloadEmpty, CERT, excinfo)


# --- parsing --------------------------------------------------------------------------------


def test_oversize_file_is_refused_before_parsing() -> None:
    big = pki.issue_with_key(["web.example.com"], pki.ed25519_key(), padding=MAX_PAYLOAD_BYTES)
    assert len(big.cert_pem) > MAX_PAYLOAD_BYTES
    with pytest.raises(PayloadTooLarge) as excinfo:
        parse_certificates(big.cert_pem, CERT)
    assert "512000" in raised(PayloadTooLarge, CERT, excinfo)


def test_limit_is_500_kib() -> None:
    assert MAX_PAYLOAD_BYTES == 500 * 1024


@pytest.mark.parametrize("data", [b"", b"\n\n  \n"])
def test_empty_file(data: bytes) -> None:
    with pytest.raises(PayloadEmpty) as excinfo:
        parse_certificate(data, CERT)
    raised(PayloadEmpty, CERT, excinfo)


def test_garbage_is_a_parse_error_that_does_not_echo_content() -> None:
    with pytest.raises(CertParseError) as excinfo:
        parse_certificate(pki.garbage(), CERT)
    assert "not a certificate" not in raised(CertParseError, CERT, excinfo)


def test_malformed_pem_block() -> None:
    data = b"-----BEGIN CERTIFICATE-----\nnot*base64\n-----END CERTIFICATE-----\n"
    with pytest.raises(CertParseError) as excinfo:
        parse_certificate(data, CERT)
    assert "not*base64" not in raised(CertParseError, CERT, excinfo)


def test_key_where_a_certificate_is_expected(leaf: pki.Issued) -> None:
    with pytest.raises(CertParseError) as excinfo:
        parse_certificate(leaf.key_pem, CERT)
    message = raised(CertParseError, CERT, excinfo)
    assert "private key where a certificate is expected" in message
    assert_no_key(message, leaf.key_pem)


def test_certificate_where_a_key_is_expected(leaf: pki.Issued) -> None:
    with pytest.raises(CertParseError) as excinfo:
        parse_private_key(leaf.cert_pem, KEY)
    assert "a certificate where a private key is expected" in raised(CertParseError, KEY, excinfo)


def test_encrypted_key_is_refused(leaf: pki.Issued) -> None:
    encrypted = leaf.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(CertParseError) as excinfo:
        parse_private_key(encrypted, KEY)
    assert "encrypted" in raised(CertParseError, KEY, excinfo)


def test_corrupt_key_is_refused_without_echo(leaf: pki.Issued) -> None:
    lines = leaf.key_pem.splitlines(keepends=True)
    corrupt = lines[0] + b"AAAA" + lines[1][4:] + b"".join(lines[2:])
    with pytest.raises(CertParseError) as excinfo:
        parse_private_key(corrupt, KEY)
    assert excinfo.value.__cause__ is None and excinfo.value.__suppress_context__
    assert_no_key(raised(CertParseError, KEY, excinfo), leaf.key_pem)


def test_two_keys_in_one_file(leaf: pki.Issued) -> None:
    with pytest.raises(CertParseError) as excinfo:
        parse_private_key(leaf.key_pem + leaf.key_pem, KEY)
    assert "2 private keys" in raised(CertParseError, KEY, excinfo)


def test_parse_certificate_wants_exactly_one(ca: pki.Issued, leaf: pki.Issued) -> None:
    assert parse_certificates(leaf.cert_pem + ca.cert_pem, CERT) == (leaf.cert, ca.cert)
    with pytest.raises(CertParseError) as excinfo:
        parse_certificate(leaf.cert_pem + ca.cert_pem, CERT)
    assert "found 2" in raised(CertParseError, CERT, excinfo)


def test_text_around_pem_blocks_is_tolerated(leaf: pki.Issued) -> None:
    # openssl x509 -text output and CRLF line ends are common in hand-made files.
    noisy = b"subject=CN = web\r\n" + leaf.cert_pem.replace(b"\n", b"\r\n")
    assert parse_certificate(noisy, CERT) == leaf.cert


def test_empty_chain_is_allowed() -> None:
    assert parse_chain(b"", CHAIN) == ()
    assert parse_chain(b"\n", CHAIN) == ()


def test_info_of(ca: pki.Issued, leaf: pki.Issued) -> None:
    info = info_of(leaf.cert)
    assert info.dns_names == ("web.example.com",)
    assert info.ip_addresses == ("10.0.0.111",)
    assert info.subject == "CN=web.example.com"
    assert info.issuer == "CN=phoenix test CA"
    assert info.sha256 == leaf.sha256 and info.sha256 == info.sha256.lower()
    assert info.serial == leaf.cert.serial_number
    assert info.not_before.tzinfo is not None and info.not_after.utcoffset() == dt.timedelta(0)


def test_no_san_extension_means_no_names() -> None:
    leaf = pki.issue([])
    assert info_of(leaf.cert).dns_names == ()
    assert not info_of(leaf.cert).covers("leaf")  # the CN is not a name clients match


# --- chains ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def three_level(ca: pki.Issued) -> tuple[pki.Issued, pki.Issued]:
    inter = pki.make_intermediate(ca)
    return inter, pki.issue(["web.example.com"], inter)


def test_two_link_chain_in_order(
    ca: pki.Issued, three_level: tuple[pki.Issued, pki.Issued]
) -> None:
    inter, leaf = three_level
    check_chain(leaf.cert, [inter.cert, ca.cert], CHAIN)
    check_material(
        material(leaf.cert, leaf.key_pem, [inter.cert, ca.cert]), ["web.example.com"], now()
    )


def test_chain_in_wrong_order(ca: pki.Issued, three_level: tuple[pki.Issued, pki.Issued]) -> None:
    inter, leaf = three_level
    with pytest.raises(ChainBroken) as excinfo:
        check_chain(leaf.cert, [ca.cert, inter.cert], CHAIN)
    message = raised(ChainBroken, CHAIN, excinfo)
    assert "chain link 0 broken: leaf (CN=web.example.com)" in message
    assert "issuer name does not match" in message


def test_second_link_broken(ca: pki.Issued, three_level: tuple[pki.Issued, pki.Issued]) -> None:
    inter, leaf = three_level
    stranger = pki.make_ca("stranger CA")
    with pytest.raises(ChainBroken) as excinfo:
        check_chain(leaf.cert, [inter.cert, stranger.cert], CHAIN)
    assert "chain link 1 broken: chain[0] (CN=phoenix test intermediate)" in raised(
        ChainBroken, CHAIN, excinfo
    )


def test_unrelated_issuer_in_material(leaf: pki.Issued) -> None:
    stranger = pki.make_ca("stranger CA")
    with pytest.raises(ChainBroken) as excinfo:
        check_material(material(leaf.cert, leaf.key_pem, [stranger.cert]), SANS, now())
    assert "CN=stranger CA" in raised(ChainBroken, CHAIN, excinfo)


def test_issuer_with_same_name_but_other_key(leaf: pki.Issued) -> None:
    impostor = pki.make_ca()  # same subject as the real CA, different key
    with pytest.raises(ChainBroken) as excinfo:
        check_chain(leaf.cert, [impostor.cert], CHAIN)
    assert "signature does not verify" in raised(ChainBroken, CHAIN, excinfo)


# --- expiry status --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "status"),
    [
        (60, ExpiryStatus.OK),
        (30.5, ExpiryStatus.OK),
        (29.9, ExpiryStatus.WARN),
        (7.5, ExpiryStatus.WARN),
        (6.9, ExpiryStatus.ERROR),
        (-1, ExpiryStatus.ERROR),
    ],
)
def test_expiry_status(leaf: pki.Issued, days: float, status: ExpiryStatus) -> None:
    info = info_of(leaf.cert)
    at = info.not_after - dt.timedelta(days=days)
    assert expiry_status(info, at, warn_days=30, error_days=7) is status


# --- no key material in any message ---------------------------------------------------------


def test_no_message_contains_key_material(ca: pki.Issued, leaf: pki.Issued) -> None:
    other = pki.issue(list(SANS), ca)
    expired = pki.issue(
        list(SANS),
        ca,
        not_after=now() - dt.timedelta(days=1),
        not_before=now() - dt.timedelta(days=9),
    )
    key = leaf.key_pem
    cases = [
        material(leaf.cert, other.key_pem, [ca.cert]),  # mismatch
        material(leaf.cert, key, [ca.cert], cert_pem=key),  # key as the certificate
        material(leaf.cert, key, [ca.cert], chain_pem=key),  # key as the chain
        material(leaf.cert, key[: len(key) // 2], [ca.cert]),  # truncated key
        material(leaf.cert, key, [pki.make_ca("x").cert]),  # broken chain
        material(expired.cert, expired.key_pem, [ca.cert]),
        material(leaf.cert, key, [ca.cert]),  # SAN below
    ]
    messages = []
    for mat in cases:
        with pytest.raises(CertificateError) as excinfo:
            check_material(mat, [*SANS, "missing.example.com"], now())
        messages.append(str(excinfo.value))
        assert_no_key(repr(mat), mat.key_pem)
    assert len(set(messages)) == len(cases)
    for message in messages:
        assert_no_key(message, key)
        assert_no_key(message, other.key_pem)
