"""`build_status` (pure): the state of each service against the certificate on disk."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from phoenix_certbot.manifest.model import CertificateEntry, FileTarget, Manifest, Settings, Source
from phoenix_certbot.naming import HASH_CHARS
from phoenix_certbot.status import Deployment, DiskProblem, History, build_status
from phoenix_certbot.status.model import CertHistory, RunRecord
from phoenix_certbot.swarm.model import SwarmSnapshot
from tests.rotation.fakes import (
    T0,
    binding,
    deployed,
    digest,
    entry,
    foreign,
    mount,
    secret,
    service,
)

CRT = secret("web.crt", Source.FULLCHAIN)
KEY = secret("web.key", Source.PRIVKEY, mode=0o400)
NOW = T0 + dt.timedelta(days=30)


def manifest(*entries: CertificateEntry) -> Manifest:
    return Manifest(path=Path("/m.json"), version=2, settings=Settings(), certificates=entries)


def test_service_on_the_versions_of_the_certificate_on_disk_is_up_to_date() -> None:
    d = digest("web")
    crt, key = deployed("web.crt", d, Source.FULLCHAIN), deployed("web.key", d, Source.PRIVKEY)
    snap = SwarmSnapshot(
        services=(service("s", mount(crt, "web.crt"), mount(key, "web.key", 0o400)),),
        objects=(crt, key),
    )
    report = build_status(
        manifest(entry("web", binding("s", CRT, KEY))), {"web": d}, snap, History(), now=NOW
    )
    (cert,) = report.certificates
    assert cert.disk.ok and cert.disk.sha256 == d.leaf_sha256
    assert cert.disk.days_left(NOW) == 60.0
    (svc,) = cert.services
    assert svc.state is Deployment.UP_TO_DATE
    assert [m.mounted for m in svc.mounts] == [crt.name, key.name]
    assert [m.leaf_sha256 for m in svc.mounts] == [d.leaf_sha256, d.leaf_sha256]
    assert svc.details == ()
    assert report.ok


def test_service_on_an_older_managed_version_is_behind_and_names_its_leaf() -> None:
    old, new = digest("web", 1), digest("web", 2)
    crt_old = deployed("web.crt", old, Source.FULLCHAIN)
    snap = SwarmSnapshot(services=(service("s", mount(crt_old, "web.crt")),), objects=(crt_old,))
    report = build_status(
        manifest(entry("web", binding("s", CRT))), {"web": new}, snap, History(), now=NOW
    )
    (svc,) = report.certificates[0].services
    assert svc.state is Deployment.BEHIND
    assert svc.mounts[0].leaf_sha256 == old.leaf_sha256
    assert crt_old.name in svc.details[0]
    assert not report.ok


def test_service_on_a_foreign_object_is_reverted() -> None:
    d = digest("web")
    fixed = foreign("web_crt_fixed_name")  # what a stack file with a fixed name deploys
    key = deployed("web.key", d, Source.PRIVKEY)
    snap = SwarmSnapshot(
        services=(service("s", mount(fixed, "web.crt"), mount(key, "web.key", 0o400)),),
        objects=(fixed, key),
    )
    report = build_status(
        manifest(entry("web", binding("s", CRT, KEY))), {"web": d}, snap, History(), now=NOW
    )
    (svc,) = report.certificates[0].services
    # One good mount does not hide a bad one: the service is as bad as its worst mount.
    assert [m.state for m in svc.mounts] == [Deployment.REVERTED, Deployment.UP_TO_DATE]
    assert svc.state is Deployment.REVERTED
    assert "web_crt_fixed_name" in svc.details[0]


def test_a_managed_version_of_another_base_is_reverted_unless_it_holds_the_right_bytes() -> None:
    d, old = digest("web"), digest("web", 0)
    same = deployed("other.crt", d, Source.FULLCHAIN)  # a renamed base: the plan keeps it
    stale = deployed("other.crt", old, Source.FULLCHAIN)
    snap = SwarmSnapshot(
        services=(service("s", mount(same, "web.crt")), service("t", mount(stale, "web.crt"))),
        objects=(same, stale),
    )
    report = build_status(
        manifest(entry("web", binding("s", CRT), binding("t", CRT))),
        {"web": d},
        snap,
        History(),
        now=NOW,
    )
    states = [s.state for s in report.certificates[0].services]
    assert states == [Deployment.UP_TO_DATE, Deployment.REVERTED]


def test_absent_service_and_absent_mount_are_missing() -> None:
    d = digest("web")
    snap = SwarmSnapshot(services=(service("s"),), objects=())
    report = build_status(
        manifest(entry("web", binding("s", CRT), binding("gone", CRT))),
        {"web": d},
        snap,
        History(),
        now=NOW,
    )
    present, gone = report.certificates[0].services
    assert present.state is Deployment.MISSING
    assert present.details == ("no secret mounted at web.crt",)
    assert gone.state is Deployment.MISSING
    assert gone.details == ("service does not exist",)


def test_mode_other_than_the_manifest_is_wrong_file_attrs() -> None:
    d = digest("web")
    key = deployed("web.key", d, Source.PRIVKEY)
    snap = SwarmSnapshot(services=(service("s", mount(key, "web.key", 0o444)),), objects=(key,))
    report = build_status(
        manifest(entry("web", binding("s", KEY))), {"web": d}, snap, History(), now=NOW
    )
    (svc,) = report.certificates[0].services
    assert svc.state is Deployment.WRONG_FILE_ATTRS
    assert svc.details == ("web.key mounted as 0:0 0444; the manifest says 0:0 0400",)
    assert svc.mounts[0].leaf_sha256 == d.leaf_sha256


def test_unreadable_certificate_is_a_row_with_its_error_and_still_spots_reverted() -> None:
    old = digest("web", 1)
    crt_old = deployed("web.crt", old, Source.FULLCHAIN)
    fixed = foreign("fixed")
    snap = SwarmSnapshot(
        services=(service("a", mount(crt_old, "web.crt")), service("b", mount(fixed, "web.crt"))),
        objects=(crt_old, fixed),
    )
    problem = DiskProblem(
        message="/le/live/web: certbot lineage directory not found", check="missing"
    )
    report = build_status(
        manifest(entry("web", binding("a", CRT), binding("b", CRT))),
        {"web": problem},
        snap,
        History(),
        now=NOW,
    )
    (cert,) = report.certificates
    assert not cert.disk.ok
    assert (cert.disk.error, cert.disk.check) == (problem.message, "missing")
    assert cert.disk.not_after is None and cert.disk.days_left(NOW) is None
    assert [s.state for s in cert.services] == [Deployment.UNKNOWN, Deployment.REVERTED]


def test_a_failed_check_still_shows_what_is_on_disk_and_compares_it() -> None:
    d = digest("web")
    crt = deployed("web.crt", d, Source.FULLCHAIN)
    snap = SwarmSnapshot(services=(service("s", mount(crt, "web.crt")),), objects=(crt,))
    problem = DiskProblem(message="cert.pem: expired", check="expired", digest=d)
    report = build_status(
        manifest(entry("web", binding("s", CRT))), {"web": problem}, snap, History(), now=NOW
    )
    (cert,) = report.certificates
    assert cert.disk.not_after == d.not_after and cert.disk.sha256 == d.leaf_sha256
    assert cert.disk.error == "cert.pem: expired"
    assert cert.services[0].state is Deployment.UP_TO_DATE
    assert not cert.up_to_date  # a bad certificate is not "all good", even if deployed


def test_files_compare_their_content_with_the_payload_on_disk() -> None:
    d = digest("web")
    good, old, absent, unreadable = (Path(f"/srv/{n}.pem") for n in ("good", "old", "no", "x"))
    files = tuple(FileTarget(path=p, source=Source.FULLCHAIN) for p in (good, old, absent))
    report = build_status(
        manifest(
            entry("web", binding("s", files=files)),
            entry("web2", binding("t", files=(FileTarget(path=unreadable, source=Source.CERT),))),
        ),
        {"web": d, "web2": digest("web2")},
        SwarmSnapshot(services=(service("s"), service("t")), objects=()),
        History(),
        now=NOW,
        file_hashes={good: d.payload_sha256[Source.FULLCHAIN], old: "0" * 64, absent: None},
    )
    svc = report.certificates[0].services[0]
    assert [m.state for m in svc.mounts] == [
        Deployment.UP_TO_DATE,
        Deployment.BEHIND,
        Deployment.MISSING,
    ]
    assert svc.state is Deployment.MISSING
    assert report.certificates[1].services[0].state is Deployment.UNKNOWN


def test_restart_only_service_is_up_to_date_once_restarted_for_the_current_leaf() -> None:
    d = digest("web")
    snap = SwarmSnapshot(services=(service("s"), service("t")), objects=())
    history = History(restarted={("web", "s"): d.leaf_sha256, ("web", "t"): "f" * 64})
    report = build_status(
        manifest(entry("web", binding("s"), binding("t"))), {"web": d}, snap, history, now=NOW
    )
    s, t = report.certificates[0].services
    assert s.state is Deployment.UP_TO_DATE
    assert t.state is Deployment.BEHIND
    assert t.mounts[0].leaf_sha256 == "f" * 64
    assert "f" * HASH_CHARS in t.details[0]


def test_history_and_manifest_order_are_kept_and_a_cert_without_services_has_a_row() -> None:
    rotation = RunRecord(time=T0, result="ok")
    verify = RunRecord(time=T0, result="failed", urls=(("https://h:1/", False),))
    history = History(certs={"b": CertHistory(last_rotation=rotation, last_verify=verify)})
    report = build_status(
        manifest(entry("b"), entry("a")),
        {"a": digest("a"), "b": digest("b")},
        SwarmSnapshot(services=(), objects=()),
        history,
        now=NOW,
    )
    assert [c.name for c in report.certificates] == ["b", "a"]
    b, a = report.certificates
    assert b.history.last_rotation == rotation and b.history.last_verify == verify
    assert a.history == CertHistory()
    assert b.services == () and b.up_to_date


def test_a_backoff_shows_only_for_the_leaf_that_failed_and_only_until_its_time() -> None:
    d = digest("web", 2)
    snap = SwarmSnapshot(services=(), objects=())
    until = NOW + dt.timedelta(hours=2)

    def backoff_of(leaf: str, until: dt.datetime) -> dt.datetime | None:
        failed = CertHistory(failures=2, backoff_until=until, backoff_leaf=leaf)
        history = History(certs={"web": failed})
        report = build_status(manifest(entry("web")), {"web": d}, snap, history, now=NOW)
        cert = report.certificates[0]
        assert cert.history.failures == 2  # the count stays until a rollout succeeds
        return cert.history.backoff_until

    assert backoff_of(d.leaf_sha256, until) == until
    assert backoff_of(digest("web", 1).leaf_sha256, until) is None  # renewed since
    assert backoff_of(d.leaf_sha256, NOW - dt.timedelta(minutes=1)) is None  # over
