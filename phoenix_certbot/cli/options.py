"""Options shared by several subcommands, and the logging they control."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

import click

from phoenix_certbot.manifest.model import PortainerSettings

F = TypeVar("F", bound=Callable[..., Any])
LOG = logging.getLogger("phoenix_certbot")
# journald's priority prefixes (sd-daemon(3)): the journal files each line at its level.
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3}


def manifest_option(func: F) -> F:
    decorator = click.option(
        "--manifest",
        "manifest_path",
        type=click.Path(dir_okay=False),
        default=None,
        help="Manifest file (default: $PHOENIX_CERT_MANIFEST, then "
        "/usr/local/phoenix_hypervisor/etc/certificate-manifest.json, then "
        "/etc/phoenix-certbot/certificate-manifest.json).",
    )
    return decorator(func)


def json_option(func: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON document on stdout."
    )(func)


def timeout_option(default: float, what: str) -> Callable[[F], F]:
    """`--timeout` for the URL checks, one name for verify, rotate and rollback (the old
    `--verify-timeout` spelling still works, hidden)."""

    def decorate(func: F) -> F:
        func = click.option(
            "--timeout",
            "timeout_s",
            type=click.FloatRange(1, 3600),
            default=default,
            show_default=True,
            help=f"Seconds to wait for each URL to serve {what}, retries included.",
        )(func)
        return click.option(
            "--verify-timeout", "timeout_s", type=click.FloatRange(1, 3600), hidden=True
        )(func)

    return decorate


# -- logging -------------------------------------------------------------------------------
def _to_journal(stream: IO[str]) -> bool:
    """Whether `stream` is connected to the journal: systemd sets $JOURNAL_STREAM to the
    device and inode of the service's stderr (systemd.exec(5))."""
    wanted = os.environ.get("JOURNAL_STREAM", "")
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return wanted == f"{st.st_dev}:{st.st_ino}"


class _JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        priority = _PRIORITY.get(record.levelno, 3 if record.levelno > logging.ERROR else 6)
        return f"<{priority}>{super().format(record)}"


def configure_logging(verbose: int = 0, quiet: int = 0, stream: IO[str] | None = None) -> None:
    """Diagnostics on stderr. Warnings and errors by default; under systemd (stderr is the
    journal) progress too, at INFO as it happens, each line at its journal priority."""
    stream = stream or sys.stderr
    journal = _to_journal(stream)
    handler = logging.StreamHandler(stream)
    formatter = _JournalFormatter if journal else logging.Formatter
    handler.setFormatter(formatter("phoenix-cert: %(levelname)s: %(message)s"))
    LOG.handlers[:] = [handler]
    LOG.setLevel(logging.INFO if journal else logging.WARNING)
    LOG.propagate = False
    adjust_verbosity(verbose, quiet)


def adjust_verbosity(verbose: int, quiet: int) -> None:
    level = LOG.level - 10 * verbose + 10 * quiet
    LOG.setLevel(min(max(level, logging.DEBUG), logging.ERROR))


def _more(ctx: click.Context, param: click.Parameter, value: int) -> None:
    if value:
        adjust_verbosity(*((value, 0) if param.name == "verbose" else (0, value)))


def add_verbosity_options(command: click.Command) -> click.Command:
    """Give `command` (and a group's subcommands) -v/-q of its own, so that they work
    after the subcommand too (`phoenix-cert rotate --all -v`); they add to the ones given
    before it."""
    if not any(p.name == "verbose" for p in command.params):
        command.params += [
            click.Option(
                [short, long],
                count=True,
                expose_value=False,
                callback=_more,
                help=help_text,
            )
            for short, long, help_text in (
                ("-v", "--verbose", "More diagnostics on stderr (-vv for debug)."),
                ("-q", "--quiet", "Errors only on stderr."),
            )
        ]
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_verbosity_options(sub)
    return command


def portainer_options(func: F) -> F:
    """--portainer-url/-token-file/-server-name/-ca-file (over `settings.portainer`)."""
    path = click.Path(dir_okay=False)
    options = [
        click.option(
            "--portainer-url",
            default=None,
            help="Portainer's base URL, https://HOST:PORT (default: settings.portainer.url).",
        ),
        click.option(
            "--portainer-token-file",
            type=path,
            default=None,
            help="File holding a Portainer API access token, sent as X-API-Key; with it, "
            "Portainer is asked to reach the agent on every node (default: "
            "settings.portainer.token_file).",
        ),
        click.option(
            "--portainer-server-name",
            default=None,
            help="SNI and the name Portainer's certificate must cover (default: the URL host).",
        ),
        click.option(
            "--portainer-ca-file",
            type=path,
            default=None,
            help="PEM bundle to trust for Portainer's certificate, e.g. its self-signed "
            "certificate (default: the system store).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def portainer_settings(
    url: str | None, token_file: str | None, server_name: str | None, ca_file: str | None
) -> PortainerSettings:
    return PortainerSettings(
        url=url or None,
        token_file=Path(token_file) if token_file else None,
        server_name=server_name or None,
        ca_file=Path(ca_file) if ca_file else None,
    )


def swarm_checks_option(func: F) -> F:
    return click.option(
        "--no-swarm-checks",
        "swarm_checks",
        flag_value=False,
        default=True,
        help="Skip the swarm's own checks (node state, manager reachability, ports 7946 "
        "and 2377 from here, overlay MTU).",
    )(func)
