from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from phoenix_certbot.certs import MAX_PAYLOAD_BYTES, check_material, load_material
from phoenix_certbot.certs import files as certs_files
from phoenix_certbot.errors import (
    CertFileMissing,
    CertificateError,
    CertParseError,
    ChainBroken,
    KeyMismatch,
    PayloadEmpty,
    PayloadTooLarge,
)
from phoenix_certbot.manifest.model import CertificateEntry, CertificatePaths, Source
from tests.certs.util import assert_no_key
from tests.support import pki

SANS = ("web.example.com",)


@pytest.fixture(scope="module")
def ca() -> pki.Issued:
    return pki.make_ca()


@pytest.fixture(scope="module")
def leaf(ca: pki.Issued) -> pki.Issued:
    return pki.issue(list(SANS), ca)


def lineage_entry(files: pki.LineageFiles) -> CertificateEntry:
    paths = CertificatePaths(cert=files.cert, key=files.privkey, lineage=files.live)
    return CertificateEntry(name=files.live.name, sans=SANS, paths=paths)


def explicit_entry(
    cert: Path, key: Path, chain: Path | None = None, fullchain: Path | None = None
) -> CertificateEntry:
    paths = CertificatePaths(cert=cert, key=key, chain=chain, fullchain=fullchain)
    return CertificateEntry(name="internal", sans=SANS, paths=paths)


def raised(
    exc_class: type[CertificateError], file: Path, excinfo: pytest.ExceptionInfo[Exception]
) -> str:
    assert type(excinfo.value) is exc_class
    assert isinstance(excinfo.value, CertificateError)
    assert excinfo.value.file == str(file)
    return str(excinfo.value)


def repoint(link: Path, target_name: str) -> None:
    link.unlink()
    link.symlink_to(Path("..") / ".." / "archive" / link.parent.name / target_name)


# --- certbot lineages -----------------------------------------------------------------------


def test_lineage_version_1(tmp_path: Path, ca: pki.Issued, leaf: pki.Issued) -> None:
    files = pki.write_lineage(tmp_path, "web", leaf, ca)
    mat = load_material(lineage_entry(files))
    assert mat.name == "web"
    assert mat.info.sha256 == leaf.sha256
    assert mat.cert_path == tmp_path / "archive" / "web" / "cert1.pem"  # the resolved file
    assert mat.key_path == tmp_path / "archive" / "web" / "privkey1.pem"
    assert mat.chain_path == tmp_path / "archive" / "web" / "chain1.pem"
    assert mat.payload(Source.CERT) == leaf.cert_pem
    assert mat.payload(Source.CHAIN) == ca.cert_pem
    assert mat.payload(Source.FULLCHAIN) == files.fullchain.read_bytes()
    assert mat.payload(Source.PRIVKEY) == leaf.key_pem
    check_material(mat, SANS, pki.utcnow())


def test_lineage_reads_the_version_live_points_at(tmp_path: Path, ca: pki.Issued) -> None:
    old, new = pki.issue(list(SANS), ca), pki.issue(list(SANS), ca)
    pki.write_lineage(tmp_path, "web", old, ca, version=1)
    files = pki.write_lineage(tmp_path, "web", new, ca, version=2)
    mat = load_material(lineage_entry(files))
    assert mat.info.sha256 == new.sha256
    assert mat.key_pem == new.key_pem
    assert mat.cert_path.name == "cert2.pem"
    check_material(mat, SANS, pki.utcnow())


def test_lineage_with_reused_key(tmp_path: Path, ca: pki.Issued, leaf: pki.Issued) -> None:
    # certbot --reuse-key: archive/privkey2.pem is a link to privkey1.pem, which is still
    # version 2 as far as the lineage is concerned.
    pki.write_lineage(tmp_path, "web", leaf, ca, version=1)
    renewed = pki.Issued(pki.issue_with_key(list(SANS), leaf.key, ca).cert, leaf.key)
    files = pki.write_lineage(tmp_path, "web", renewed, ca, version=2)
    archived = tmp_path / "archive" / "web" / "privkey2.pem"
    archived.unlink()
    archived.symlink_to("privkey1.pem")
    mat = load_material(lineage_entry(files), attempts=1)
    assert mat.info.sha256 == renewed.sha256
    assert mat.key_path == tmp_path / "archive" / "web" / "privkey1.pem"
    check_material(mat, SANS, pki.utcnow())


