from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from phoenix_certbot.certs import CertificateInfo
from phoenix_certbot.manifest.model import Source
from tests.certs.util import assert_no_key, material
from tests.support import pki

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)


def info(dns: tuple[str, ...] = (), ips: tuple[str, ...] = ()) -> CertificateInfo:
    return CertificateInfo(
        subject="CN=x",
        issuer="CN=ca",
        dns_names=dns,
        ip_addresses=ips,
        not_before=NOW - dt.timedelta(days=10),
        not_after=NOW + dt.timedelta(days=30, hours=12),
        sha256="00" * 32,
        serial=1,
    )


def test_exact_dns_name_is_covered_case_and_trailing_dot_insensitive() -> None:
    cert = info(dns=("Web.Example.com",))
    assert cert.covers("web.example.com")
    assert cert.covers("WEB.example.com.")
    assert not cert.covers("example.com")
    assert not cert.covers("")


@pytest.mark.parametrize(
    ("name", "covered"),
    [
        ("a.example.com", True),
        ("A.EXAMPLE.COM", True),
        ("example.com", False),  # the wildcard never matches the bare parent
        ("a.b.example.com", False),  # nor more than one label
        (".example.com", False),  # nor an empty label
        ("a.example.org", False),
        ("*.example.com", True),  # asking for the wildcard itself
    ],
)
def test_wildcard_covers_exactly_one_label(name: str, covered: bool) -> None:
    assert info(dns=("*.example.com",)).covers(name) is covered


def test_partial_wildcard_is_literal() -> None:
    cert = info(dns=("w*.example.com",))
    assert not cert.covers("www.example.com")
    assert cert.covers("w*.example.com")


def test_wildcard_name_is_not_covered_by_a_concrete_name() -> None:
    assert not info(dns=("a.example.com",)).covers("*.example.com")


def test_ip_is_covered_only_by_an_ip_san() -> None:
    assert info(ips=("10.0.0.111",)).covers("10.0.0.111")
    # Same text as a DNS SAN: clients do not accept that for an IP, so neither do we.
    assert not info(dns=("10.0.0.111",)).covers("10.0.0.111")
    assert not info(ips=("10.0.0.111",)).covers("10.0.0.11")


def test_ipv6_compares_as_address_not_text() -> None:
    assert info(ips=("2001:db8::1",)).covers("2001:0db8:0:0:0:0:0:1")


def test_days_left_is_fractional_and_negative_after_expiry() -> None:
    cert = info()
    assert cert.days_left(NOW) == pytest.approx(30.5)
    assert cert.days_left(NOW + dt.timedelta(days=31)) == pytest.approx(-0.5)


def test_days_left_rejects_naive_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        info().days_left(dt.datetime(2030, 1, 1))  # naive on purpose


def test_payloads_and_their_hashes() -> None:
    ca = pki.make_ca()
    leaf = pki.issue(["web.example.com"], ca)
    mat = material(leaf.cert, leaf.key_pem, [ca.cert])
    assert mat.payload(Source.CERT) == leaf.cert_pem
    assert mat.payload(Source.CHAIN) == ca.cert_pem
    assert mat.payload(Source.FULLCHAIN) == leaf.cert_pem + ca.cert_pem
    assert mat.payload(Source.PRIVKEY) == leaf.key_pem
    for source in Source:
        assert mat.payload_sha256(source) == hashlib.sha256(mat.payload(source)).hexdigest()


def test_repr_and_str_never_show_the_key() -> None:
    leaf = pki.issue(["web.example.com"])
    mat = material(leaf.cert, leaf.key_pem)
    assert "key_pem" not in repr(mat)
    assert_no_key(repr(mat), leaf.key_pem)
    assert_no_key(str(mat), leaf.key_pem)
    assert "web.example.com" in repr(mat)  # the rest is still there to debug with
