"""Legacy `post_renewal_command`s other than a plain force update.

They run only when the operator asks (`--run-legacy-commands`), never through a shell:
the string is split into an argument list, run with a timeout, and its output logged.
"""

from __future__ import annotations

import logging
import shlex
import subprocess

from phoenix_certbot.errors import OperationFailed

log = logging.getLogger(__name__)
TIMEOUT_S = 120.0


def run_legacy_command(cert: str, command: str, timeout_s: float = TIMEOUT_S) -> None:
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise OperationFailed(
            f"certificate {cert}: post_renewal_command cannot be split: {exc}"
        ) from None
    if not argv:
        return
    log.info("certificate %s: running legacy command %s", cert, argv)
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout_s, check=False)
    except FileNotFoundError:
        raise OperationFailed(
            f"certificate {cert}: post_renewal_command: {argv[0]}: not found"
        ) from None
    except subprocess.TimeoutExpired:
        raise OperationFailed(
            f"certificate {cert}: post_renewal_command timed out after {timeout_s:g} s"
        ) from None
    for stream, data in (("stdout", done.stdout), ("stderr", done.stderr)):
        for line in data.decode(errors="replace").splitlines()[-50:]:
            log.info("certificate %s: legacy command %s: %s", cert, stream, line)
    if done.returncode != 0:
        raise OperationFailed(f"certificate {cert}: post_renewal_command exited {done.returncode}")
