"""Pure pieces around the engine: prune selection, the rollback plan, stack-env lines."""

from __future__ import annotations

from pathlib import Path

from phoenix_certbot.manifest.model import Manifest, ObjectKind, Settings, Source
from phoenix_certbot.rotation.prune import prunable
from phoenix_certbot.rotation.rollback import rollback_plan
from phoenix_certbot.rotation.stack_env import stack_env
from phoenix_certbot.swarm.model import SwarmSnapshot
from tests.rotation.fakes import binding, deployed, digest, entry, foreign, mount, secret, service

CRT = secret("web.crt", Source.FULLCHAIN)


def versions(n: int) -> list:  # type: ignore[type-arg]
    return [
        deployed("web.crt", digest("web", g), Source.FULLCHAIN, minutes=g) for g in range(1, n + 1)
    ]


def test_prune_keeps_newest_and_anything_referenced_now_or_before() -> None:
    v1, v2, v3, v4, v5 = versions(5)
    lookalike = foreign("web.crt_000000000000")
    snap = SwarmSnapshot(
        services=(service("s", mount(v5, "web.crt"), previous=(mount(v1, "web.crt"),)),),
        objects=(v1, v2, v3, v4, v5, lookalike),
    )
    doomed = prunable(snap, [(ObjectKind.SECRET, "web.crt")], keep=2)
    assert sorted(o.name for o in doomed) == sorted([v2.name, v3.name])


def test_prune_never_selects_unmanaged_or_other_bases() -> None:
    other = deployed("api.crt", digest("api"), Source.FULLCHAIN)
    snap = SwarmSnapshot(services=(), objects=(foreign("web.crt_x"), other))
    assert prunable(snap, [(ObjectKind.SECRET, "web.crt")], keep=0) == []


def test_rollback_plan_goes_to_the_version_just_before_the_mounted_one() -> None:
    v1, v2, v3 = versions(3)
    e = entry("web", binding("s", CRT), verify=("https://127.0.0.1:1/",))
    snap = SwarmSnapshot(services=(service("s", mount(v3, "web.crt")),), objects=(v1, v2, v3))
    plan = rollback_plan(e, snap)
    (m,) = plan.changes[0].mounts
    assert (m.old_name, m.new_name) == (v3.name, v2.name)
    assert plan.checks[0].expected_sha256 == digest("web", 2).leaf_sha256


def test_rollback_plan_without_history_reports_instead_of_guessing() -> None:
    (v1,) = versions(1)
    boot = foreign("web.crt.boot")
    e = entry("web", binding("s", CRT))
    assert rollback_plan(
        e, SwarmSnapshot(services=(service("s", mount(v1, "web.crt")),), objects=(v1,))
    ).problems == (f"s: no version of web.crt older than {v1.name}",)
    on_boot = rollback_plan(
        e, SwarmSnapshot(services=(service("s", mount(boot, "web.crt")),), objects=(boot,))
    )
    assert on_boot.changes == () and on_boot.problems == ("s: web.crt is not on a managed version",)


def test_stack_env_prefers_the_mounted_version_then_the_newest() -> None:
    v1, v2 = versions(2)
    key = secret("web.key", Source.PRIVKEY)
    m = Manifest(
        path=Path("m.json"),
        version=2,
        settings=Settings(),
        certificates=(entry("web", binding("s", CRT, key)),),
    )
    snap = SwarmSnapshot(services=(service("s", mount(v1, "web.crt")),), objects=(v1, v2))
    assert stack_env(m, snap) == [("WEB_CRT", v1.name)]
    assert stack_env(m, SwarmSnapshot(services=(), objects=(v1, v2))) == [("WEB_CRT", v2.name)]
