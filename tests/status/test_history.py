"""The state directory as `History`: what `StateStore` writes, and damaged files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from phoenix_certbot.rotation.state import StateStore
from phoenix_certbot.status.history import history_from_state
from phoenix_certbot.status.model import RunRecord


def test_what_the_state_store_records_comes_back_as_runs(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    with store.locked():
        store.record_rotation("web", "a" * 64, "ok", verified=True, restarted_services=("svc",))
        store.record_verification("web", {"https://h:1/": True, "https://h:2/": False}, "a" * 64)
        store.record_rotation("db", "b" * 64, "failed", verified=False)

    history = history_from_state(store.read())

    web = history.certs["web"]
    assert web.last_rotation is not None and web.last_rotation.result == "ok"
    assert web.last_rotation.time is not None and web.last_rotation.time >= before
    assert web.last_rotation.time.tzinfo == dt.timezone.utc
    assert web.last_verify is not None and web.last_verify.result == "failed"
    assert web.last_verify.urls == (("https://h:1/", True), ("https://h:2/", False))
    db = history.certs["db"]
    assert db.last_rotation is not None and db.last_rotation.result == "failed"
    assert db.last_verify is None
    assert history.restarted == {("web", "svc"): "a" * 64}


def test_missing_state_is_an_empty_history(tmp_path: Path) -> None:
    history = history_from_state(StateStore(tmp_path / "none").read())
    assert history.certs == {} and history.restarted == {}


def test_pieces_of_the_wrong_shape_are_left_out_not_fatal() -> None:
    history = history_from_state(
        {
            "certs": {
                "bad-entry": "not a mapping",
                "odd": {
                    "last_rotation": {"time": "yesterday", "result": "ok"},
                    "last_verify": {"time": "2026-01-01T00:00:00", "urls": ["not", "a", "map"]},
                },
            },
            "restarted": {"no-separator": "x", "web|svc": 42, "web|ok": "c" * 64},
        }
    )
    assert "bad-entry" not in history.certs
    odd = history.certs["odd"]
    assert odd.last_rotation == RunRecord(time=None, result="ok")
    # A time without an offset is taken as UTC, which is what we write.
    assert odd.last_verify == RunRecord(
        time=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), result="?", urls=()
    )
    assert history.restarted == {("web", "ok"): "c" * 64}
    assert history_from_state({"certs": [], "restarted": None}).certs == {}


def test_a_hold_from_rollback_comes_back_with_its_leaf(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    with store.locked():
        store.record_rotation("web", "a" * 64, "ok", verified=True)
        store.hold("web", "c" * 64)
        assert history_from_state(store.read()).certs["web"].held_leaf == "c" * 64
        store.release("web")
        assert history_from_state(store.read()).certs["web"].held_leaf is None


def test_failures_and_backoff_come_back_when_the_state_has_them() -> None:
    history = history_from_state(
        {
            "certs": {
                "web": {"failures": 2, "backoff_until": "2026-01-01T04:00:00+00:00"},
                "odd": {"failures": "two", "backoff_until": 7},
            }
        }
    )
    assert history.certs["web"].failures == 2
    assert history.certs["web"].backoff_until == dt.datetime(2026, 1, 1, 4, tzinfo=dt.timezone.utc)
    assert (history.certs["odd"].failures, history.certs["odd"].backoff_until) == (None, None)
