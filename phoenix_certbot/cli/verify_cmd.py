"""`phoenix-cert verify`: lint stack files, check certificates and what is served."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import click

from phoenix_certbot.cli.options import (
    json_option,
    manifest_option,
    portainer_options,
    portainer_settings,
    swarm_checks_option,
)


def _progress() -> Callable[[str], None]:
    """Progress lines on a terminal (stderr); nothing on a pipe or a timer."""
    if sys.stderr.isatty():
        return lambda text: click.echo(f"  .. {text}", err=True)
    return lambda _text: None


@click.command("verify")
@manifest_option
@click.option(
    "--compose",
    "compose_files",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Stack file to lint (repeat for `docker stack deploy -c A -c B`).",
)
@click.option(
    "--env-file",
    "env_files",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="KEY=VALUE file for interpolating the stack files (repeatable; later wins; the "
    "process environment wins over all).",
)
@click.option(
    "--stack",
    default=None,
    help="Stack name: manifest services are matched as <stack>_<service> (default: by the "
    "_<service> suffix when unambiguous).",
)
@click.option("--offline", is_flag=True, help="Only the file checks: no Docker, no network.")
@json_option
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(0.5, 3600),
    default=30.0,
    show_default=True,
    help="Seconds for the live probes, retries included.",
)
@click.option(
    "--warn-days",
    type=click.IntRange(0, 3650),
    default=14,
    show_default=True,
    help="Warn when a certificate expires within this many days (error within 2).",
)
@portainer_options
@swarm_checks_option
@click.pass_context
def verify_command(
    ctx: click.Context,
    manifest_path: str | None,
    compose_files: tuple[str, ...],
    env_files: tuple[str, ...],
    stack: str | None,
    offline: bool,
    as_json: bool,
    timeout_s: float,
    warn_days: int,
    portainer_url: str | None,
    portainer_token_file: str | None,
    portainer_server_name: str | None,
    portainer_ca_file: str | None,
    swarm_checks: bool,
) -> None:
    """Lint stack files, check certificates and what the services serve.

    \b
    Unless --offline, also checks the swarm from here (nodes, managers, ports 7946 and
    2377, overlay MTU) and, with a Portainer URL and API token (options or
    settings.portainer), asks Portainer to reach its agent on every node.

    \b
    Exit codes: 0 no error; 1 a live check failed; 2 the files are wrong (compose,
    manifest, certificates) or Portainer refuses the token; 3 Docker is needed but
    unreachable (file findings are still reported).
    """
    from phoenix_certbot.verify.render import report_json, report_text
    from phoenix_certbot.verify.run import VerifyOptions, run_verify

    options = VerifyOptions(
        manifest_path=manifest_path,
        compose_files=compose_files,
        env_files=env_files,
        stack=stack,
        offline=offline,
        timeout_s=timeout_s,
        warn_days=warn_days,
        portainer=portainer_settings(
            portainer_url, portainer_token_file, portainer_server_name, portainer_ca_file
        ),
        swarm_checks=swarm_checks,
    )
    report = run_verify(options, report=_progress())
    click.echo(json.dumps(report_json(report), indent=2) if as_json else report_text(report))
    if report.exit_code:
        ctx.exit(report.exit_code)
