"""The intent journal on disk, and how a service's spec is matched against an intent."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import stat
from pathlib import Path

import pytest

from phoenix_certbot.errors import EXIT_PARTIAL, OperationFailed
from phoenix_certbot.manifest.model import ObjectKind
from phoenix_certbot.rotation.journal import (
    FileBackup,
    Intent,
    IntentUnreadable,
    Journal,
    LeafCheck,
    OpenIntent,
    Origin,
    Phase,
)
from phoenix_certbot.rotation.spec_match import Match, classify
from phoenix_certbot.swarm.model import (
    FORCE_UPDATE_PART,
    MountRef,
    MountSlot,
    ServiceState,
    mount_part,
)

KEY = b"-----BEGIN PRIVATE KEY-----\nkeymaterial7f3a\n-----END PRIVATE KEY-----\n"
OLD = MountRef(ObjectKind.SECRET, "id-old", "web.crt_old", "web.crt")
NEW = MountRef(ObjectKind.SECRET, "", "web.crt_new", "web.crt")
OTHER = MountRef(ObjectKind.SECRET, "id-other", "other", "other")
PARTS = (
    ("Name", "n1"),
    ("TaskTemplate.ContainerSpec.Image", "i1"),
    (mount_part(ObjectKind.SECRET, "other"), "o1"),
    (mount_part(ObjectKind.SECRET, "web.crt"), "w-old"),
    (FORCE_UPDATE_PART, "f3"),
)


def intent(**changes: object) -> Intent:
    base = Intent(
        service_id="svc1",
        service="web",
        origin=Origin.ROTATE,
        phase=Phase.UPDATE,
        leaves=(("web", "n" * 64),),
        spec_before=PARTS,
        version_before=10,
        mounts_before=(MountSlot(ObjectKind.SECRET, "web.crt", OLD),),
        mounts_after=(MountSlot(ObjectKind.SECRET, "web.crt", NEW),),
        force_before=3,
        force_after=4,
        files=(FileBackup(Path("/srv/web.key"), 0o600, None, KEY, "w" * 64),),
        checks=(LeafCheck("web", "https://x/", "x", "n" * 64, "o" * 64, True),),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def state(
    web: MountRef | None, force: int, parts: tuple[tuple[str, str], ...] = PARTS
) -> ServiceState:
    refs = tuple(r for r in (web, OTHER) if r is not None)
    return ServiceState("svc1", "web", 20, refs, force_update=force, spec_parts=parts)


def test_an_intent_survives_the_round_trip_private_and_out_of_repr(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "state")
    written = intent(
        version_after=11, force_restore=5, hold=(("web", "d" * 64),), rollout="0123abcd"
    )
    journal.write(written)
    path = journal.path("svc1")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert journal.read_all() == (written,)
    assert "keymaterial7f3a" not in repr(written)
    assert b"keymaterial7f3a" not in path.read_bytes()  # base64 in the file, never the PEM text
    journal.clear("svc1")
    assert journal.read_all() == ()


def test_a_wave_of_intents_is_durable_with_one_folder_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal(tmp_path / "state")
    wave = [intent(service_id=f"svc{i}", service=f"web{i}") for i in range(32)]
    journal.directory.mkdir(mode=0o700, parents=True)
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append("folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    journal.write_all(wave)
    assert synced.count("file") == 32 and synced.count("folder") == 1
    assert sorted(journal.read_all(), key=lambda i: i.service_id) == sorted(
        wave, key=lambda i: i.service_id
    )
    synced.clear()
    journal.clear_all([i.service_id for i in wave])
    assert synced == ["folder"] and journal.read_all() == ()


def test_a_damaged_intent_is_exit_4_naming_the_file(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.write(intent())
    journal.path("svc1").write_text("{not json")
    with pytest.raises(IntentUnreadable) as info:
        journal.read_all()
    assert info.value.exit_code == EXIT_PARTIAL
    assert str(journal.path("svc1")) in str(info.value)


def test_peek_shows_who_what_and_since_when_never_raises_and_changes_nothing(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path / "state")
    assert journal.peek() == ()  # no journal folder yet
    journal.write(intent(phase=Phase.ROLLBACK, created="2026-01-02T09:00:00+00:00"))
    journal.write(intent(service_id="svc2", service="api"))
    journal.path("svc2").write_text("{not json")
    before = {p.name: p.read_bytes() for p in journal.directory.iterdir()}

    ok, damaged = journal.peek()

    assert ok == OpenIntent(
        journal.path("svc1"),
        "svc1",
        "web",
        ("web",),
        Phase.ROLLBACK,
        dt.datetime(2026, 1, 2, 9, tzinfo=dt.timezone.utc),
    )
    assert damaged.path == journal.path("svc2") and damaged.error and not damaged.service
    assert "keymaterial7f3a" not in repr((ok, damaged))
    assert {p.name: p.read_bytes() for p in journal.directory.iterdir()} == before


def test_an_intent_that_cannot_be_written_is_an_operation_error(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state folder should be")
    with pytest.raises(OperationFailed, match="cannot write the intent"):
        Journal(blocker).write(intent())


def test_spec_matches() -> None:
    after_parts = tuple(
        (k, "w-new" if k.endswith("[web.crt]") else "f4" if k == FORCE_UPDATE_PART else v)
        for k, v in PARTS
    )
    assert classify(state(OLD, 3), intent()).match is Match.BEFORE
    assert classify(state(NEW, 4, after_parts), intent()).match is Match.AFTER
    restored = intent(phase=Phase.ROLLBACK, force_restore=5)
    assert classify(state(OLD, 5), restored).match is Match.RESTORED
    assert classify(None, intent()).match is Match.GONE


def test_someone_elses_change_is_named_by_its_part() -> None:
    bumped = tuple((k, "i2" if k.endswith(".Image") else v) for k, v in PARTS)
    found = classify(state(NEW, 4, bumped), intent())
    assert found.match is Match.FOREIGN
    assert found.changed == ("TaskTemplate.ContainerSpec.Image",)
    # A stack deploy that put its own secret at our target.
    theirs = MountRef(ObjectKind.SECRET, "id-t", "web.crt_stack", "web.crt")
    found = classify(state(theirs, 4), intent())
    assert (found.match, found.changed) == (
        Match.FOREIGN,
        (mount_part(ObjectKind.SECRET, "web.crt"),),
    )
