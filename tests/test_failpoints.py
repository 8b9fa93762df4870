"""Failpoints kill the process only where the environment names them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from phoenix_certbot import failpoints


def run(point: str, env_value: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != failpoints.ENV}
    if env_value is not None:
        env[failpoints.ENV] = env_value
    code = f"from phoenix_certbot.failpoints import hit; hit({point!r}); print('alive')"
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_a_named_point_kills_the_process_with_sigkill() -> None:
    result = run("service-updated", "files-written, service-updated")
    assert result.returncode == -signal.SIGKILL and result.stdout == ""


@pytest.mark.parametrize("env_value", [None, "", "files-written"])
def test_other_points_and_no_setting_do_nothing(env_value: str | None) -> None:
    result = run("service-updated", env_value)
    assert result.returncode == 0 and result.stdout == "alive\n"


def test_an_unknown_name_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown failpoint"):
        failpoints.hit("service-upated")
