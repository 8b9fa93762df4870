"""Rules on secrets, configs and variables: rotated objects must stay rotatable and private."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from pathlib import PurePosixPath

from phoenix_certbot.compose.context import LintContext, Rule
from phoenix_certbot.compose.rules_ports import flag_value
from phoenix_certbot.compose.tree import MapNode, Node, Scalar
from phoenix_certbot.findings import Finding
from phoenix_certbot.manifest.model import ObjectKind, Source, SwarmObjectRef

_VERSION_SUFFIX = re.compile(r"_[0-9a-f]{12}$")  # see manifest naming.versioned_name
_KEY_PATTERNS = ("*.key", "*key*.pem", "*sslkey*")
_SECTIONS = (("secrets", ObjectKind.SECRET), ("configs", ObjectKind.CONFIG))


def mount_path(ref: SwarmObjectRef) -> str:
    """Where the object appears in the container: secrets under /run/secrets, configs at /."""
    target = ref.target or ref.name
    if target.startswith("/"):
        return target
    return f"/run/secrets/{target}" if ref.kind is ObjectKind.SECRET else f"/{target}"


def stack_env_var(base_name: str) -> str:
    """The variable `phoenix-cert stack-env` fills with the current versioned name."""
    return re.sub(r"[^A-Z0-9]", "_", base_name.upper())


def portainer_ssl_args(ctx: LintContext) -> Iterator[Finding]:
    """--sslcert/--sslkey must name the files the manifest rotates into the service."""
    for service in ctx.services:
        bound = ctx.bindings_of(service) if service.is_portainer_server else ()
        refs = [ref for b in bound for ref in b.binding.objects]
        checks = (
            ("--sslcert", "certificate", {Source.FULLCHAIN, Source.CERT}),
            ("--sslkey", "private key", {Source.PRIVKEY}),
        )
        for flag, what, sources in checks:
            paths = sorted({mount_path(r) for r in refs if r.source in sources})
            if not paths:
                continue
            value = flag_value(service.command(), flag)
            if value is not None and value.text in paths:
                continue
            command = service.node.entry("command")
            where = value or (command.key if command else service.key)
            rotated = " or ".join(paths)
            message = (
                f"{flag} is not set, so Portainer ignores the rotated {what} at {rotated}"
                if value is None
                else f"{flag} is {value.text}, not the rotated {what} at {rotated}"
            )
            yield ctx.finding(
                Rule.PORTAINER_SSL_ARGS,
                (where.file, where.line),
                message,
                f"pass {flag} {paths[0]} in the command",
                service=service,
                certificate=bound[0].entry.name,
            )


def fixed_object_names(ctx: LintContext) -> Iterator[Finding]:
    """A fixed name makes the next `docker stack deploy` undo a rotation (or fail)."""
    if ctx.manifest is None:
        return
    rotated = {
        (ref.kind, ref.name)
        for entry in ctx.manifest.certificates
        for binding in entry.services
        for ref in binding.objects
    }
    for stack in ctx.stacks:
        for section, kind in _SECTIONS:
            objects = stack.objects(section)
            for item in objects.entries if objects else ():
                fixed = _fixed_name(item.key, item.value)
                if fixed is None:
                    continue
                base = _VERSION_SUFFIX.sub("", fixed.text)
                if (kind, base) not in rotated:
                    continue
                yield ctx.finding(
                    Rule.FIXED_OBJECT_NAME,
                    (fixed.file, fixed.line),
                    f"{kind.value} {item.key.text!r} has the fixed name {fixed.text!r}, but "
                    f"phoenix-cert rotates it to versioned names ({base}_<hash>): the next "
                    "docker stack deploy puts an old object back or fails",
                    f"name: ${{{stack_env_var(base)}}}, filled by `phoenix-cert stack-env`",
                )


def _fixed_name(key: Scalar, value: Node) -> Scalar | None:
    """The object's literal name, or None when it is interpolated or stack-prefixed."""
    if not isinstance(value, MapNode):
        return None
    name = value.scalar("name")
    external = value.get("external")
    if name is None and isinstance(external, MapNode):  # legacy `external: {name: x}`
        name = external.scalar("name")
    if name is not None:
        return None if name.has_variables else name
    # An external object without `name:` is looked up by its key, unprefixed.
    if isinstance(external, Scalar) and external.as_bool():
        return key
    return None


def private_key_configs(ctx: LintContext) -> Iterator[Finding]:
    """Configs are readable through the API (`docker config inspect`) and not on tmpfs."""
    flagged: set[tuple[str, int]] = set()
    for b in ctx.bound:
        for ref in b.binding.configs:
            if ref.source is not Source.PRIVKEY:
                continue
            where = _stack_config(ctx, ref.name) or (b.service.file, b.service.line)
            if where in flagged:
                continue
            flagged.add(where)
            yield ctx.finding(
                Rule.PRIVATE_KEY_CONFIG,
                where,
                f"the manifest delivers the private key of {b.entry.name} as config "
                f"{ref.name!r}: configs are readable through the Docker API and not on tmpfs",
                "deliver the key as a secret (manifest and stack: configs -> secrets)",
                service=b.service,
                certificate=b.entry.name,
            )
    for stack in ctx.stacks:
        configs = stack.objects("configs")
        for item in configs.entries if configs else ():
            where = (item.key.file, item.key.line)
            if where in flagged or not _looks_like_key(item.key.text, item.value):
                continue
            yield ctx.finding(
                Rule.PRIVATE_KEY_CONFIG,
                where,
                f"config {item.key.text!r} looks like a private key: configs are readable "
                "through the Docker API and not on tmpfs",
                f"declare {item.key.text!r} under top-level secrets: and mount it as a secret",
            )


def _stack_config(ctx: LintContext, name: str) -> tuple[str, int] | None:
    for stack in ctx.stacks:
        configs = stack.objects("configs")
        for item in configs.entries if configs else ():
            named = item.value.text("name") if isinstance(item.value, MapNode) else None
            if name in (item.key.text, _VERSION_SUFFIX.sub("", named or "")):
                return item.key.file, item.key.line
    return None


def _looks_like_key(key: str, value: Node) -> bool:
    names = [key]
    if isinstance(value, MapNode):
        names += [value.text("name") or "", PurePosixPath(value.text("file") or "").name]
    return any(
        "pub" not in n.lower()  # public keys are fine as configs
        and any(fnmatch.fnmatchcase(n.lower(), pattern) for pattern in _KEY_PATTERNS)
        for n in names
        if n
    )


def unset_variables(ctx: LintContext) -> Iterator[Finding]:
    for stack in ctx.stacks:
        for var in dict.fromkeys(stack.unset):
            yield ctx.finding(
                Rule.VARIABLE_UNSET,
                (var.file, var.line),
                f"variable {var.name} is not set: docker stack deploy substitutes an empty string",
                f"set {var.name} in the environment, .env or an --env-file "
                "(`phoenix-cert stack-env` prints the rotated object names)",
            )
