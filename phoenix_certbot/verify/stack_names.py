"""Stack variables that would undo a rotation: `compose.stale-object-name` (pure).

A stack file names a rotated secret `name: ${PORTAINER_SSLCERT}`; `phoenix-cert stack-env`
prints the current versioned name for it. When the value in this environment is not the
version of the certificate on disk, the next `docker stack deploy` mounts that other
object and reverts the rotation (what `live.drift-reverted` finds afterwards).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from phoenix_certbot.certs import CertificateMaterial
from phoenix_certbot.compose import ComposeFile, ComposeService
from phoenix_certbot.compose.context import LintContext
from phoenix_certbot.compose.rules_objects import mount_path, stack_env_var
from phoenix_certbot.compose.tree import MapNode, Scalar, SeqNode
from phoenix_certbot.findings import Finding, Severity
from phoenix_certbot.manifest.model import Manifest, ObjectKind, SwarmObjectRef
from phoenix_certbot.naming import versioned_name

STALE_OBJECT_NAME = "compose.stale-object-name"
_SECTION = {ObjectKind.SECRET: "secrets", ObjectKind.CONFIG: "configs"}


def stale_object_names(
    stacks: Sequence[ComposeFile],
    manifest: Manifest,
    stack_name: str | None,
    materials: Mapping[str, CertificateMaterial],
) -> list[Finding]:
    ctx = LintContext.build(stacks, manifest, stack_name)
    found: list[Finding] = []
    for bound in ctx.bound:
        material = materials.get(bound.entry.name)
        if material is None:
            continue
        for ref in bound.binding.objects:
            key = _mounted_key(bound.service, ref)
            name = _declared_name(stacks, _SECTION[ref.kind], key) if key else None
            if name is None or not name.has_variables or not name.text:
                continue  # fixed names and unset variables have their own lint rules
            try:
                expected = versioned_name(ref.name, material.payload_sha256(ref.source))
            except ValueError:
                continue
            if name.text == expected:
                continue
            found.append(
                Finding(
                    STALE_OBJECT_NAME,
                    Severity.WARNING,
                    f"{ref.kind.value} {key!r} is named {name.text!r} in this environment, "
                    f"not {expected!r} (the certificate on disk): the next docker stack "
                    "deploy would mount it and revert the rotation",
                    f"deploy with {stack_env_var(ref.name)}={expected} "
                    "(env $(phoenix-cert stack-env) docker stack deploy ...)",
                    file=name.file,
                    line=name.line,
                    service=ctx.swarm_name(bound.service),
                    certificate=bound.entry.name,
                )
            )
    return list(dict.fromkeys(found))


def _mounted_key(service: ComposeService, ref: SwarmObjectRef) -> str | None:
    """The stack's object key the service mounts where the manifest's `ref` goes."""
    items = service.node.get(_SECTION[ref.kind])
    wanted = mount_path(ref)
    for item in items.items if isinstance(items, SeqNode) else ():
        source: str | None = None
        target: str | None = None
        if isinstance(item, Scalar):
            source = item.text
        elif isinstance(item, MapNode):
            source, target = item.text("source"), item.text("target")
        if not source:
            continue
        mounted = SwarmObjectRef(ref.kind, source, ref.source, target or _default(ref, source))
        if mount_path(mounted) == wanted:
            return source
    return None


def _default(ref: SwarmObjectRef, source: str) -> str:
    return source if ref.kind is ObjectKind.SECRET else f"/{source}"


def _declared_name(stacks: Sequence[ComposeFile], section: str, key: str) -> Scalar | None:
    for stack in stacks:
        objects = stack.objects(section)
        value = objects.get(key) if objects else None
        if not isinstance(value, MapNode):
            continue
        name = value.scalar("name")
        external = value.get("external")
        if name is None and isinstance(external, MapNode):  # legacy `external: {name: x}`
            name = external.scalar("name")
        return name
    return None
