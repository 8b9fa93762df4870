"""Gather what `build_status` needs: the certificates and host files on disk, one swarm
snapshot, the state directory's history. The only side-effecting part of `status`.

Unlike a rotation, nothing here stops at the first bad certificate: each one is read on
its own and a problem becomes part of the report.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import replace

from phoenix_certbot.certs import check_material, check_payload, load_material
from phoenix_certbot.errors import CertificateError
from phoenix_certbot.manifest.model import CertificateEntry, Manifest
from phoenix_certbot.rotation.journal import Journal
from phoenix_certbot.rotation.run import digest, file_hashes
from phoenix_certbot.rotation.state import StateStore
from phoenix_certbot.status.build import DiskReading, build_status
from phoenix_certbot.status.history import history_from_state
from phoenix_certbot.status.model import DiskProblem, StatusReport
from phoenix_certbot.swarm.client import SwarmClient

log = logging.getLogger(__name__)


def read_certificate(entry: CertificateEntry, now: dt.datetime) -> DiskReading:
    """The digest of the entry's certificate, or what is wrong with it."""
    try:
        material = load_material(entry)  # waits under a second for certbot's links to settle
    except CertificateError as exc:
        return DiskProblem(message=str(exc), check=exc.check)
    found = digest(material)
    try:
        check_material(material, entry.sans, now)
        for binding in entry.services:
            for source in {o.source for o in binding.objects} | {f.source for f in binding.files}:
                check_payload(material, source)
    except CertificateError as exc:
        return DiskProblem(message=str(exc), check=exc.check, digest=found)
    return found


def collect(manifest: Manifest, swarm: SwarmClient, now: dt.datetime | None = None) -> StatusReport:
    """Everything for one report; the swarm is read once (`snapshot`: three API calls,
    however many certificates and services the manifest names). The journal is only read:
    no lock, nothing resolved."""
    now = now or dt.datetime.now(dt.timezone.utc)
    readings = {e.name: read_certificate(e, now) for e in manifest.certificates}
    snapshot = swarm.snapshot()
    history = history_from_state(StateStore(manifest.settings.state_dir).read())
    report = build_status(
        manifest,
        readings,
        snapshot,
        history,
        now=now,
        file_hashes=file_hashes(manifest.certificates, strict=False),
    )
    return replace(report, open_intents=Journal(manifest.settings.state_dir).peek())
