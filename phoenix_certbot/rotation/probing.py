"""The engine's TLS checks: what each URL serves before anything changes, and whether it
serves the leaf expected afterwards. Results are keyed by (certificate, URL): two
certificates behind one SNI-multiplexed URL are two checks.

A check that already failed before the run is reported, and its failure is waived as a
reason to roll back as far as it fails the same way: nothing answered before (connect or
TLS), or the right leaf is served and only the HTTP status is still wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from phoenix_certbot.net.probe import ProbeResult, probe_until
from phoenix_certbot.rotation.journal import LeafCheck
from phoenix_certbot.rotation.outcome import CheckOutcome
from phoenix_certbot.rotation.plan import Check

# A probe is one handshake and one small request: a wave of 32 services is checked in one
# round instead of four.
MAX_PARALLEL_PROBES = 32
# Before the update: long enough that a URL restarting by chance is not taken for a dead one.
BEFORE_S = 5.0

Key = tuple[str, str]  # (certificate, URL)
_In = TypeVar("_In")
_Out = TypeVar("_Out")


@dataclass(frozen=True)
class Served:
    """What a URL served before the run."""

    leaf: str | None  # None: no certificate came back (connect or TLS failed)
    ok: bool  # a certificate and a 2xx answer
    error: str | None = None


def key(check: Check | LeafCheck) -> Key:
    return check.cert, check.url


def _parallel(fn: Callable[[_In], _Out], items: Sequence[_In]) -> list[_Out]:
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_PROBES, len(items))) as pool:
        return list(pool.map(fn, items))


def observe(checks: Sequence[Check]) -> dict[Key, Served]:
    def one(check: Check) -> tuple[Key, Served]:
        result, _ = probe_until(check.url, check.server_name, None, BEFORE_S)
        ok = result.answered
        error = result.error or (None if ok else f"HTTP status {result.status}")
        return key(check), Served(result.leaf_sha256, ok, error)

    return dict(_parallel(one, checks))


def judge(
    check: Check,
    result: ProbeResult,
    attempts: int,
    before: Served | None,
    *,
    also: str | None = None,
    need_http: bool = True,
) -> CheckOutcome:
    """The check's verdict on one probe result; `also` is a second acceptable leaf."""
    wanted = {check.expected_sha256} | ({also} if also else set())
    leaf_ok = result.leaf_sha256 in wanted
    # A redirect is a live application answering, not a dead server.
    answered = result.answered or (result.error is None and not need_http)
    ok = leaf_ok and answered
    error = None
    if not ok:
        if result.error is not None:
            error = result.error
        elif not leaf_ok:
            error = (
                f"served leaf {str(result.leaf_sha256)[:16]} is not the expected "
                f"{check.expected_sha256[:16]}"
            )
        else:
            error = f"HTTP status {result.status}"
    failing_before = None if before is None or before.ok else before.error or "failed"
    waived = (
        not ok
        and before is not None
        and not before.ok
        and (before.leaf is None or (leaf_ok and result.leaf_sha256 is not None))
    )
    return CheckOutcome(
        check,
        ok,
        result.leaf_sha256,
        result.status,
        error,
        attempts,
        failing_before=failing_before,
        waived=waived,
    )


def verify(
    checks: Sequence[Check], before: Mapping[Key, Served], timeout_s: float
) -> list[CheckOutcome]:
    """Each URL must serve its check's leaf and answer 2xx, within `timeout_s`."""

    def one(check: Check) -> CheckOutcome:
        result, attempts = probe_until(
            check.url, check.server_name, check.expected_sha256, timeout_s
        )
        return judge(check, result, attempts, before.get(key(check)))

    return _parallel(one, checks)


def verify_restored(
    checks: Sequence[LeafCheck], also_new: set[str], timeout_s: float
) -> list[CheckOutcome]:
    """After a rollback: each URL that served a certificate before serves that one again
    (or the new one, for a certificate in `also_new`, which some service still deploys),
    and answers 2xx if it did before. URLs that served nothing before are left out."""

    def one(leaf: LeafCheck) -> CheckOutcome:
        assert leaf.before is not None  # noqa: S101 - filtered below
        check = Check(leaf.cert, leaf.url, leaf.server_name, leaf.before)
        also = leaf.expected if leaf.cert in also_new else None
        # With two acceptable leaves, any answer will do to judge by.
        want = None if also else check.expected_sha256
        result, attempts = probe_until(check.url, check.server_name, want, timeout_s)
        return judge(check, result, attempts, None, also=also, need_http=leaf.before_ok)

    return _parallel(one, [c for c in checks if c.before is not None])


def leaf_checks(checks: Sequence[Check], before: Mapping[Key, Served]) -> tuple[LeafCheck, ...]:
    """The checks as the journal keeps them: with what each URL served before the run."""
    found = []
    for check in checks:
        served = before.get(key(check)) or Served(None, False, "not probed")
        found.append(
            LeafCheck(
                cert=check.cert,
                url=check.url,
                server_name=check.server_name,
                expected=check.expected_sha256,
                before=served.leaf,
                before_ok=served.ok,
            )
        )
    return tuple(found)


def as_checks(leaves: Sequence[LeafCheck]) -> tuple[list[Check], dict[Key, Served]]:
    """Journal checks back as engine checks and what was served before them."""
    checks = [Check(c.cert, c.url, c.server_name, c.expected) for c in leaves]
    before = {
        key(c): Served(c.before, c.before_ok, None if c.before_ok else "failed before the run")
        for c in leaves
    }
    return checks, before
