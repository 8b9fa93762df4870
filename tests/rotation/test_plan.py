from __future__ import annotations

from pathlib import Path

import pytest

from phoenix_certbot.manifest.model import FileTarget, ObjectKind, Source
from phoenix_certbot.naming import versioned_name
from phoenix_certbot.rotation.plan import NameConflict, RecordedState, build_plan
from phoenix_certbot.swarm.model import SwarmSnapshot
from tests.rotation.fakes import binding, deployed, digest, entry, foreign, mount, secret, service

CRT = secret("web.crt", Source.FULLCHAIN)
KEY = secret("web.key", Source.PRIVKEY, mode=0o400)


def test_bootstrap_secret_created_by_hand_is_taken_over_by_target() -> None:
    d = digest("web")
    boot_crt, boot_key = foreign("web.crt.bootstrap"), foreign("web.key.bootstrap")
    snap = SwarmSnapshot(
        services=(service("s", mount(boot_crt, "web.crt"), mount(boot_key, "web.key", 0o400)),),
        objects=(boot_crt, boot_key),
    )
    plan = build_plan(
        [entry("web", binding("s", CRT, KEY), verify=("https://127.0.0.1:9443/",))],
        {"web": d},
        snap,
    )
    assert [n.name for n in plan.creates] == [
        versioned_name("web.crt", d.payload_sha256[Source.FULLCHAIN]),
        versioned_name("web.key", d.payload_sha256[Source.PRIVKEY]),
    ]
    (change,) = plan.changes
    assert change.service == "s" and not change.force
    assert [(m.target, m.old_name) for m in change.mounts] == [
        ("web.crt", "web.crt.bootstrap"),
        ("web.key", "web.key.bootstrap"),
    ]
    (check,) = plan.checks
    assert (check.server_name, check.expected_sha256) == ("127.0.0.1", d.leaf_sha256)


def test_missing_mount_is_added() -> None:
    plan = build_plan(
        [entry("web", binding("s", CRT))],
        {"web": digest("web")},
        SwarmSnapshot(services=(service("s"),), objects=()),
    )
    assert [(m.target, m.old_name) for m in plan.changes[0].mounts] == [("web.crt", None)]


def test_up_to_date_service_is_not_updated_and_verified_cert_not_rechecked() -> None:
    d = digest("web")
    crt, key = deployed("web.crt", d, Source.FULLCHAIN), deployed("web.key", d, Source.PRIVKEY)
    snap = SwarmSnapshot(
        services=(service("s", mount(crt, "web.crt"), mount(key, "web.key", 0o400)),),
        objects=(crt, key),
    )
    e = entry("web", binding("s", CRT, KEY), verify=("https://h:1/",))
    plan = build_plan([e], {"web": d}, snap, state=RecordedState(verified={"web": d.leaf_sha256}))
    assert plan.empty and plan.up_to_date == ("s",)
    # Deployed but never verified (say a crash before the probe): only the check is planned.
    plan = build_plan([e], {"web": d}, snap)
    assert (
        not plan.changes and not plan.creates and [c.url for c in plan.checks] == ["https://h:1/"]
    )


def test_mode_change_alone_updates_the_mount() -> None:
    d = digest("web")
    key = deployed("web.key", d, Source.PRIVKEY)
    snap = SwarmSnapshot(services=(service("s", mount(key, "web.key", 0o444)),), objects=(key,))
    plan = build_plan([entry("web", binding("s", KEY))], {"web": d}, snap)
    assert not plan.creates
    assert [(m.old_name, m.new_name, m.mode) for m in plan.changes[0].mounts] == [
        (key.name, key.name, 0o400)
    ]


def test_one_update_per_service_for_two_certificates_and_per_service_for_a_shared_one() -> None:
    a, b = digest("a"), digest("b")
    entries = [
        entry(
            "a",
            binding("both", secret("a.crt", Source.FULLCHAIN)),
            binding("other", secret("a.crt", Source.FULLCHAIN)),
        ),
        entry("b", binding("both", secret("b.crt", Source.FULLCHAIN))),
    ]
    snap = SwarmSnapshot(services=(service("both"), service("other")), objects=())
    plan = build_plan(entries, {"a": a, "b": b}, snap)
    assert [(c.service, c.certs, len(c.mounts)) for c in plan.changes] == [
        ("both", ("a", "b"), 2),
        ("other", ("a",), 1),
    ]
    # a.crt is created once even though two services mount it.
    assert sorted(n.base for n in plan.creates) == ["a.crt", "b.crt"]


