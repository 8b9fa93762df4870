"""`phoenix-cert notify-test` against real receivers on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from phoenix_certbot.cli.main import cli
from phoenix_certbot.net.notify import DEFAULT_TIMEOUT_S
from tests.manifest.test_load import example, write
from tests.support.receiver import TOKEN, json_receiver, silent_receiver

PHOENIX_CERT = Path(sys.executable).parent / "phoenix-cert"


def manifest(tmp_path: Path, *urls: str) -> Path:
    data = example()
    data["settings"]["notify_urls"] = list(urls)
    data["settings"]["state_dir"] = str(tmp_path / "state")
    return write(tmp_path, data)


def test_each_url_is_reported_by_its_origin_and_one_failure_exits_1(tmp_path: Path) -> None:
    with json_receiver() as good, json_receiver(status=500) as bad:
        path = manifest(tmp_path, good.url, bad.url)
        result = CliRunner().invoke(cli, ["notify-test", "--manifest", str(path)])
        [body] = good.wait_for(1)
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "settings.notify_urls[0] (json): ok"
    assert lines[1].startswith("settings.notify_urls[1] (json): FAILED: ")
    assert "test notification" in body["title"]
    assert TOKEN not in result.output


def test_without_a_url_it_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["notify-test", "--manifest", str(manifest(tmp_path))])
    assert result.exit_code == 2
    assert "no notify URL configured" in result.output


def test_a_receiver_that_never_answers_does_not_hold_the_process(tmp_path: Path) -> None:
    with silent_receiver() as url, json_receiver() as good:
        path = manifest(tmp_path, url, good.url)
        started = time.monotonic()
        done = subprocess.run(
            [str(PHOENIX_CERT), "notify-test", "--manifest", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        took = time.monotonic() - started
    print(f"\nnotify-test with a silent receiver: {took:.1f} s (bound {DEFAULT_TIMEOUT_S:g} s)")
    assert done.returncode == 1, done.stderr
    assert took < DEFAULT_TIMEOUT_S + 5  # the bound, plus starting Python and Apprise
    # Apprise's own read timeout (4 s) may end it before ours does: either says why.
    silent, answered = done.stdout.splitlines()
    assert silent.startswith("settings.notify_urls[0] (json): FAILED: ")
    assert answered == "settings.notify_urls[1] (json): ok"
    assert TOKEN not in done.stdout + done.stderr
    assert json.dumps(good.bodies)  # the answering URL got its message meanwhile
