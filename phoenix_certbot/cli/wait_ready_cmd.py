"""`phoenix-cert wait-ready`: block until Portainer and the swarm are ready, within a bound."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from phoenix_certbot.cli.options import (
    json_option,
    manifest_option,
    portainer_options,
    portainer_settings,
    swarm_checks_option,
)
from phoenix_certbot.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK

if TYPE_CHECKING:
    from phoenix_certbot.readiness.observe import SwarmViewReader


def _progress(tty: bool) -> Callable[..., None]:
    """On a terminal, one status line rewritten in place; otherwise one line per attempt."""
    from phoenix_certbot.verify.wait import Attempt

    def line(attempt: Attempt) -> str:
        report = attempt.report
        state = "ready"
        if not report.ok:
            first = report.errors[0]
            more = len(report.errors) - 1
            state = f"not ready: [{first.id}] {first.message}" + (
                f" (and {more} more)" if more else ""
            )
        return f"wait-ready: attempt {attempt.number} at {attempt.at_s:.1f} s: {state}"

    def show(attempt: Attempt) -> None:
        if tty:
            width = 160
            click.echo(f"\r\x1b[K{line(attempt)[:width]}", err=True, nl=False, color=True)
        else:
            click.echo(line(attempt), err=True)

    return show


@click.command("wait-ready")
@manifest_option
@portainer_options
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(1, 86400),
    default=300.0,
    show_default=True,
    help="Give up after this many seconds: exit 1 with the last findings. The wait ends "
    "within this plus one --request-timeout, whatever the network does.",
)
@click.option(
    "--interval",
    "interval_s",
    type=click.FloatRange(0.1, 3600),
    default=2.0,
    show_default=True,
    help="Seconds from the start of one attempt to the start of the next.",
)
@click.option(
    "--request-timeout",
    "request_timeout_s",
    type=click.FloatRange(0.5, 300),
    default=10.0,
    show_default=True,
    help="Bound on one attempt, every request in it included.",
)
@swarm_checks_option
@json_option
@click.pass_context
def wait_ready_command(
    ctx: click.Context,
    manifest_path: str | None,
    portainer_url: str | None,
    portainer_token_file: str | None,
    portainer_server_name: str | None,
    portainer_ca_file: str | None,
    timeout_s: float,
    interval_s: float,
    request_timeout_s: float,
    swarm_checks: bool,
    as_json: bool,
) -> None:
    """Wait until Portainer answers, reaches its agent on every node, and the swarm is whole.

    \b
    Repeats, every --interval: Portainer's /api/system/status; with an API token, the
    request Portainer forwards to the agent on each node; and (unless --no-swarm-checks)
    the swarm's nodes, managers, ports 7946/2377 and overlay MTU. Needs no manifest when
    --portainer-url is given. Findings as `verify` (--json: the same document).

    \b
    Exit codes: 0 ready; 1 not ready at --timeout (the last findings are printed); 2 bad
    input (options, manifest, CA file, or Portainer refuses the token: at once);
    3 Docker unreachable (only with the swarm checks on).
    """
    from phoenix_certbot.errors import UsageError
    from phoenix_certbot.manifest import load as manifest_load
    from phoenix_certbot.verify import views
    from phoenix_certbot.verify.render import finding_text, report_json
    from phoenix_certbot.verify.wait import WaitOptions, wait_ready

    given = portainer_settings(
        portainer_url, portainer_token_file, portainer_server_name, portainer_ca_file
    )
    manifest = None
    if manifest_path or not given.url:
        manifest = manifest_load.load(manifest_load.locate(manifest_path))
    settings = views.merged_portainer(given, manifest)
    if not settings.url:
        raise UsageError("no Portainer URL: give --portainer-url or settings.portainer.url")
    views.check_portainer_input(settings)
    docker = _docker(request_timeout_s) if swarm_checks else None
    options = WaitOptions(settings, timeout_s, interval_s, request_timeout_s)
    tty = sys.stderr.isatty()
    last = wait_ready(options, docker, progress=_progress(tty))
    if tty:
        click.echo("", err=True)
    report = last.report
    code = (
        EXIT_OK
        if report.ok
        else EXIT_BAD_INPUT
        if report.exit_code == EXIT_BAD_INPUT
        else EXIT_FAILED
    )
    if as_json:
        document = {
            **report_json(report),
            "attempts": last.number,
            "elapsed_s": round(last.at_s, 2),
        }
        click.echo(json.dumps(document, indent=2))
    else:
        for finding in report.findings:
            click.echo(finding_text(finding))
        verdict = "ready" if report.ok else f"NOT ready (exit {code})"
        checked = report.checked
        click.echo(
            f"wait-ready: {verdict} after {last.number} attempt(s), {last.at_s:.1f} s; "
            f"{checked.agents} agent(s) asked through Portainer, {checked.swarm_nodes} swarm "
            "node(s) checked"
        )
    if code:
        ctx.exit(code)


def _docker(timeout_s: float) -> SwarmViewReader:
    """The swarm client, or exit 3 (DockerUnavailable) now: the wait could not check it."""
    from phoenix_certbot.errors import DockerUnavailable
    from phoenix_certbot.swarm.client import SwarmClient
    from phoenix_certbot.verify.wait import in_background

    job = in_background(lambda: SwarmClient.connect(timeout_s=timeout_s))
    job.done.wait(timeout_s + 1)
    if not job.done.is_set():
        raise DockerUnavailable(f"Docker did not answer within {timeout_s:g} s")
    if job.error is not None:
        raise job.error
    assert job.value is not None  # noqa: S101 - set whenever no error was
    return job.value