def test_inconsistent_lineage_is_refused_after_bounded_retries(
    tmp_path: Path, ca: pki.Issued, monkeypatch: pytest.MonkeyPatch
) -> None:
    pki.write_lineage(tmp_path, "web", pki.issue(list(SANS), ca), ca, version=1)
    files = pki.write_lineage(tmp_path, "web", pki.issue(list(SANS), ca), ca, version=2)
    repoint(files.privkey, "privkey1.pem")
    sleeps: list[float] = []
    monkeypatch.setattr(certs_files, "_sleep", sleeps.append)
    with pytest.raises(CertificateError) as excinfo:
        load_material(lineage_entry(files), attempts=3, delay_s=0.5)
    message = raised(CertificateError, files.live, excinfo)
    assert "cert=2, chain=2, fullchain=2, privkey=1" in message
    assert sleeps == [0.5, 0.5]  # bounded: attempts - 1 waits
    assert_no_key(message, files.privkey.read_bytes())


def test_lineage_caught_mid_update_settles(
    tmp_path: Path, ca: pki.Issued, monkeypatch: pytest.MonkeyPatch
) -> None:
    pki.write_lineage(tmp_path, "web", pki.issue(list(SANS), ca), ca, version=1)
    new = pki.issue(list(SANS), ca)
    files = pki.write_lineage(tmp_path, "web", new, ca, version=2)
    # certbot has re-pointed cert and chain, removed fullchain, and not reached privkey yet.
    repoint(files.privkey, "privkey1.pem")
    repoint(files.fullchain, "fullchain1.pem")
    files.fullchain.unlink()

    def certbot_finishes(_: float) -> None:
        files.fullchain.symlink_to(Path("..") / ".." / "archive" / "web" / "fullchain2.pem")
        repoint(files.privkey, "privkey2.pem")

    monkeypatch.setattr(certs_files, "_sleep", certbot_finishes)
    mat = load_material(lineage_entry(files))
    assert mat.info.sha256 == new.sha256
    assert mat.key_pem == new.key_pem


def test_lineage_without_chain_pem_uses_fullchain(
    tmp_path: Path, ca: pki.Issued, leaf: pki.Issued
) -> None:
    files = pki.write_lineage(tmp_path, "web", leaf, ca)
    files.chain.unlink()
    mat = load_material(lineage_entry(files))
    assert mat.chain_pem == ca.cert_pem
    assert mat.chain_path == tmp_path / "archive" / "web" / "fullchain1.pem"


def test_lineage_of_plain_files_is_read_without_version_check(
    tmp_path: Path, ca: pki.Issued, leaf: pki.Issued
) -> None:
    # Someone copied the files instead of the links: nothing to compare, still usable.
    files = pki.write_lineage(tmp_path, "web", leaf, ca)
    for link in (files.cert, files.chain, files.fullchain, files.privkey):
        data = link.read_bytes()
        link.unlink()
        link.write_bytes(data)
    mat = load_material(lineage_entry(files))
    assert mat.cert_path == files.cert
    assert mat.info.sha256 == leaf.sha256