def test_existing_version_with_our_label_is_reused_not_recreated() -> None:
    d = digest("web")
    crt = deployed("web.crt", d, Source.FULLCHAIN)
    snap = SwarmSnapshot(services=(service("s"),), objects=(crt,))
    plan = build_plan([entry("web", binding("s", CRT))], {"web": d}, snap)
    assert plan.creates == () and plan.changes[0].mounts[0].new_name == crt.name


def test_name_taken_by_other_content_stops_the_plan() -> None:
    d = digest("web")
    squatter = foreign(versioned_name("web.crt", d.payload_sha256[Source.FULLCHAIN]))
    snap = SwarmSnapshot(services=(service("s"),), objects=(squatter,))
    with pytest.raises(NameConflict, match="exists but is not the fullchain of web"):
        build_plan([entry("web", binding("s", CRT))], {"web": d}, snap)


def test_missing_service_is_a_problem_not_a_crash() -> None:
    plan = build_plan(
        [entry("web", binding("gone", CRT))],
        {"web": digest("web")},
        SwarmSnapshot(services=(), objects=()),
    )
    assert plan.changes == () and plan.problems == ("certificate web: service gone does not exist",)


def test_restart_only_service_is_forced_once_per_leaf() -> None:
    d = digest("web")
    e = entry("web", binding("legacy"))
    snap = SwarmSnapshot(services=(service("legacy"),), objects=())
    plan = build_plan([e], {"web": d}, snap)
    assert plan.changes[0].force and plan.changes[0].mounts == ()
    done = RecordedState(
        restarted={("web", "legacy"): d.leaf_sha256}, verified={"web": d.leaf_sha256}
    )
    assert build_plan([e], {"web": d}, snap, state=done).empty


def test_files_written_only_when_content_differs_and_force_the_update() -> None:
    d = digest("web")
    target = FileTarget(path=Path("/srv/web/cert.pem"), source=Source.FULLCHAIN)
    e = entry("web", binding("s", files=(target,)))
    snap = SwarmSnapshot(services=(service("s"),), objects=())
    plan = build_plan([e], {"web": d}, snap, file_hashes={target.path: "old"})
    assert plan.changes[0].force and [f.path for f in plan.changes[0].files] == [target.path]
    same = build_plan(
        [e],
        {"web": d},
        snap,
        file_hashes={target.path: d.payload_sha256[Source.FULLCHAIN]},
        state=RecordedState(verified={"web": d.leaf_sha256}),
    )
    assert same.empty


def test_force_updates_up_to_date_services() -> None:
    d = digest("web")
    crt = deployed("web.crt", d, Source.FULLCHAIN)
    snap = SwarmSnapshot(services=(service("s", mount(crt, "web.crt")),), objects=(crt,))
    plan = build_plan([entry("web", binding("s", CRT))], {"web": d}, snap, force=True)
    assert plan.changes[0].force and plan.changes[0].mounts == ()


def test_configs_are_matched_by_kind_too() -> None:
    d = digest("web")
    cfg_ref = secret("web.crt", Source.FULLCHAIN)
    cfg_ref = type(cfg_ref)(
        kind=ObjectKind.CONFIG, name="web.crt.cfg", source=Source.FULLCHAIN, target="/etc/web.crt"
    )
    same_target_secret = foreign("unrelated")
    snap = SwarmSnapshot(
        services=(service("s", mount(same_target_secret, "/etc/web.crt")),),
        objects=(same_target_secret,),
    )
    plan = build_plan([entry("web", binding("s", cfg_ref))], {"web": d}, snap)
    (m,) = plan.changes[0].mounts
    assert (m.kind, m.old_name) == (ObjectKind.CONFIG, None)
