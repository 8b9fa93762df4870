"""A second opinion from the engine's own parser: `docker stack config` (the one adapter
of `compose/`; everything else here is pure).

`docker stack config -c F...` validates and merges stack files on the client, with no
daemon: we point DOCKER_HOST at a socket that does not exist so it could not reach one if
it tried, give it the same interpolation environment as our loader, bound it in time and
run it without a shell. When it refuses the files its message becomes a finding next to
ours; a disagreement between the two on the test corpus is a bug in our rules.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from phoenix_certbot.compose.envfile import resolve_environment
from phoenix_certbot.errors import ComposeError
from phoenix_certbot.findings import Finding, Severity

log = logging.getLogger(__name__)
ENGINE_REJECTS = "compose.engine-rejects"
TIMEOUT_S = 20.0
NO_DAEMON = "unix:///nonexistent/phoenix-cert-no-daemon.sock"
_UNSUPPORTED = re.compile(r"^unknown (shorthand )?(flag|command)", re.MULTILINE)


@dataclass(frozen=True)
class EngineVerdict:
    accepted: bool
    message: str = ""  # why it refused, one line


def engine_verdict(
    paths: Sequence[str | Path],
    *,
    env_files: Sequence[str | Path] = (),
    environ: Mapping[str, str],
    docker: str | None = None,
    timeout_s: float = TIMEOUT_S,
) -> EngineVerdict | None:
    """What `docker stack config` says about `paths`; None when there is no docker CLI
    or it did not answer in time."""
    docker = docker or shutil.which("docker")
    if docker is None or not paths:
        return None
    try:
        env = resolve_environment(Path(paths[0]), [Path(p) for p in env_files], environ)
    except ComposeError:
        return None  # our own loader reports an unreadable env file
    env.update({"DOCKER_HOST": NO_DAEMON, "DOCKER_CLI_HINTS": "false"})
    env.pop("DOCKER_CONTEXT", None)
    command = [docker, "stack", "config"]
    for path in paths:
        command += ["-c", str(path)]
    try:
        done = subprocess.run(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("docker stack config gave no verdict: %s", exc)
        return None
    if done.returncode == 0:
        return EngineVerdict(True)
    if _UNSUPPORTED.search(done.stderr):
        # Debian 12's docker 20.10 has no `stack config`: no verdict, not a refusal.
        log.info("%s has no `docker stack config`; no second opinion on the stack files", docker)
        return None
    # Its own warnings (level=warning ...) are not the reason it refused.
    lines = [
        line.strip()
        for line in done.stderr.splitlines()
        if line.strip() and "level=warning" not in line
    ]
    return EngineVerdict(False, "; ".join(lines) or f"exit status {done.returncode}")


def engine_finding(paths: Sequence[str | Path], verdict: EngineVerdict) -> Finding:
    return Finding(
        id=ENGINE_REJECTS,
        severity=Severity.ERROR,
        message=f"docker stack config refuses the stack: {verdict.message}",
        fix="correct what it names: `docker stack deploy` refuses the files the same way",
        file=str(paths[0]),
    )
