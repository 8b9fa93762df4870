"""The key-leak scanner on made-up outputs and files (pure: no Docker)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from tests.support import pki
from tests.support.leaks import KeyLeaks

KEY = pki.issue(["leak.example.test"]).key_pem
OTHER = pki.issue(["other.example.test"]).key_pem
RSA = pki.issue_with_key(["rsa.example.test"], pki.rsa_key()).key_pem


def test_the_pem_a_json_string_and_base64_of_the_file_are_found() -> None:
    leaks = KeyLeaks([KEY])
    body = b"".join(KEY.splitlines()[1:-1])
    assert leaks.in_bytes(KEY)
    assert leaks.in_bytes(json.dumps({"previous": KEY.decode()}).encode().replace(b"-----", b""))
    assert leaks.in_bytes(b"log: " + body[40:100])  # a piece of it, without the markers
    assert leaks.in_bytes(json.dumps({"b": base64.b64encode(KEY).decode()}).encode())


def test_raw_and_hex_private_numbers_are_found_for_ec_and_rsa() -> None:
    for pem in (KEY, RSA):
        key = serialization.load_pem_private_key(pem, password=None)
        der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        leaks = KeyLeaks([pem])
        assert leaks.in_bytes(b"\x00" + der + b"\x00")
        assert leaks.in_bytes(der.hex().encode())


def test_other_material_is_not_a_leak() -> None:
    leaks = KeyLeaks([KEY])
    issued = pki.issue(["x.example.test"])
    assert not leaks.in_bytes(issued.cert_pem)
    assert not leaks.in_bytes(OTHER.replace(b"PRIVATE KEY-----", b""))
    # Every P-256 PKCS#8 key starts with the same base64: that prefix is no needle.
    assert not leaks.in_bytes(b"".join(KEY.splitlines()[1:2])[:40])


def test_any_private_key_marker_is_a_leak_in_outputs() -> None:
    leaks = KeyLeaks([KEY])
    assert leaks.outputs({"stdout": "ok", "stderr": OTHER.decode()}) == ["stderr"]


def test_files_only_count_when_group_or_others_can_read_them(tmp_path: Path) -> None:
    leaks = KeyLeaks([KEY])
    private = tmp_path / "journal" / "intent.json"
    private.parent.mkdir()
    private.write_text(json.dumps({"previous": KEY.decode()}))
    private.chmod(0o600)
    readable = tmp_path / "state.json"
    readable.write_text(json.dumps({"leaf": "abc", "k": base64.b64encode(KEY).decode()}))
    readable.chmod(0o644)
    clean = tmp_path / "fullchain.pem"
    clean.write_bytes(pki.issue(["y.example.test"]).cert_pem)
    clean.chmod(0o644)
    (tmp_path / "link.pem").symlink_to(private)
    assert leaks.files(tmp_path) == [f"{readable} (mode 0644)"]
