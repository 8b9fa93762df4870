"""Read a certificate manifest (version 2 or legacy) into `Manifest` values.

This is the boundary: JSON comes in, frozen dataclasses go out, and every problem is a
`ManifestError` naming the file and the JSON path of the field.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from phoenix_certbot.errors import ManifestError
from phoenix_certbot.manifest import legacy
from phoenix_certbot.manifest.model import (
    CertificateEntry,
    CertificatePaths,
    FileTarget,
    Manifest,
    NotifyOn,
    NotifyTarget,
    ObjectKind,
    PortainerSettings,
    ServiceBinding,
    Settings,
    Source,
    SwarmObjectRef,
    VerifyTarget,
)

ENV_VAR = "PHOENIX_CERT_MANIFEST"
STATE_DIR_ENV = "PHOENIX_CERT_STATE_DIR"
DEFAULT_LOCATIONS = (
    Path("/usr/local/phoenix_hypervisor/etc/certificate-manifest.json"),
    Path("/etc/phoenix-certbot/certificate-manifest.json"),
)
MAX_MANIFEST_BYTES = 8 * 1024 * 1024


def locate(
    explicit: str | os.PathLike[str] | None,
    env: Mapping[str, str] = os.environ,
    locations: Sequence[Path] | None = None,
) -> Path:
    """The manifest to use: --manifest, then $PHOENIX_CERT_MANIFEST, then the one default
    path that exists (two existing is an error: which one is meant?)."""
    if explicit:
        return Path(explicit)
    if env.get(ENV_VAR):
        return Path(env[ENV_VAR])
    locations = DEFAULT_LOCATIONS if locations is None else locations
    found = [candidate for candidate in locations if candidate.exists()]
    if len(found) > 1:
        # Taking the first silently would leave the other one looking in use.
        raise ManifestError(
            "",
            "",
            f"manifests at both {found[0]} and {found[1]}: remove one, or choose with "
            f"--manifest or ${ENV_VAR}",
        )
    if found:
        return found[0]
    tried = ", ".join(str(p) for p in locations)
    raise ManifestError("", "", f"no manifest given (--manifest or ${ENV_VAR}) and none at {tried}")


def load(path: Path, *, euid: int | None = None) -> Manifest:
    """Read, permission-check, parse and validate the manifest at `path`."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ManifestError(str(path), "", "file not found") from None
    except OSError as exc:
        raise ManifestError(str(path), "", f"cannot read: {exc.strerror}") from None
    _check_permissions(path, st, os.geteuid() if euid is None else euid)
    if st.st_size > MAX_MANIFEST_BYTES:
        raise ManifestError(str(path), "", f"larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(str(path), "", f"cannot read: {exc}") from None
    return parse(text, path)


def _check_permissions(path: Path, st: os.stat_result, euid: int) -> None:
    # The manifest drives privileged actions (which services to update, where to write
    # files): when we run as root, anyone who can write it can act as root.
    if euid == 0 and st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ManifestError(
            str(path),
            "",
            f"writable by group or others (mode {stat.S_IMODE(st.st_mode):04o}) while running as "
            f"root; run: chmod go-w {path}",
        )


def parse(text: str, path: Path) -> Manifest:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(
            str(path), "$", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if isinstance(data, list):
        # The legacy format has no settings; the state directory alone may be moved.
        defaults = Settings()
        state_dir = os.environ.get(STATE_DIR_ENV)
        settings = Settings(state_dir=Path(state_dir)) if state_dir else defaults
        return legacy.parse_legacy(data, path, settings)
    if isinstance(data, dict):
        return parse_v2(data, path)
    raise ManifestError(str(path), "$", "expected a JSON object (version 2) or array (legacy)")


@cache
def schema() -> dict[str, Any]:
    text = resources.files("phoenix_certbot").joinpath("data/certificate-manifest.schema.json")
    result: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return result


def _json_path(parts: Sequence[str | int]) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _describe(error: Any) -> tuple[str, str]:
    """(JSON path, message) for one jsonschema error, worded for an operator."""
    path = list(error.absolute_path)
    validator = error.validator
    if validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return _json_path([*path, missing]), "required field is missing"
    if validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        return _json_path([*path, extra[0]] if extra else path), (
            f"unknown field; expected one of: {', '.join(allowed)}"
        )
    if validator == "enum":
        return _json_path(
            path
        ), f"expected one of {', '.join(map(str, error.validator_value))}, got {error.instance!r}"
    if validator == "const":
        return _json_path(path), f"expected {error.validator_value!r}, got {error.instance!r}"
    if validator == "type":
        return _json_path(
            path
        ), f"expected {error.validator_value}, got {type(error.instance).__name__}"
    if validator == "pattern":
        return _json_path(path), f"{error.instance!r} does not match {error.validator_value}"
    if validator == "not":
        return _json_path(path), "give either lineage or cert_path/key_path, not both"
    if validator == "dependentRequired":
        needed = error.message.split("'")[1] if "'" in error.message else "?"
        given = next(
            (k for k, v in error.validator_value.items() if needed in v and k in error.instance),
            "?",
        )
        return _json_path([*path, needed]), f"required when {given} is given"
    return _json_path(path), error.message


def parse_v2(data: dict[str, Any], path: Path) -> Manifest:
    import jsonschema  # deferred: keeps `phoenix-cert --help` fast

    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(
        validator.iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.validator)
    )
    if errors:
        where, message = _describe(errors[0])
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ManifestError(str(path), where, message + more)
    settings = _settings(data.get("settings", {}), path)
    entries = tuple(_certificate(c, i, settings, path) for i, c in enumerate(data["certificates"]))
    manifest = Manifest(path=path, version=2, settings=settings, certificates=entries)
    check_consistency(manifest)
    return manifest


def _settings(raw: Mapping[str, Any], path: Path) -> Settings:
    defaults = Settings()
    targets = [
        NotifyTarget(url.strip(), f"settings.notify_urls[{i}]")
        for i, url in enumerate(raw.get("notify_urls", []))
    ]
    if "notify_urls_file" in raw:
        targets.extend(read_notify_urls(path.parent / raw["notify_urls_file"]))
    for target in targets:
        if "://" not in target.url:
            # Never echo the value: it may be a token pasted in the wrong place.
            inline = target.origin.startswith("settings.")
            raise ManifestError(
                str(path) if inline else target.origin,
                f"$.{target.origin}" if inline else "",
                "not a URL (scheme://...)",
            )
    return Settings(
        certbot_live_dir=Path(raw.get("certbot_live_dir", defaults.certbot_live_dir)),
        keep_versions=int(raw.get("keep_versions", defaults.keep_versions)),
        update_timeout_s=int(raw.get("update_timeout_s", defaults.update_timeout_s)),
        max_parallel_updates=int(raw.get("max_parallel_updates", defaults.max_parallel_updates)),
        docker_timeout_s=float(raw.get("docker_timeout_s", defaults.docker_timeout_s)),
        state_dir=Path(raw.get("state_dir", defaults.state_dir)),
        notify_targets=tuple(targets),
        notify_on=frozenset(NotifyOn(v) for v in raw.get("notify_on", ["failure"])),
        portainer=_portainer(raw.get("portainer", {}), path),
    )


def _portainer(raw: Mapping[str, Any], manifest: Path) -> PortainerSettings:
    def path(key: str) -> Path | None:
        # Relative to the manifest's folder, as notify_urls_file.
        return manifest.parent / raw[key] if key in raw else None

    return PortainerSettings(
        url=raw.get("url"),
        token_file=path("token_file"),
        server_name=raw.get("server_name"),
        ca_file=path("ca_file"),
    )


def read_notify_urls(path: Path, *, euid: int | None = None) -> list[NotifyTarget]:
    """`notify_urls_file`: one Apprise URL per line, blank lines and `#` comments skipped.

    URLs carry secrets, so the file must be private: group and others may not read it,
    and (as for the manifest) not write it when we run as root."""
    try:
        st = path.stat()
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ManifestError(str(path), "", f"notify_urls_file: cannot read: {reason}") from None
    euid = os.geteuid() if euid is None else euid
    mode = stat.S_IMODE(st.st_mode)
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        raise ManifestError(
            str(path),
            "",
            f"readable by group or others (mode {mode:04o}) but its URLs carry secrets; "
            f"run: chmod go-rwx {path}",
        )
    _check_permissions(path, st, euid)
    targets = []
    for number, line in enumerate(text.splitlines(), start=1):
        url = line.strip()
        if url and not url.startswith("#"):
            targets.append(NotifyTarget(url, f"{path}:{number}"))
    return targets


def _mode(raw: str | None, source: Source, default: int) -> int:
    if raw is not None:
        return int(raw, 8)
    # Key material is only for its owner unless the operator says otherwise.
    return 0o400 if source is Source.PRIVKEY else default


def _object(raw: Mapping[str, Any], kind: ObjectKind) -> SwarmObjectRef:
    source = Source(raw["source"])
    default_target = raw["name"] if kind is ObjectKind.SECRET else "/" + raw["name"]
    return SwarmObjectRef(
        kind=kind,
        name=raw["name"],
        source=source,
        target=raw.get("target", default_target),
        mode=_mode(raw.get("mode"), source, 0o444),
        uid=raw.get("uid", "0"),
        gid=raw.get("gid", "0"),
    )


def _file(raw: Mapping[str, Any], where: str, path: Path) -> FileTarget:
    source = Source(raw["source"])
    mode = int(raw["mode"], 8) if "mode" in raw else (0o600 if source is Source.PRIVKEY else 0o644)
    if source is Source.PRIVKEY and mode & 0o007:
        raise ManifestError(
            str(path),
            f"{where}.mode",
            f"a private key file must not be world-accessible (mode {mode:04o})",
        )
    return FileTarget(path=Path(raw["path"]), source=source, mode=mode, owner=raw.get("owner"))


def _certificate(
    raw: Mapping[str, Any], index: int, settings: Settings, path: Path
) -> CertificateEntry:
    where = f"$.certificates[{index}]"
    services = tuple(
        ServiceBinding(
            service=s["service"],
            secrets=tuple(_object(o, ObjectKind.SECRET) for o in s.get("secrets", [])),
            configs=tuple(_object(o, ObjectKind.CONFIG) for o in s.get("configs", [])),
            files=tuple(
                _file(f, f"{where}.services[{si}].files[{fi}]", path)
                for fi, f in enumerate(s.get("files", []))
            ),
        )
        for si, s in enumerate(raw.get("services", []))
    )
    verify = tuple(
        VerifyTarget(url=v["url"], server_name=v.get("server_name")) for v in raw.get("verify", [])
    )
    return CertificateEntry(
        name=raw["name"],
        sans=tuple(raw["sans"]),
        paths=_paths(raw, settings),
        services=services,
        verify=verify,
    )


def _paths(raw: Mapping[str, Any], settings: Settings) -> CertificatePaths:
    if "cert_path" in raw:
        return CertificatePaths(
            cert=Path(raw["cert_path"]),
            key=Path(raw["key_path"]),
            chain=Path(raw["chain_path"]) if "chain_path" in raw else None,
            fullchain=Path(raw["fullchain_path"]) if "fullchain_path" in raw else None,
        )
    lineage = Path(raw.get("lineage") or settings.certbot_live_dir / raw["name"])
    return lineage_paths(lineage)


def lineage_paths(lineage: Path) -> CertificatePaths:
    return CertificatePaths(
        cert=lineage / "cert.pem",
        key=lineage / "privkey.pem",
        chain=lineage / "chain.pem",
        fullchain=lineage / "fullchain.pem",
        lineage=lineage,
    )


def _bindings(
    manifest: Manifest,
) -> Iterator[tuple[str, CertificateEntry, ServiceBinding, SwarmObjectRef]]:
    for i, entry in enumerate(manifest.certificates):
        for si, binding in enumerate(entry.services):
            for kind, objs in (("secrets", binding.secrets), ("configs", binding.configs)):
                for oi, obj in enumerate(objs):
                    yield f"$.certificates[{i}].services[{si}].{kind}[{oi}]", entry, binding, obj


def check_consistency(manifest: Manifest) -> None:
    """Rules JSON Schema cannot say: unique names, one meaning per base name and target."""
    file = str(manifest.path)
    seen: dict[str, int] = {}
    for i, entry in enumerate(manifest.certificates):
        if entry.name in seen:
            raise ManifestError(
                file,
                f"$.certificates[{i}].name",
                f"duplicate name {entry.name!r} (also at $.certificates[{seen[entry.name]}])",
            )
        seen[entry.name] = i
    # A base name identifies one (certificate, source): otherwise two certificates would
    # fight over the same versions and pruning could delete what the other still uses.
    owners: dict[tuple[ObjectKind, str], tuple[str, Source]] = {}
    targets: dict[tuple[str, ObjectKind, str], str] = {}
    for where, entry, binding, obj in _bindings(manifest):
        key = (obj.kind, obj.name)
        owner = owners.setdefault(key, (entry.name, obj.source))
        if owner != (entry.name, obj.source):
            raise ManifestError(
                file,
                f"{where}.name",
                f"{obj.kind.value} {obj.name!r} is already the {owner[1].value} "
                f"of certificate {owner[0]!r}",
            )
        tkey = (binding.service, obj.kind, obj.target)
        if targets.setdefault(tkey, obj.name) != obj.name:
            raise ManifestError(
                file,
                f"{where}.target",
                f"service {binding.service!r} already mounts {targets[tkey]!r} at {obj.target!r}",
            )
