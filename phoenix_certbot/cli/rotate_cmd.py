"""`phoenix-cert plan|rotate|rollback|deploy-hook|post-hook|stack-env`."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from phoenix_certbot.cli.options import json_option, manifest_option, timeout_option
from phoenix_certbot.errors import EXIT_FAILED, NothingValid, PhoenixError, UsageError
from phoenix_certbot.manifest import load as manifest_load
from phoenix_certbot.manifest.model import CertificateEntry, Manifest

if TYPE_CHECKING:
    from phoenix_certbot.rotation.outcome import Outcome
    from phoenix_certbot.rotation.run import RunOptions
    from phoenix_certbot.rotation.state import StateStore

log = logging.getLogger(__name__)


def _manifest(path: str | None) -> Manifest:
    return manifest_load.load(manifest_load.locate(path))


def _reporter() -> Callable[[str], None]:
    """Progress on a terminal; on a pipe or a timer, progress goes to the log at INFO."""
    if sys.stderr.isatty():
        return lambda text: click.echo(f"  .. {text}", err=True)
    return lambda text: log.info("%s", text)


def _finish(outcome: object, as_json: bool, notify: Manifest | None = None) -> None:
    """Print the outcome, send the run's notifications (`notify`: the manifest that
    configures them), and exit with the outcome's code."""
    from phoenix_certbot.rotation.outcome import Outcome
    from phoenix_certbot.rotation.render import outcome_json, outcome_text

    assert isinstance(outcome, Outcome)  # noqa: S101
    click.echo(json.dumps(outcome_json(outcome), indent=2) if as_json else outcome_text(outcome))
    if notify is not None and notify.settings.notify_targets:
        from phoenix_certbot.notify.dispatch import notify_run
        from phoenix_certbot.notify.outcome import summarize

        notify_run(notify, summarize(outcome))
    if outcome.exit_code:
        click.get_current_context().exit(outcome.exit_code)


names_argument = click.argument("names", nargs=-1)
all_option = click.option(
    "--all",
    "all_",
    is_flag=True,
    help="Every certificate in the manifest (rotate: one that fails its checks is reported "
    "and skipped, the others go on).",
)


@click.command("plan")
@manifest_option
@names_argument
@all_option
@click.option("--force", is_flag=True, help="Plan a forced update of every affected service.")
@json_option
def plan_command(
    manifest_path: str | None, names: tuple[str, ...], all_: bool, force: bool, as_json: bool
) -> None:
    """Show what a rotation would change; change nothing.

    Without names (or with --all) it plans what `rotate --all` does: a certificate that
    fails its checks is shown as skipped, and the exit code is then 1, as rotate's would be.
    """
    from phoenix_certbot.rotation.render import plan_json, plan_text
    from phoenix_certbot.rotation.run import make_plan, select, split_valid, with_companions
    from phoenix_certbot.rotation.state import StateStore
    from phoenix_certbot.swarm.client import SwarmClient

    manifest = _manifest(manifest_path)
    chosen = select(manifest, names, all_ or not names)
    skipped: dict[str, str] = {}
    if all_ or not names:
        chosen, skipped = split_valid(chosen)
    entries, materials = with_companions(manifest, chosen)
    plan, _ = make_plan(
        entries,
        SwarmClient.connect(manifest.settings.docker_timeout_s),
        StateStore(manifest.settings.state_dir),
        force,
        materials,
    )
    if as_json:
        document = plan_json(plan) | {"skipped": skipped}
        click.echo(json.dumps(document, indent=2))
    else:
        click.echo("\n".join([plan_text(plan), *skipped.values()]))
    if skipped:
        click.get_current_context().exit(EXIT_FAILED)


@click.command("rotate")
@manifest_option
@names_argument
@all_option
@click.option(
    "--force", is_flag=True, help="Update the services even if they already mount these versions."
)
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
@click.option(
    "--run-legacy-commands",
    is_flag=True,
    help="Run legacy post_renewal_commands (without a shell).",
)
@timeout_option(60.0, "the new certificate")
@json_option
def rotate_command(
    manifest_path: str | None,
    names: tuple[str, ...],
    all_: bool,
    force: bool,
    dry_run: bool,
    run_legacy_commands: bool,
    timeout_s: float,
    as_json: bool,
) -> None:
    """Deploy the certificates on disk to their services, verified, rolling back on failure."""
    from phoenix_certbot.rotation.render import plan_json, plan_text
    from phoenix_certbot.rotation.run import RunOptions, select

    manifest = _manifest(manifest_path)
    entries = select(manifest, names, all_)
    options = RunOptions(
        force=force,
        dry_run=dry_run,
        run_legacy_commands=run_legacy_commands,
        verify_timeout_s=timeout_s,
        # With --all (the timer), one bad certificate must not hold back all the others.
        skip_invalid=all_,
    )
    outcome = _rotate(manifest, entries, options, "rotate")
    if dry_run:
        click.echo(
            json.dumps(plan_json(outcome.plan), indent=2) if as_json else plan_text(outcome.plan)
        )
        return
    _finish(outcome, as_json, notify=manifest)


