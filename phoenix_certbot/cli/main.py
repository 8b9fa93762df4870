"""`phoenix-cert`: the command-line entry point.

Subcommands are imported only when they run, so `phoenix-cert --help` never imports
docker or certbot. Our errors become one line on stderr and the exit code they carry.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import click

from phoenix_certbot import __version__
from phoenix_certbot.cli.options import add_verbosity_options, configure_logging
from phoenix_certbot.errors import EXIT_FAILED, PhoenixError

log = logging.getLogger("phoenix_certbot")

# name -> (module, attribute, one-line help shown by --help without importing the module)
_ROTATE = "phoenix_certbot.cli.rotate_cmd"
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "manifest": (
        "phoenix_certbot.cli.manifest_cmd",
        "manifest",
        "Check or migrate the certificate manifest.",
    ),
    "plan": (_ROTATE, "plan_command", "Show what a rotation would change; change nothing."),
    "rotate": (
        _ROTATE,
        "rotate_command",
        "Deploy the certificates on disk, verified, with rollback.",
    ),
    "rollback": (
        _ROTATE,
        "rollback_command",
        "Put a certificate's services back on the previous version.",
    ),
    "deploy-hook": (
        _ROTATE,
        "deploy_hook_command",
        "For certbot --deploy-hook: rotate $RENEWED_LINEAGE.",
    ),
    "post-hook": (
        _ROTATE,
        "post_hook_command",
        "For certbot --post-hook: deploy deferred lineages.",
    ),
    "stack-env": (_ROTATE, "stack_env_command", "Print VAR=versioned_name lines for stack files."),
    "verify": (
        "phoenix_certbot.cli.verify_cmd",
        "verify_command",
        "Lint stack files, check certificates and what is served.",
    ),
    "status": (
        "phoenix_certbot.cli.status_cmd",
        "status_command",
        "Certificates, deployed versions, last runs; metrics.",
    ),
    "notify-test": (
        "phoenix_certbot.cli.notify_cmd",
        "notify_test_command",
        "Send a test notification to every configured URL.",
    ),
    "wait-ready": (
        "phoenix_certbot.cli.wait_ready_cmd",
        "wait_ready_command",
        "Wait, bounded, until Portainer reaches every agent and the swarm is whole.",
    ),
    "install-systemd": (
        "phoenix_certbot.cli.systemd_cmd",
        "install_systemd_command",
        "Write the systemd units and timers.",
    ),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = _COMMANDS.get(cmd_name)
        if spec is None:
            return None
        command = getattr(importlib.import_module(spec[0]), spec[1])
        assert isinstance(command, click.Command)  # noqa: S101
        return add_verbosity_options(command)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, spec[2]) for name, spec in sorted(_COMMANDS.items())]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PhoenixError as exc:
            click.echo(f"phoenix-cert: error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except OSError as exc:  # an adapter failed to translate; still one line
            log.debug("unexpected OS error", exc_info=True)
            click.echo(f"phoenix-cert: error: {exc}", err=True)
            ctx.exit(EXIT_FAILED)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="phoenix-cert")
@click.option("-v", "--verbose", count=True, help="More diagnostics on stderr (-vv for debug).")
@click.option("-q", "--quiet", count=True, help="Errors only on stderr.")
def cli(verbose: int, quiet: int) -> None:
    """Roll renewed TLS certificates into Docker Swarm services, verified, with rollback.

    \b
    Exit codes: 0 success; 1 operation failed (nothing left broken); 2 bad input
    (nothing changed); 3 Docker unreachable or not a swarm manager (nothing changed);
    4 partial failure that needs an operator.

    -v and -q work after the subcommand too. Under systemd (stderr is the journal),
    progress is logged at INFO as it happens.
    """
    configure_logging(verbose, quiet)


def main() -> None:
    cli(prog_name="phoenix-cert")
