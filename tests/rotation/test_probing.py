"""The engine's TLS checks: keyed by (certificate, URL), and which failures roll back."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoenix_certbot.net.probe import ProbeResult
from phoenix_certbot.rotation import probing
from phoenix_certbot.rotation.plan import Check
from tests.support.tls_server import TlsServer, answer

OK = answer("200 OK", b"ok")


@pytest.fixture
def sni_server(tmp_path: Path) -> Iterator[TlsServer]:
    with TlsServer(tmp_path, OK, ("a.test", "b.test"), sni_split=True) as server:
        yield server


def test_two_certificates_behind_one_url_are_two_results(sni_server: TlsServer) -> None:
    url = sni_server.url()
    checks = [Check("a", url, "a.test", "x" * 64), Check("b", url, "b.test", "y" * 64)]
    before = probing.observe(checks)
    assert before == {
        ("a", url): probing.Served(sni_server.leaves["a.test"].sha256, True, None),
        ("b", url): probing.Served(sni_server.leaves["b.test"].sha256, True, None),
    }
    expected = [
        Check("a", url, "a.test", sni_server.leaves["a.test"].sha256),
        Check("b", url, "b.test", "0" * 64),
    ]
    results = probing.verify(expected, before, timeout_s=1)
    assert [(r.check.cert, r.ok, r.blocking) for r in results] == [
        ("a", True, False),
        ("b", False, True),
    ]


NEW_DER, OLD_DER = b"new leaf", b"old leaf"
NEW, OLD = hashlib.sha256(NEW_DER).hexdigest(), hashlib.sha256(OLD_DER).hexdigest()
CHECK = Check("web", "https://127.0.0.1:1/", "web.test", NEW)


def result(der: bytes | None, status: int | None = 200, error: str | None = None) -> ProbeResult:
    return ProbeResult(CHECK.url, "web.test", leaf_der=der, status=status, error=error)


def test_a_new_failure_blocks() -> None:
    judged = probing.judge(CHECK, result(OLD_DER), 3, probing.Served(OLD, True))
    assert (judged.ok, judged.waived, judged.blocking, judged.failing_before) == (
        False,
        False,
        True,
        None,
    )


def test_a_url_that_answered_nobody_before_is_waived_whatever_it_does_now() -> None:
    dead = probing.Served(None, False, "connect to 127.0.0.1:1 failed")
    judged = probing.judge(CHECK, result(None, None, "connect failed"), 3, dead)
    assert (judged.ok, judged.waived, judged.blocking) == (False, True, False)
    assert judged.failing_before == "connect to 127.0.0.1:1 failed"


def test_a_url_that_only_answered_5xx_before_still_must_serve_the_new_leaf() -> None:
    sick = probing.Served(OLD, False, "HTTP status 503")
    right_leaf = probing.judge(CHECK, result(NEW_DER, 503), 3, sick)
    assert (right_leaf.ok, right_leaf.waived, right_leaf.blocking) == (False, True, False)
    wrong_leaf = probing.judge(CHECK, result(OLD_DER, 503), 3, sick)
    assert (wrong_leaf.ok, wrong_leaf.waived, wrong_leaf.blocking) == (False, False, True)


def test_not_probed_before_means_no_waiver() -> None:
    judged = probing.judge(CHECK, result(None, None, "refused"), 1, None)
    assert judged.blocking and judged.failing_before is None
