"""Progress lines: on a terminal only, on stderr, one per probe start and end."""

from __future__ import annotations

import io
import sys

import pytest

from phoenix_certbot.cli.verify_cmd import _progress
from phoenix_certbot.net.probe import ProbeResult
from phoenix_certbot.verify.judge import ProbeTarget
from phoenix_certbot.verify.live import probe_targets


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_goes_to_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    _progress()("probing https://127.0.0.1:1/ ...")
    assert terminal.getvalue() == "  .. probing https://127.0.0.1:1/ ...\n"


def test_no_progress_on_a_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = io.StringIO()
    monkeypatch.setattr(sys, "stderr", pipe)
    _progress()("probing")
    assert pipe.getvalue() == ""


def test_probes_report_start_and_result() -> None:
    lines: list[str] = []
    target = ProbeTarget("c", "https://127.0.0.1:1/", "c.test", None)

    def refused(url: str, sni: str | None, sha: str | None, t: float) -> tuple[ProbeResult, int]:
        return ProbeResult(url, sni or "", error="refused", stage="connect"), 3

    (done,) = probe_targets([target], refused, 1.0, lines.append)
    assert not done.ok
    assert lines == [
        "probing https://127.0.0.1:1/ ...",
        "https://127.0.0.1:1/: FAILED after 3 attempts",
    ]


def test_unusable_url_is_a_finding_not_a_crash() -> None:
    target = ProbeTarget("c", "https://", "c.test", None)

    def strict(url: str, sni: str | None, sha: str | None, t: float) -> tuple[ProbeResult, int]:
        raise ValueError(f"not an https URL: {url}")

    (done,) = probe_targets([target], strict, 1.0)
    assert [f.id for f in done.findings] == ["live.connect"]
