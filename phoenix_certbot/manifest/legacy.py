"""The legacy manifest: a JSON array read by the old shell script.

Each entry has `common_name`, `sans`, `cert_path`, `key_path`, `owner`, `permissions` and
optionally `guest_id`, `guest_type`, `post_renewal_command`. The command is never given to a
shell: it is split into words only to recognise `docker service update --force SERVICE`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from phoenix_certbot.errors import ManifestError
from phoenix_certbot.manifest.model import (
    CertificateEntry,
    CertificatePaths,
    Manifest,
    ServiceBinding,
    Settings,
)

KNOWN_KEYS = frozenset(
    {
        "common_name",
        "sans",
        "cert_path",
        "key_path",
        "owner",
        "permissions",
        "guest_id",
        "guest_type",
        "post_renewal_command",
    }
)
_SERVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Flags of `docker service update` that do not change what the command means for us.
_HARMLESS_FLAGS = frozenset(
    {"--force", "-d", "--detach", "--detach=true", "--detach=false", "-q", "--quiet"}
)


def forced_service(command: str) -> str | None:
    """SERVICE when `command` is exactly `docker service update --force SERVICE`."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if words[:3] != ["docker", "service", "update"] or "--force" not in words:
        return None
    rest = [w for w in words[3:] if w not in _HARMLESS_FLAGS]
    if len(rest) == 1 and _SERVICE_NAME.match(rest[0]):
        return rest[0]
    return None


def _string(
    entry: dict[str, Any], key: str, where: str, path: Path, required: bool = True
) -> str | None:
    value = entry.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise ManifestError(
            str(path),
            f"{where}.{key}",
            "required non-empty string" if required else "expected a string",
        )
    return value


def parse_legacy(data: Sequence[Any], path: Path, settings: Settings | None = None) -> Manifest:
    entries: list[CertificateEntry] = []
    unknown: list[str] = []
    names: dict[str, int] = {}
    for i, raw in enumerate(data):
        where = f"$[{i}]"
        if not isinstance(raw, dict):
            raise ManifestError(str(path), where, "expected an object")
        name = _string(raw, "common_name", where, path)
        cert = _string(raw, "cert_path", where, path)
        key = _string(raw, "key_path", where, path)
        assert name is not None and cert is not None and key is not None  # noqa: S101
        if name in names:
            raise ManifestError(
                str(path),
                f"{where}.common_name",
                f"duplicate name {name!r} (also at $[{names[name]}])",
            )
        names[name] = i
        sans_raw = raw.get("sans", [name])
        if not isinstance(sans_raw, list) or not all(isinstance(s, str) and s for s in sans_raw):
            raise ManifestError(
                str(path), f"{where}.sans", "expected an array of non-empty strings"
            )
        command = _string(raw, "post_renewal_command", where, path, required=False)
        service = forced_service(command) if command else None
        unknown.extend(f"{where}.{k}" for k in sorted(set(raw) - KNOWN_KEYS))
        entries.append(
            CertificateEntry(
                name=name,
                sans=tuple(sans_raw) or (name,),
                paths=CertificatePaths(cert=Path(cert), key=Path(key)),
                services=(ServiceBinding(service=service),) if service else (),
                owner=_string(raw, "owner", where, path, required=False),
                permissions=_string(raw, "permissions", where, path, required=False),
                legacy_command=command if command and not service else None,
            )
        )
    if not entries:
        raise ManifestError(str(path), "$", "the legacy manifest lists no certificates")
    return Manifest(
        path=path,
        version=1,
        settings=settings or Settings(),
        certificates=tuple(entries),
        unknown_keys=tuple(unknown),
    )
