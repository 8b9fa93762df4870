"""A `StatusReport` as Prometheus metrics for node_exporter's textfile collector.

`metrics_registry` is pure (a report in, a `prometheus_client` registry out); the client
library does the exposition format (escaping, number formatting, one block per family) and
`write_textfile` the atomic write. Every family is written with HELP and TYPE even when it
has no sample, so that a dashboard sees the metric exists. The names and labels of the
first five families are the ones dashboards already use: keep them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from phoenix_certbot.errors import OperationFailed
from phoenix_certbot.status.model import CertStatus, Deployment, StatusReport

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

Sample = tuple[tuple[str, ...], float]  # label values in the family's label order, value

# name -> (labels, help)
FAMILIES: dict[str, tuple[tuple[str, ...], str]] = {
    "phoenix_cert_not_after_timestamp_seconds": (
        ("cert",),
        "Expiry (notAfter) of the certificate on disk, as a Unix time.",
    ),
    "phoenix_cert_files_ok": (
        ("cert",),
        "1 if the certificate's files on disk can be read and pass every check, else 0.",
    ),
    "phoenix_cert_deployed": (
        ("cert", "service"),
        "1 if the service uses the certificate on disk (up to date), else 0.",
    ),
    "phoenix_cert_last_rotation_timestamp_seconds": (
        ("cert", "result"),
        "Time of the last rotation of the certificate, as a Unix time, labelled by its result.",
    ),
    "phoenix_cert_verify_ok": (
        ("cert", "url"),
        "1 if the last verification saw the URL serve the expected certificate, else 0.",
    ),
    "phoenix_cert_last_rotation_ok": (
        ("cert",),
        "1 if the last rotation of the certificate succeeded, 0 if it failed.",
    ),
    "phoenix_cert_rollout_failures": (
        ("cert",),
        "Failed rollouts of the certificate since its last successful one.",
    ),
    "phoenix_cert_backoff_until_timestamp_seconds": (
        ("cert",),
        "Until when rotations of the certificate wait after failed rollouts, as a Unix time.",
    ),
    "phoenix_cert_open_intents": (
        (),
        "Updates a run left unfinished (intents in the journal, unreadable ones too): the "
        "next run finishes or undoes them; one that stays means that run cannot.",
    ),
    "phoenix_cert_metrics_timestamp_seconds": (
        (),
        "When phoenix-cert wrote these metrics, as a Unix time: old means the timer stopped.",
    ),
}


def _deployed(cert: CertStatus) -> Iterable[Sample]:
    # One sample per (cert, service), even if the manifest binds them twice.
    states: dict[str, bool] = {}
    for s in cert.services:
        states[s.service] = states.get(s.service, True) and s.state is Deployment.UP_TO_DATE
    for service, ok in states.items():
        yield (cert.name, service), 1 if ok else 0


def _samples(cert: CertStatus) -> Iterable[tuple[str, Sample]]:
    name = cert.name
    if cert.disk.not_after:
        yield "phoenix_cert_not_after_timestamp_seconds", ((name,), cert.disk.not_after.timestamp())
    yield "phoenix_cert_files_ok", ((name,), 1 if cert.disk.ok else 0)
    for sample in _deployed(cert):
        yield "phoenix_cert_deployed", sample
    history = cert.history
    last = history.last_rotation
    if last is not None and last.time is not None:
        yield (
            "phoenix_cert_last_rotation_timestamp_seconds",
            (
                (name, last.result),
                last.time.timestamp(),
            ),
        )
        yield "phoenix_cert_last_rotation_ok", ((name,), 1 if last.result == "ok" else 0)
    if history.last_verify is not None:
        for url, ok in history.last_verify.urls:
            yield "phoenix_cert_verify_ok", ((name, url), 1 if ok else 0)
    if history.failures is not None:
        yield "phoenix_cert_rollout_failures", ((name,), history.failures)
    if history.backoff_until is not None:
        yield (
            "phoenix_cert_backoff_until_timestamp_seconds",
            (
                (name,),
                history.backoff_until.timestamp(),
            ),
        )


def metrics_registry(report: StatusReport) -> CollectorRegistry:
    """A fresh registry holding one gauge family per FAMILIES entry, filled from `report`."""
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry(auto_describe=True)
    gauges = {
        family: Gauge(family, help_text, labels, registry=registry)
        for family, (labels, help_text) in FAMILIES.items()
    }
    for cert in report.certificates:
        for family, (labels, value) in _samples(cert):
            gauges[family].labels(*labels).set(value)
    gauges["phoenix_cert_open_intents"].set(len(report.open_intents))
    gauges["phoenix_cert_metrics_timestamp_seconds"].set(report.now.timestamp())
    return registry


def metrics_text(report: StatusReport) -> str:
    from prometheus_client import generate_latest

    return generate_latest(metrics_registry(report)).decode()


def write_textfile(path: Path, report: StatusReport) -> None:
    """Write the metrics to `path` atomically (node_exporter never reads half a file),
    mode 0644 from the first byte: node_exporter reads it as another user."""
    from prometheus_client import write_to_textfile

    old = os.umask(0o022)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(path), metrics_registry(report))
    except OSError as exc:
        raise OperationFailed(f"{path}: cannot write metrics: {exc.strerror or exc}") from None
    finally:
        os.umask(old)