def test_lineage_missing_cert_link(
    tmp_path: Path, ca: pki.Issued, leaf: pki.Issued, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = pki.write_lineage(tmp_path, "web", leaf, ca)
    files.cert.unlink()
    monkeypatch.setattr(certs_files, "_sleep", lambda _: None)
    with pytest.raises(CertFileMissing) as excinfo:
        load_material(lineage_entry(files))
    raised(CertFileMissing, files.cert, excinfo)


def test_lineage_dangling_link_names_link_and_target(
    tmp_path: Path, ca: pki.Issued, leaf: pki.Issued, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = pki.write_lineage(tmp_path, "web", leaf, ca)
    (tmp_path / "archive" / "web" / "chain1.pem").unlink()
    monkeypatch.setattr(certs_files, "_sleep", lambda _: None)
    with pytest.raises(CertFileMissing) as excinfo:
        load_material(lineage_entry(files))
    message = raised(CertFileMissing, files.chain, excinfo)
    assert "link target " + str(tmp_path / "archive" / "web" / "chain1.pem") in message


def test_lineage_directory_missing(tmp_path: Path) -> None:
    live = tmp_path / "live" / "nope"
    entry = CertificateEntry(
        name="nope",
        sans=SANS,
        paths=CertificatePaths(cert=live / "cert.pem", key=live / "privkey.pem", lineage=live),
    )
    with pytest.raises(CertFileMissing) as excinfo:
        load_material(entry)
    raised(CertFileMissing, live, excinfo)


def test_lineage_fullchain_not_matching_leaf(tmp_path: Path, ca: pki.Issued) -> None:
    files = pki.write_lineage(tmp_path, "web", pki.issue(list(SANS), ca), ca)
    target = tmp_path / "archive" / "web" / "fullchain1.pem"
    target.write_bytes(pki.issue(list(SANS), ca).cert_pem + ca.cert_pem)
    with pytest.raises(ChainBroken) as excinfo:
        load_material(lineage_entry(files))
    raised(ChainBroken, target, excinfo)


def test_lineage_chain_and_fullchain_disagree(
    tmp_path: Path, ca: pki.Issued, leaf: pki.Issued
) -> None:
    files = pki.write_lineage(tmp_path, "web", leaf, ca)
    target = tmp_path / "archive" / "web" / "fullchain1.pem"
    target.write_bytes(leaf.cert_pem + pki.make_ca("other").cert_pem)
    with pytest.raises(ChainBroken) as excinfo:
        load_material(lineage_entry(files))
    raised(ChainBroken, target, excinfo)


# --- explicit paths (internal CA) ----------------------------------------------------------


def test_explicit_separate_files(tmp_path: Path, ca: pki.Issued, leaf: pki.Issued) -> None:
    (tmp_path / "c.pem").write_bytes(leaf.cert_pem)
    (tmp_path / "k.pem").write_bytes(leaf.key_pem)
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    entry = explicit_entry(tmp_path / "c.pem", tmp_path / "k.pem", chain=tmp_path / "ca.pem")
    mat = load_material(entry)
    assert (mat.cert_pem, mat.chain_pem, mat.key_pem) == (leaf.cert_pem, ca.cert_pem, leaf.key_pem)
    assert mat.chain_path == tmp_path / "ca.pem"
    check_material(mat, SANS, pki.utcnow())


def test_explicit_combined_cert_and_chain(tmp_path: Path, ca: pki.Issued, leaf: pki.Issued) -> None:
    inter = pki.make_intermediate(ca)
    leaf = pki.issue(list(SANS), inter)
    (tmp_path / "bundle.pem").write_bytes(leaf.cert_pem + inter.cert_pem + ca.cert_pem)
    (tmp_path / "k.pem").write_bytes(leaf.key_pem)
    mat = load_material(explicit_entry(tmp_path / "bundle.pem", tmp_path / "k.pem"))
    assert mat.cert_pem == leaf.cert_pem
    assert mat.chain_pem == inter.cert_pem + ca.cert_pem
    assert mat.chain_path == tmp_path / "bundle.pem"
    check_material(mat, SANS, pki.utcnow())


def test_explicit_leaf_only_has_empty_chain(tmp_path: Path) -> None:
    own = pki.issue(list(SANS))
    (tmp_path / "c.pem").write_bytes(own.cert_pem)
    (tmp_path / "k.pem").write_bytes(own.key_pem)
    mat = load_material(explicit_entry(tmp_path / "c.pem", tmp_path / "k.pem"))
    assert mat.chain_pem == b""
    assert mat.chain_path is None
    check_material(mat, SANS, pki.utcnow())


def test_explicit_combined_file_disagreeing_with_chain_path(
    tmp_path: Path, ca: pki.Issued, leaf: pki.Issued
) -> None:
    (tmp_path / "bundle.pem").write_bytes(leaf.cert_pem + ca.cert_pem)
    (tmp_path / "k.pem").write_bytes(leaf.key_pem)
    (tmp_path / "other.pem").write_bytes(pki.make_ca("other").cert_pem)
    entry = explicit_entry(tmp_path / "bundle.pem", tmp_path / "k.pem", tmp_path / "other.pem")
    with pytest.raises(ChainBroken) as excinfo:
        load_material(entry)
    raised(ChainBroken, tmp_path / "bundle.pem", excinfo)


def test_canonical_pem_ignores_crlf_and_comments(
    tmp_path: Path, ca: pki.Issued, leaf: pki.Issued
) -> None:
    noisy = b"# issued by hand\r\n" + (leaf.cert_pem + ca.cert_pem).replace(b"\n", b"\r\n")
    (tmp_path / "c.pem").write_bytes(noisy)
    (tmp_path / "k.pem").write_bytes(leaf.key_pem)
    mat = load_material(explicit_entry(tmp_path / "c.pem", tmp_path / "k.pem"))
    assert mat.payload(Source.FULLCHAIN) == leaf.cert_pem + ca.cert_pem


def test_key_bytes_are_kept_verbatim(tmp_path: Path) -> None:
    # Re-encoding could turn a PKCS#1 "RSA PRIVATE KEY" some server insists on into PKCS#8.
    key = pki.rsa_key()
    own = pki.issue_with_key(list(SANS), key)
    pkcs1 = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    (tmp_path / "c.pem").write_bytes(own.cert_pem)
    (tmp_path / "k.pem").write_bytes(pkcs1)
    mat = load_material(explicit_entry(tmp_path / "c.pem", tmp_path / "k.pem"))
    assert mat.key_pem == pkcs1
    check_material(mat, SANS, pki.utcnow())


def test_explicit_missing_key_file(tmp_path: Path, leaf: pki.Issued) -> None:
    (tmp_path / "c.pem").write_bytes(leaf.cert_pem)
    with pytest.raises(CertFileMissing) as excinfo:
        load_material(explicit_entry(tmp_path / "c.pem", tmp_path / "nope.pem"))
    assert "file not found" in raised(CertFileMissing, tmp_path / "nope.pem", excinfo)


def test_explicit_path_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(CertFileMissing) as excinfo:
        load_material(explicit_entry(tmp_path, tmp_path / "k.pem"))
    assert "directory" in raised(CertFileMissing, tmp_path, excinfo)


def test_explicit_garbage_cert(tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_bytes(pki.garbage(4096))
    with pytest.raises(CertParseError) as excinfo:
        load_material(explicit_entry(tmp_path / "c.pem", tmp_path / "k.pem"))
    raised(CertParseError, tmp_path / "c.pem", excinfo)


def test_explicit_empty_cert(tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_bytes(b"")
    with pytest.raises(PayloadEmpty) as excinfo:
        load_material(explicit_entry(tmp_path / "c.pem", tmp_path / "k.pem"))
    raised(PayloadEmpty, tmp_path / "c.pem", excinfo)


def test_explicit_oversize_cert_file(tmp_path: Path, leaf: pki.Issued) -> None:
    (tmp_path / "c.pem").write_bytes(leaf.cert_pem + b"\n" * (MAX_PAYLOAD_BYTES * 3))
    with pytest.raises(PayloadTooLarge) as excinfo:
        load_material(explicit_entry(tmp_path / "c.pem", tmp_path / "k.pem"))
    raised(PayloadTooLarge, tmp_path / "c.pem", excinfo)


def test_key_swapped_with_cert_never_leaks(tmp_path: Path, leaf: pki.Issued) -> None:
    # The classic mix-up: the key file given as the certificate, and the other way round.
    (tmp_path / "c.pem").write_bytes(leaf.cert_pem)
    (tmp_path / "k.pem").write_bytes(leaf.key_pem)
    with pytest.raises(CertParseError) as excinfo:
        load_material(explicit_entry(tmp_path / "k.pem", tmp_path / "c.pem"))
    assert_no_key(raised(CertParseError, tmp_path / "k.pem", excinfo), leaf.key_pem)


def test_wrong_key_file_is_named_after_load(
    tmp_path: Path, ca: pki.Issued, leaf: pki.Issued
) -> None:
    other = pki.issue(list(SANS), ca)
    (tmp_path / "c.pem").write_bytes(leaf.cert_pem + ca.cert_pem)
    (tmp_path / "k.pem").write_bytes(other.key_pem)
    mat = load_material(explicit_entry(tmp_path / "c.pem", tmp_path / "k.pem"))
    with pytest.raises(KeyMismatch) as excinfo:
        check_material(mat, SANS, pki.utcnow())
    message = raised(KeyMismatch, tmp_path / "k.pem", excinfo)
    assert_no_key(message, other.key_pem)
    assert_no_key(repr(mat), other.key_pem)
