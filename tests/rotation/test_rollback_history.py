"""Pure checks of the fixes found by the integration tests: the rollback plan's choice of
"the previous version", and stack-env naming what runs."""

from __future__ import annotations

from pathlib import Path

from phoenix_certbot.manifest.model import Manifest, Settings, Source
from phoenix_certbot.rotation.rollback import rollback_plan
from phoenix_certbot.rotation.stack_env import stack_env
from phoenix_certbot.swarm.model import SwarmSnapshot
from tests.rotation.fakes import binding, deployed, digest, entry, foreign, mount, secret, service

CRT = secret("web.crt", Source.FULLCHAIN)
KEY = secret("web.key", Source.PRIVKEY)
URL = ("https://127.0.0.1:1/",)


def test_a_reused_key_stays_and_only_the_certificate_goes_back() -> None:
    # certbot --reuse-key: generation 2 shipped the key version made for generation 1.
    c1 = deployed("web.crt", digest("web", 1), Source.FULLCHAIN, minutes=1)
    c2 = deployed("web.crt", digest("web", 2), Source.FULLCHAIN, minutes=2)
    k1 = deployed("web.key", digest("web", 1), Source.PRIVKEY, minutes=1)
    for previous in ((mount(c1, "web.crt"), mount(k1, "web.key")), ()):
        snap = SwarmSnapshot(
            services=(service("s", mount(c2, "web.crt"), mount(k1, "web.key"), previous=previous),),
            objects=(c1, c2, k1),
        )
        plan = rollback_plan(entry("web", binding("s", CRT, KEY), verify=URL), snap)
        assert plan.problems == ()
        (change,) = plan.changes
        assert [(m.target, m.new_name) for m in change.mounts] == [("web.crt", c1.name)]
        assert plan.checks[0].expected_sha256 == digest("web", 1).leaf_sha256


def test_the_previous_spec_wins_over_a_newer_version_that_never_ran() -> None:
    # g1 ran; g2 was refused and rolled back; g3 runs now. Back means g1, not g2.
    c1, c2, c3 = (
        deployed("web.crt", digest("web", g), Source.FULLCHAIN, minutes=g) for g in (1, 2, 3)
    )
    snap = SwarmSnapshot(
        services=(service("s", mount(c3, "web.crt"), previous=(mount(c1, "web.crt"),)),),
        objects=(c1, c2, c3),
    )
    plan = rollback_plan(entry("web", binding("s", CRT), verify=URL), snap)
    assert [m.new_name for m in plan.changes[0].mounts] == [c1.name]
    assert plan.checks[0].expected_sha256 == digest("web", 1).leaf_sha256


def test_a_newer_previous_spec_is_not_a_way_back() -> None:
    # After a refused g2 was rolled back, the previous spec names g2: never go "back" to it.
    c0, c1, c2 = (
        deployed("web.crt", digest("web", g), Source.FULLCHAIN, minutes=g) for g in (0, 1, 2)
    )
    snap = SwarmSnapshot(
        services=(service("s", mount(c1, "web.crt"), previous=(mount(c2, "web.crt"),)),),
        objects=(c0, c1, c2),
    )
    plan = rollback_plan(entry("web", binding("s", CRT), verify=URL), snap)
    assert [m.new_name for m in plan.changes[0].mounts] == [c0.name]


def test_stack_env_names_the_bootstrap_secret_a_service_still_runs_on() -> None:
    refused = deployed("web.crt", digest("web", 1), Source.FULLCHAIN)
    boot = foreign("web.crt.boot")
    manifest = Manifest(
        path=Path("m.json"),
        version=2,
        settings=Settings(),
        certificates=(entry("web", binding("s", CRT)),),
    )
    snap = SwarmSnapshot(services=(service("s", mount(boot, "web.crt")),), objects=(boot, refused))
    assert stack_env(manifest, snap) == [("WEB_CRT", boot.name)]
