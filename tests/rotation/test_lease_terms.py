"""The lease's decisions with a fake clock: expired or not, may a waiter take it over."""

from __future__ import annotations

import datetime as dt

import pytest

from phoenix_certbot.rotation import lease_terms as lt
from phoenix_certbot.rotation.lease_terms import Holder, Standing, Terms
from phoenix_certbot.swarm.model import LABEL_LEASE

T0 = dt.datetime(2026, 12, 1, 10, 0, 0, tzinfo=dt.timezone.utc)
HOLDER = Holder(host="mgr1", pid=4242, run="a1b2c3", command="phoenix-cert rotate", process="x")


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def taken(ttl_s: float = 30.0) -> Terms:
    return lt.held(HOLDER, T0, ttl_s)


def test_a_lease_is_held_until_the_waiter_has_seen_it_unchanged_for_a_whole_ttl() -> None:
    terms = taken()
    assert lt.judge(terms, unchanged_for_s=1) is Standing.HELD
    assert lt.judge(terms, unchanged_for_s=29.9) is Standing.HELD
    assert lt.judge(terms, unchanged_for_s=30.0) is Standing.EXPIRED


def test_its_written_expiry_never_frees_a_lease_whatever_the_waiters_clock_says() -> None:
    # A manager whose clock runs an hour ahead sees a live lease "expired" long ago; the
    # holder renewed it 5 s ago (the version the waiter watches moved), so it stays held.
    # The same goes for a holder whose clock runs ahead: only the observation counts.
    assert lt.judge(taken(), unchanged_for_s=5) is Standing.HELD
    ahead = lt.held(HOLDER, at(3600), 30.0)
    assert lt.judge(ahead, unchanged_for_s=29.9) is Standing.HELD
    assert lt.judge(ahead, unchanged_for_s=30.0) is Standing.EXPIRED


def test_the_staleness_rule_uses_the_holders_ttl_not_the_waiters() -> None:
    long = taken(ttl_s=300.0)
    assert long.ttl_s == 300.0
    assert lt.judge(long, unchanged_for_s=60) is Standing.HELD


def test_renewal_keeps_the_acquisition_time_and_moves_the_expiry() -> None:
    renewed = lt.held(HOLDER, at(10), 30.0, acquired=T0)
    assert renewed.acquired == T0
    assert renewed.expires == at(40)
    assert lt.judge(renewed, unchanged_for_s=5) is Standing.HELD


def test_a_holder_gone_from_this_machine_is_abandoned_at_once() -> None:
    assert lt.judge(taken(), unchanged_for_s=0, holder_gone=True) is Standing.ABANDONED


def test_a_released_lease_is_free_and_keeps_its_last_holder() -> None:
    free = lt.released(taken(), at(5))
    assert lt.judge(free, unchanged_for_s=0) is Standing.FREE
    assert free.holder == HOLDER


@pytest.mark.parametrize(
    "labels",
    [
        {LABEL_LEASE: "held"},  # no holder, no expiry
        {LABEL_LEASE: "weird"},
        {**lt.to_labels(taken()), LABEL_LEASE + ".expires": "soon"},
        {**lt.to_labels(taken()), LABEL_LEASE + ".expires": "2026-12-01T10:00:00"},  # naive
        {**lt.to_labels(taken()), LABEL_LEASE + ".pid": "many"},
    ],
)
def test_damaged_labels_never_block_forever(labels: dict[str, str]) -> None:
    standing = lt.judge(lt.from_labels(labels), unchanged_for_s=0)
    assert standing is Standing.DAMAGED
    assert standing.takeable


def test_only_held_is_not_takeable() -> None:
    assert [s for s in Standing if not s.takeable] == [Standing.HELD]


def test_labels_round_trip() -> None:
    for terms in (taken(), lt.released(taken(), at(3)), lt.held(HOLDER, at(9), 5.0, T0)):
        assert lt.from_labels(lt.to_labels(terms)) == terms


def test_labels_are_readable_by_an_operator() -> None:
    labels = lt.to_labels(taken())
    assert labels[LABEL_LEASE] == "held"
    assert labels[LABEL_LEASE + ".host"] == "mgr1"
    assert labels[LABEL_LEASE + ".pid"] == "4242"
    assert labels[LABEL_LEASE + ".expires"] == "2026-12-01T10:00:30.000+00:00"


def test_the_waiting_message_names_the_holder_and_the_expiry() -> None:
    text = lt.describe("phoenix-certbot-lease", taken())
    assert text == (
        "swarm lease phoenix-certbot-lease held by phoenix-cert rotate (pid 4242 on mgr1, "
        "run a1b2c3) since 2026-12-01T10:00:00.000+00:00; expires "
        "2026-12-01T10:00:30.000+00:00 unless renewed"
    )


def test_three_renewals_per_ttl() -> None:
    assert lt.renewal_interval(30.0) == 10.0
