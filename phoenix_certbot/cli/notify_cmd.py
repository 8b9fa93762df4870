"""`phoenix-cert notify-test`: one test message to every configured notify URL."""

from __future__ import annotations

import click

from phoenix_certbot.cli.options import manifest_option
from phoenix_certbot.errors import EXIT_FAILED, UsageError
from phoenix_certbot.manifest import load as manifest_load


@click.command("notify-test")
@manifest_option
def notify_test_command(manifest_path: str | None) -> None:
    """Send one test message to every URL of settings.notify_urls and notify_urls_file,
    and report each result (URLs are named by where they are configured, never shown).

    \b
    Exit codes: 0 every URL took it; 1 one or more failed; 2 no URL configured.
    """
    from phoenix_certbot.notify.dispatch import notify_test

    manifest = manifest_load.load(manifest_load.locate(manifest_path))
    if not manifest.settings.notify_targets:
        raise UsageError(
            f"{manifest.path}: no notify URL configured (settings.notify_urls or "
            "settings.notify_urls_file)"
        )
    deliveries = notify_test(manifest)
    for d in deliveries:
        click.echo(f"{d.target.label}: " + ("ok" if d.ok else f"FAILED: {d.reason}"))
    if not all(d.ok for d in deliveries):
        click.get_current_context().exit(EXIT_FAILED)
