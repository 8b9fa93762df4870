"""`classify`: the one answer to "is this mount current" for plan, status and verify."""

from __future__ import annotations

from dataclasses import replace

import pytest

from phoenix_certbot.manifest.model import Source
from phoenix_certbot.rotation.mounts import MountState, classify
from phoenix_certbot.swarm.model import DeployedObject, MountRef, SwarmSnapshot
from tests.rotation.fakes import deployed, digest, foreign, mount, secret, service

KEY = secret("web.key", Source.PRIVKEY, mode=0o400)
NOW, OLD = digest("web", 2), digest("web", 1)
SHA = NOW.payload_sha256[Source.PRIVKEY]
CURRENT = deployed("web.key", NOW, Source.PRIVKEY)
OLDER = deployed("web.key", OLD, Source.PRIVKEY)
RENAMED = deployed("other.key", NOW, Source.PRIVKEY)  # another base, the same bytes
OTHER_OLD = deployed("other.key", OLD, Source.PRIVKEY)
FIXED = foreign("web_key_fixed")  # what a stack file with a fixed name deploys


def judge(
    mounted: DeployedObject | None,
    *others: DeployedObject,
    sha: str | None = SHA,
    mode: int = 0o400,
    uid: str = "0",
) -> MountState:
    refs: tuple[MountRef, ...] = ()
    if mounted is not None:
        refs = (replace(mount(mounted, "web.key", mode), uid=uid),)
    objects = tuple({o.id: o for o in (*(m for m in [mounted] if m), *others)}.values())
    snapshot = SwarmSnapshot(services=(service("s", *refs),), objects=objects)
    return classify(KEY, sha, snapshot.services[0], snapshot).state


@pytest.mark.parametrize(
    ("mounted", "others", "kwargs", "state"),
    [
        (None, (CURRENT,), {}, MountState.MISSING),
        (CURRENT, (), {}, MountState.CURRENT),
        (RENAMED, (), {}, MountState.CURRENT),  # the right bytes: no restart to rename
        (CURRENT, (), {"mode": 0o444}, MountState.WRONG_FILE_ATTRS),
        (CURRENT, (), {"uid": "1000"}, MountState.WRONG_FILE_ATTRS),
        (RENAMED, (), {"mode": 0o444}, MountState.WRONG_FILE_ATTRS),
        (OLDER, (CURRENT,), {}, MountState.BEHIND),
        (OLDER, (), {}, MountState.BEHIND),  # behind even before the new version exists
        (OLDER, (), {"mode": 0o444}, MountState.BEHIND),  # the content is what counts first
        (FIXED, (CURRENT,), {}, MountState.FOREIGN),  # a redeploy reverted the rotation
        (FIXED, (), {}, MountState.UNROTATED),
        (OTHER_OLD, (CURRENT,), {}, MountState.FOREIGN),  # ours, but not of this base
        (OTHER_OLD, (), {}, MountState.UNROTATED),
        (FIXED, (replace(CURRENT, labels=()),), {}, MountState.UNROTATED),  # not ours either
        (OLDER, (), {"sha": None}, MountState.UNKNOWN),  # nothing on disk to compare with
        (FIXED, (), {"sha": None}, MountState.FOREIGN),  # not ours is known all the same
        (None, (), {"sha": None}, MountState.MISSING),
    ],
)
def test_classify(
    mounted: DeployedObject | None,
    others: tuple[DeployedObject, ...],
    kwargs: dict[str, object],
    state: MountState,
) -> None:
    assert judge(mounted, *others, **kwargs) is state  # type: ignore[arg-type]


def test_the_versioned_name_alone_is_current_when_the_object_is_not_in_the_snapshot() -> None:
    ref = mount(CURRENT, "web.key", 0o400)
    snapshot = SwarmSnapshot(services=(service("s", ref),), objects=())
    assert classify(KEY, SHA, snapshot.services[0], snapshot).state is MountState.CURRENT


def test_the_verdict_carries_what_messages_need() -> None:
    snapshot = SwarmSnapshot(
        services=(service("s", mount(OLDER, "web.key", 0o400)),), objects=(OLDER, CURRENT)
    )
    verdict = classify(KEY, SHA, snapshot.services[0], snapshot)
    assert verdict.state is MountState.BEHIND and not verdict.current
    assert verdict.mount is not None and verdict.mount.object_name == OLDER.name
    assert verdict.mounted == OLDER
    assert verdict.expected == CURRENT.name
    assert verdict.wanted == CURRENT


def test_a_base_too_long_for_a_versioned_name_is_matched_by_its_content_label() -> None:
    base = "b" * 60
    ref = replace(KEY, name=base, target="web.key")
    obj = replace(CURRENT, name="anything", labels=(*CURRENT.labels,))
    snapshot = SwarmSnapshot(services=(service("s", mount(obj, "web.key", 0o400)),), objects=(obj,))
    verdict = classify(ref, SHA, snapshot.services[0], snapshot)
    assert verdict.state is MountState.CURRENT and verdict.expected is None
