"""Where private key bytes must never be: outputs, world- or group-readable files, configs.

A fault test gathers every private key it made (`KeyLeaks(keys)`), then scans the tool's
stdout and stderr, a folder tree (the test's whole tmp_path: state_dir, journal, files
targets, lineages) and the Docker configs of the test. A file may hold key bytes only if
its mode gives nothing to group and others (0600, 0400): certbot's own privkey files pass,
a journal of 0644 holding a `files` target's previous bytes does not.

What counts as key bytes, for the EC and RSA keys the tests use: the private numbers raw,
in hex, or inside the key's PEM text (line breaks and JSON's `\\n` escapes ignored), the
whole PEM file base64-encoded (as a journal might store it), and, for any key at all, a
`PRIVATE KEY-----` marker. The PEM's first base64 characters are the same for every key of
a curve and are not used as needles.
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

MARKER = b"PRIVATE KEY-----"
NEEDLE = 20  # base64 characters: 120 bits of a private number
MAX_FILE_BYTES = 8 * 1024 * 1024


def _numbers(key_pem: bytes) -> list[bytes]:
    key = serialization.load_pem_private_key(key_pem, password=None)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        value = key.private_numbers().private_value
        return [value.to_bytes((key.curve.key_size + 7) // 8, "big")]
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.private_numbers()
        return [n.to_bytes((n.bit_length() + 7) // 8, "big") for n in (numbers.d, numbers.p)]
    raise TypeError(f"no needles for a {type(key).__name__}")


def _flatten(data: bytes) -> bytes:
    """PEM text as one line, as it reads in a JSON string or a joined log line."""
    return data.replace(b"\\n", b"").replace(b"\r", b"").replace(b"\n", b"")


def needles(key_pem: bytes) -> list[bytes]:
    """Byte strings that appear wherever this key's secret does."""
    found: list[bytes] = []
    body = b"".join(line for line in key_pem.splitlines() if not line.startswith(b"-----"))
    der = base64.b64decode(body)
    for number in _numbers(key_pem):
        found += [number, number.hex().encode(), number.hex().upper().encode()]
        offset = der.find(number)
        if offset >= 0:  # base64 characters made only of this number's bytes
            first = (offset + 2) // 3 * 4
            found.append(body[first : first + NEEDLE])
    whole = base64.b64encode(key_pem)
    middle = len(whole) // 2
    found.append(whole[middle : middle + NEEDLE])
    return found


class KeyLeaks:
    def __init__(self, key_pems: Iterable[bytes]) -> None:
        self._needles = [n for pem in key_pems for n in needles(pem)]

    def in_bytes(self, data: bytes) -> bool:
        flat = _flatten(data)
        return MARKER in data or any(n in data or n in flat for n in self._needles)

    def outputs(self, texts: Mapping[str, str | bytes]) -> list[str]:
        """Names of the outputs (stdout, stderr, a log) that hold key bytes."""
        return [
            name
            for name, text in texts.items()
            if self.in_bytes(text.encode() if isinstance(text, str) else text)
        ]

    def files(self, root: Path) -> list[str]:
        """Files under `root` readable by group or others that hold key bytes."""
        found: list[str] = []
        for folder, _dirs, names in os.walk(root):
            for name in names:
                path = Path(folder) / name
                info = path.lstat()
                if not stat.S_ISREG(info.st_mode) or not info.st_mode & 0o077:
                    continue
                with path.open("rb") as handle:
                    data = handle.read(MAX_FILE_BYTES)
                if self.in_bytes(data):
                    found.append(f"{path} (mode {stat.S_IMODE(info.st_mode):04o})")
        return found

    def configs(self, api: object, prefix: str) -> list[str]:
        """Docker configs named `prefix...` whose data holds key bytes (a config is readable
        by anyone who can inspect it; keys belong in secrets)."""
        found: list[str] = []
        for config in api.configs(filters={"name": prefix}):  # type: ignore[attr-defined]
            name = config["Spec"]["Name"]
            if not name.startswith(prefix):
                continue
            data = base64.b64decode(config["Spec"].get("Data", ""))
            if self.in_bytes(data):
                found.append(f"config {name}")
        return found

    def everywhere(
        self, *, outputs: Mapping[str, str | bytes], root: Path, api: object, prefix: str
    ) -> list[str]:
        return [
            *(f"output {o}" for o in self.outputs(outputs)),
            *self.files(root),
            *self.configs(api, prefix),
        ]
