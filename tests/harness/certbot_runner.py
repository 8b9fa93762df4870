"""Run the venv's certbot against Pebble with every folder under one temporary directory."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# The certbot installed next to the Python running the tests (the project's venv).
CERTBOT = Path(sys.executable).parent / "certbot"
EMAIL = "admin@example.test"


@dataclass(frozen=True)
class Certbot:
    base: Path
    server: str
    ca_bundle: Path
    # The port `--standalone` binds for http-01: free per test, so that two test sessions
    # (or the demo) on one machine never fight over it.
    http_port: int = 5002
    executable: Path = CERTBOT
    timeout: float = 120.0

    @property
    def config_dir(self) -> Path:
        return self.base / "config"

    @property
    def work_dir(self) -> Path:
        return self.base / "work"

    @property
    def logs_dir(self) -> Path:
        return self.base / "logs"

    @property
    def live(self) -> Path:
        """certbot's live/ folder: one subfolder of symlinks per lineage."""
        return self.config_dir / "live"

    def run(
        self, *args: str, timeout: float | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`certbot ARGS...` with this instance's folders and server; never raises on exit code."""
        # Non-interactive `certbot renew` sleeps up to 8 minutes first (to spread load on
        # public CAs); a local Pebble needs no such courtesy.
        extra = ("--no-random-sleep-on-renew",) if args[:1] == ("renew",) else ()
        command = [
            str(self.executable),
            *args,
            *extra,
            "--config-dir", str(self.config_dir),
            "--work-dir", str(self.work_dir),
            "--logs-dir", str(self.logs_dir),
            "--server", self.server,
            "--non-interactive",
            "--agree-tos",
            "-m", EMAIL,
        ]  # fmt: skip
        full_env = dict(os.environ)
        full_env["REQUESTS_CA_BUNDLE"] = str(self.ca_bundle)
        if env:
            full_env.update(env)
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=full_env,
            stdin=subprocess.DEVNULL,
            timeout=timeout or self.timeout,
            check=False,
        )