def _rotate(
    manifest: Manifest, entries: Sequence[CertificateEntry], options: RunOptions, command: str
) -> Outcome:
    """`rotation.run.rotate`; a run that ends in an error still tells it (a failure
    notification) before its exit code: the hourly timer's run is how an operator hears
    that Docker is away, that another run holds the lease, or that the only certificate
    went bad (once a day per certificate, like any skipped one)."""
    from phoenix_certbot.rotation.run import rotate

    try:
        return rotate(manifest, entries, options, _reporter())
    except NothingValid as exc:
        if not options.dry_run and manifest.settings.notify_targets:
            from phoenix_certbot.notify.dispatch import notify_run
            from phoenix_certbot.notify.outcome import nothing_valid

            notify_run(manifest, nothing_valid(exc.skipped))
        raise
    except PhoenixError as exc:
        if not options.dry_run and manifest.settings.notify_targets:
            from phoenix_certbot.notify.dispatch import notify_error

            notify_error(manifest, command, exc)
        raise


@click.command("deploy-hook")
@manifest_option
@click.option(
    "--defer",
    is_flag=True,
    help="Only record the lineage; `post-hook` deploys everything pending at once.",
)
@click.option(
    "--run-legacy-commands",
    is_flag=True,
    help="Run legacy post_renewal_commands (without a shell).",
)
@json_option
def deploy_hook_command(
    manifest_path: str | None, defer: bool, run_legacy_commands: bool, as_json: bool
) -> None:
    """For certbot --deploy-hook: rotate the certificates of $RENEWED_LINEAGE."""
    from phoenix_certbot.rotation.state import StateStore

    lineage = os.environ.get("RENEWED_LINEAGE")
    if not lineage:
        raise UsageError("RENEWED_LINEAGE is not set; run this as certbot's --deploy-hook")
    manifest = _manifest(manifest_path)
    entries = manifest.by_lineage(Path(lineage))
    if defer or not entries:
        store = StateStore(manifest.settings.state_dir)
        with store.locked():
            try:
                recovered = _resolve(store, manifest)
            finally:  # a renewal is never lost, even if an earlier run is left to resolve
                if defer and entries:
                    store.add_pending(lineage)
        # stdout: certbot shows any stderr of a hook as "ran with error output".
        if not entries:
            click.echo(f"{lineage}: not in {manifest.path}; nothing to do")
        else:
            click.echo(f"{lineage}: recorded; `phoenix-cert post-hook` deploys it")
        _finish_recovered(recovered, as_json)
        return
    from phoenix_certbot.rotation.run import RunOptions  # after --defer: its imports cost

    outcome = _rotate(
        manifest, entries, RunOptions(run_legacy_commands=run_legacy_commands), "deploy-hook"
    )
    _finish(outcome, as_json, notify=manifest)


def _resolve(store: StateStore, manifest: Manifest) -> object | None:
    """Under the lock: resolve an interrupted run's intents, if there are any (the rotation
    engine is imported only then: a hook that records a lineage stays fast)."""
    from phoenix_certbot.rotation.journal import Journal

    if not Journal(store.directory).read_all():
        return None
    from phoenix_certbot.rotation.run import resolve

    return resolve(store, manifest, _reporter())


def _finish_recovered(recovered: object | None, as_json: bool) -> None:
    if recovered is not None:
        _finish(recovered, as_json)


@click.command("post-hook")
@manifest_option
@click.option(
    "--run-legacy-commands",
    is_flag=True,
    help="Run legacy post_renewal_commands (without a shell).",
)
@json_option
def post_hook_command(manifest_path: str | None, run_legacy_commands: bool, as_json: bool) -> None:
    """For certbot --post-hook: deploy every lineage `deploy-hook --defer` recorded, in one plan."""
    from phoenix_certbot.rotation.run import RunOptions
    from phoenix_certbot.rotation.state import StateStore

    manifest = _manifest(manifest_path)
    store = StateStore(manifest.settings.state_dir)
    with store.locked():  # pending.json is only ever read and changed under the lock
        pending = store.pending()
        entries = tuple(
            dict.fromkeys(e for lineage in pending for e in manifest.by_lineage(Path(lineage)))
        )
        if not entries:
            recovered = _resolve(store, manifest)
            if pending:
                store.clear_pending(pending)
    if not entries:
        click.echo("no renewed lineage pending; nothing to do")
        _finish_recovered(recovered, as_json)
        return
    options = RunOptions(run_legacy_commands=run_legacy_commands, skip_invalid=True)
    outcome = _rotate(manifest, entries, options, "post-hook")
    # A lineage whose rollout failed stays pending: the next post-hook tries it again.
    failed = outcome.failed_certs()
    done = [p for p in pending if not {e.name for e in manifest.by_lineage(Path(p))} & failed]
    with store.locked():
        store.clear_pending(done)
    _finish(outcome, as_json, notify=manifest)


@click.command("rollback")
@manifest_option
@click.argument("name")
@timeout_option(60.0, "the previous certificate again")
@json_option
def rollback_command(manifest_path: str | None, name: str, timeout_s: float, as_json: bool) -> None:
    """Put the services of certificate NAME back on the previous managed version, verified."""
    from phoenix_certbot.rotation.rollback import roll_back

    manifest = _manifest(manifest_path)
    outcome = roll_back(manifest, name, timeout_s, _reporter())
    _finish(outcome, as_json)


@click.command("stack-env")
@manifest_option
def stack_env_command(manifest_path: str | None) -> None:
    """Print VAR=versioned_name lines for `docker stack deploy`.

    \b
    Deploy a stack with them (any POSIX shell):
      env $(phoenix-cert stack-env) docker stack deploy -c stack.yml prod
    """
    from phoenix_certbot.rotation.stack_env import stack_env
    from phoenix_certbot.swarm.client import SwarmClient

    manifest = _manifest(manifest_path)
    for var, value in stack_env(
        manifest, SwarmClient.connect(manifest.settings.docker_timeout_s).snapshot()
    ):
        click.echo(f"{var}={value}")
