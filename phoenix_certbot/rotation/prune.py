"""Which managed versions can go. Pure selection; the caller removes them."""

from __future__ import annotations

from collections.abc import Iterable

from phoenix_certbot.manifest.model import ObjectKind
from phoenix_certbot.swarm.model import LABEL_BASE, DeployedObject, SwarmSnapshot


def prunable(
    snapshot: SwarmSnapshot, bases: Iterable[tuple[ObjectKind, str]], keep: int
) -> list[DeployedObject]:
    """Managed versions beyond the newest `keep` of each base that no service mounts in its
    current spec or its previous spec (a rollback needs the previous one)."""
    referenced = {ref.object_id for s in snapshot.services for ref in s.refs + s.previous_refs}
    doomed: list[DeployedObject] = []
    for kind, base in sorted(set(bases)):
        versions = sorted(
            (
                o
                for o in snapshot.objects
                if o.kind is kind and o.managed and o.label(LABEL_BASE) == base
            ),
            key=lambda o: (o.created, o.name),
            reverse=True,
        )
        doomed.extend(o for o in versions[keep:] if o.id not in referenced)
    return doomed
