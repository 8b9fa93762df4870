"""A `StatusReport` as Prometheus text exposition for node_exporter's textfile collector
(pure). Every family is written with HELP and TYPE even when it has no sample, so that a
dashboard sees the metric exists; all samples of one family stay together, as the format
requires."""

from __future__ import annotations

from collections.abc import Iterable

from phoenix_certbot.status.model import Deployment, StatusReport

Sample = tuple[tuple[tuple[str, str], ...], float]

FAMILIES: tuple[tuple[str, str], ...] = (
    (
        "phoenix_cert_not_after_timestamp_seconds",
        "Expiry (notAfter) of the certificate on disk, as a Unix time.",
    ),
    (
        "phoenix_cert_files_ok",
        "1 if the certificate's files on disk can be read and pass every check, else 0.",
    ),
    (
        "phoenix_cert_deployed",
        "1 if the service uses the certificate on disk (up to date), else 0.",
    ),
    (
        "phoenix_cert_last_rotation_timestamp_seconds",
        "Time of the last rotation of the certificate, as a Unix time, labelled by its result.",
    ),
    (
        "phoenix_cert_verify_ok",
        "1 if the last verification saw the URL serve the expected certificate, else 0.",
    ),
)


def _escape(value: str) -> str:
    # The exposition format's escapes for label values: backslash, double quote, newline.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _samples(report: StatusReport, family: str) -> Iterable[Sample]:
    for cert in report.certificates:
        name = ("cert", cert.name)
        if family == "phoenix_cert_not_after_timestamp_seconds" and cert.disk.not_after:
            yield (name,), cert.disk.not_after.timestamp()
        elif family == "phoenix_cert_files_ok":
            yield (name,), 1 if cert.disk.ok else 0
        elif family == "phoenix_cert_deployed":
            # One sample per (cert, service), even if the manifest binds them twice.
            states: dict[str, bool] = {}
            for s in cert.services:
                ok = s.state is Deployment.UP_TO_DATE
                states[s.service] = states.get(s.service, True) and ok
            for service, ok in states.items():
                yield (name, ("service", service)), 1 if ok else 0
        elif family == "phoenix_cert_last_rotation_timestamp_seconds":
            last = cert.history.last_rotation
            if last is not None and last.time is not None:
                yield (name, ("result", last.result)), last.time.timestamp()
        elif family == "phoenix_cert_verify_ok" and cert.history.last_verify is not None:
            for url, ok in cert.history.last_verify.urls:
                yield (name, ("url", url)), 1 if ok else 0


def metrics_text(report: StatusReport) -> str:
    lines: list[str] = []
    for family, help_text in FAMILIES:
        lines.append(f"# HELP {family} {help_text}")
        lines.append(f"# TYPE {family} gauge")
        for labels, value in _samples(report, family):
            rendered = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            lines.append(f"{family}{{{rendered}}} {_number(value)}")
    return "\n".join(lines) + "\n"
