"""`phoenix-cert status`: certificates on disk, the version each service uses, last runs."""

from __future__ import annotations

import json
from pathlib import Path

import click

from phoenix_certbot.cli.options import json_option, manifest_option
from phoenix_certbot.manifest import load as manifest_load


@click.command("status")
@manifest_option
@json_option
@click.option(
    "--textfile",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write Prometheus metrics to this file, atomically (mode 0644), for "
    "node_exporter's textfile collector, e.g. /var/lib/prometheus/node-exporter/"
    "phoenix-cert.prom.",
)
@click.option(
    "--notify",
    is_flag=True,
    help="Send an expiry notification for certificates within --warn-days (each at most "
    'once a day; needs "expiry" in settings.notify_on). For the timer.',
)
@click.option(
    "--warn-days",
    type=click.IntRange(0, 3650),
    default=14,
    show_default=True,
    help="With --notify: notify certificates that expire within this many days.",
)
def status_command(
    manifest_path: str | None,
    as_json: bool,
    textfile: Path | None,
    notify: bool,
    warn_days: int,
) -> None:
    """Show each certificate on disk, the version each service uses, and the last runs.

    \b
    DEPLOYED is one of:
      up to date  the service uses the certificate on disk
      behind      it uses an older version managed by phoenix-cert
      reverted    it uses an object that is not ours (e.g. a stack redeploy put a fixed
                  name back): run `phoenix-cert rotate`, and see `phoenix-cert stack-env`
      missing     the service, or its mount, does not exist
      unknown     the certificate on disk cannot be read
    A certificate with bad files is shown with its error; the exit code stays 0 (2 for a
    bad manifest, 3 when Docker cannot be reached). Updates a run left unfinished (open
    intents in state_dir/journal) are listed under the table; status only reads them, the
    next `phoenix-cert rotate` (or the timer) finishes or undoes them.
    """
    from phoenix_certbot.status.collect import collect
    from phoenix_certbot.status.metrics import write_textfile
    from phoenix_certbot.status.render import status_json, status_text
    from phoenix_certbot.swarm.client import SwarmClient

    manifest = manifest_load.load(manifest_load.locate(manifest_path))
    report = collect(manifest, SwarmClient.connect(manifest.settings.docker_timeout_s))
    if textfile is not None:
        write_textfile(textfile, report)
    if notify:
        from phoenix_certbot.notify.dispatch import notify_expiry

        notify_expiry(manifest, report, warn_days)
    click.echo(json.dumps(status_json(report), indent=2) if as_json else status_text(report))
