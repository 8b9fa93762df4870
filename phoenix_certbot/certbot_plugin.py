"""certbot installer `phoenix-swarm`: certbot hands us lineages, we rotate Swarm services.

Like certbot's own installers it keeps three steps apart: `deploy_cert`/`renew_deploy` only
record the lineage, `save()` has nothing to write (safe to call any number of times), and
`restart()` runs the rotation engine. A failed rollout has already been rolled back by the
engine when `restart()` raises, so certbot's rollback_checkpoints has nothing left to undo.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from certbot import errors as certbot_errors
from certbot import interfaces
from certbot.plugins import common

from phoenix_certbot.errors import BadInput, DockerUnavailable, PhoenixError
from phoenix_certbot.manifest import load as manifest_load
from phoenix_certbot.manifest.model import Manifest

log = logging.getLogger(__name__)


class SwarmInstaller(common.Installer, interfaces.RenewDeployer):
    """Deploy certificates to the Docker Swarm services named in a phoenix-certbot manifest."""

    description = "Rotate certificates into Docker Swarm services (phoenix-certbot manifest)"

    @classmethod
    def add_parser_arguments(cls, add: Callable[..., None]) -> None:
        add(
            "manifest",
            default=None,
            help="phoenix-certbot manifest (default: $PHOENIX_CERT_MANIFEST, then standard paths)",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lineages: list[Path] = []
        self._manifest: Manifest | None = None

    # -- helpers ---------------------------------------------------------------------------
    def _load(self) -> Manifest:
        if self._manifest is None:
            try:
                self._manifest = manifest_load.load(manifest_load.locate(self.conf("manifest")))
            except BadInput as exc:
                raise certbot_errors.MisconfigurationError(str(exc)) from None
        return self._manifest

    def _record(self, lineage: Path) -> None:
        if lineage not in self._lineages:
            self._lineages.append(lineage)

    # -- certbot.interfaces.Plugin ---------------------------------------------------------
    def prepare(self) -> None:
        self._load()

    def more_info(self) -> str:
        return (
            "Reads a phoenix-certbot manifest and, for each certificate certbot issues or "
            "renews, rotates versioned Docker secrets/configs into the Swarm services that use "
            "it, verifies the new certificate is served, and rolls back when it is not."
        )

    # -- certbot.interfaces.Installer ------------------------------------------------------
    def get_all_names(self) -> Iterable[str]:
        names: set[str] = set()
        for entry in self._load().certificates:
            names.update(s for s in entry.sans if not _is_ip(s))
        return sorted(names)

    def deploy_cert(
        self,
        domain: str,
        cert_path: str,
        key_path: str,
        chain_path: str | None = None,
        fullchain_path: str | None = None,
    ) -> None:
        # certbot calls this once per domain of a lineage; the lineage is what we rotate.
        self._record(Path(cert_path).parent)

    def enhance(self, domain: str, enhancement: str, options: Any = None) -> None:
        raise certbot_errors.PluginError(
            f"phoenix-swarm does not support the {enhancement} enhancement"
        )

    def supported_enhancements(self) -> list[str]:
        return []

    def save(self, title: str | None = None, temporary: bool = False) -> None:
        """Nothing to write: lineages are recorded in memory and applied by restart()."""

    def rollback_checkpoints(self, rollback: int = 1) -> None:
        """The engine rolls a failed service back itself, inside restart()."""

    def recovery_routine(self) -> None:
        """No temporary changes are ever left behind by save()."""

    def config_test(self) -> None:
        from phoenix_certbot.swarm.client import SwarmClient

        manifest = self._load()
        try:
            SwarmClient.connect(manifest.settings.docker_timeout_s)
        except DockerUnavailable as exc:
            raise certbot_errors.MisconfigurationError(str(exc)) from None

    def restart(self) -> None:
        from phoenix_certbot.rotation.render import outcome_text
        from phoenix_certbot.rotation.run import RunOptions, rotate

        manifest = self._load()
        lineages, self._lineages = self._lineages, []
        entries = tuple(dict.fromkeys(e for lin in lineages for e in manifest.by_lineage(lin)))
        if not entries:
            if lineages:
                log.warning(
                    "phoenix-swarm: %s not in %s; nothing to rotate",
                    ", ".join(map(str, lineages)),
                    manifest.path,
                )
            return
        try:
            outcome = rotate(manifest, entries, RunOptions(), lambda text: log.info("%s", text))
        except PhoenixError as exc:
            raise certbot_errors.PluginError(f"phoenix-swarm: {exc}") from None
        if manifest.settings.notify_targets:
            from phoenix_certbot.notify.dispatch import notify_run
            from phoenix_certbot.notify.outcome import summarize

            notify_run(manifest, summarize(outcome))
        summary = outcome_text(outcome)
        if outcome.exit_code:
            raise certbot_errors.PluginError(f"phoenix-swarm: rotation failed:\n{summary}")
        log.info("phoenix-swarm: %s", summary)

    # -- certbot.interfaces.RenewDeployer --------------------------------------------------
    def renew_deploy(self, lineage: Any, *args: Any, **kwargs: Any) -> None:
        self._record(Path(lineage.cert_path).parent)


def _is_ip(name: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
