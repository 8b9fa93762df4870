"""Is THIS certificate served? One bounded HTTPS request (`net.https`), and retries.

We do not validate the chain against a trust store here: the question is "is THIS
certificate served?", answered by comparing the leaf's SHA-256 with the one on disk, which
works the same for public ACME, Pebble and internal CAs.
"""

from __future__ import annotations

import time

from phoenix_certbot.net.https import PIN_LEAF, HttpsResult, fetch

# One result type for every request we make; the name the rotation engine and verify use.
ProbeResult = HttpsResult


def probe(url: str, server_name: str | None = None, timeout_s: float = 5.0) -> ProbeResult:
    """Connect, handshake with SNI `server_name` (default the URL host), GET the URL path;
    everything within `timeout_s`."""
    return fetch(url, server_name=server_name, trust=PIN_LEAF, timeout_s=timeout_s)


def probe_until(
    url: str,
    server_name: str | None,
    expected_sha256: str | None,
    timeout_s: float,
    attempt_timeout_s: float = 5.0,
    max_attempts: int = 60,
) -> tuple[ProbeResult, int]:
    """Probe with backoff until the expected leaf is served and the application answers
    (2xx, or a redirect), the time is up, or `max_attempts` is reached. Returns the last
    result and the number of attempts."""
    deadline = time.monotonic() + timeout_s
    delay = 0.25
    result = ProbeResult(url, server_name or "", error="not probed")
    for attempt in range(1, max_attempts + 1):
        result = probe(
            url, server_name, min(attempt_timeout_s, max(0.1, deadline - time.monotonic()))
        )
        matches = expected_sha256 is None or result.leaf_sha256 == expected_sha256
        if result.answered and matches:
            return result, attempt
        if time.monotonic() + delay >= deadline:
            return result, attempt
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
    return result, max_attempts
