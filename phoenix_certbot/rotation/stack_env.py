"""`VAR=versioned_name` for stack files, so `docker stack deploy` keeps the rotation (pure)."""

from __future__ import annotations

from phoenix_certbot.manifest.model import Manifest, ObjectKind
from phoenix_certbot.naming import env_var
from phoenix_certbot.swarm.model import LABEL_BASE, SwarmSnapshot


def stack_env(manifest: Manifest, snapshot: SwarmSnapshot) -> list[tuple[str, str]]:
    """For each base name: what its service mounts now (a version, or the secret it was
    bootstrapped with), else the newest managed version. Bases with neither are left out
    (there is nothing a stack could refer to yet).

    What runs wins: the newest version may be one the service refused and the engine
    rolled back, and a stack deploy must not move the service onto it unverified."""
    out: dict[str, str] = {}
    for entry in manifest.certificates:
        for binding in entry.services:
            service = snapshot.service(binding.service)
            for ref in binding.objects:
                var = env_var(ref.name)
                mount = service.mount_at(ref.kind, ref.target) if service else None
                mounted = mount.object_name if mount else None
                if mounted:
                    out[var] = mounted
                    continue
                newest = _newest(snapshot, ref.kind, ref.name)
                if newest and var not in out:
                    out[var] = newest
    return sorted(out.items())


def _newest(snapshot: SwarmSnapshot, kind: ObjectKind, base: str) -> str | None:
    versions = [
        o for o in snapshot.objects if o.kind is kind and o.managed and o.label(LABEL_BASE) == base
    ]
    return max(versions, key=lambda o: (o.created, o.name)).name if versions else None
