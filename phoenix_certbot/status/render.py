"""A `StatusReport` as a table for people and as JSON for programs (pure)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from phoenix_certbot.naming import HASH_CHARS
from phoenix_certbot.rotation.journal import OpenIntent
from phoenix_certbot.status.model import (
    CertStatus,
    Deployment,
    RunRecord,
    ServiceStatus,
    StatusReport,
)

HEADERS = (
    "CERTIFICATE",
    "NOT AFTER (UTC)",
    "DAYS",
    "SHA256",
    "SERVICE",
    "DEPLOYED",
    "LAST ROTATION",
    "LAST VERIFY",
)


def _when(moment: dt.datetime | None) -> str:
    if moment is None:
        return "?"
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


def _run(record: RunRecord | None) -> str:
    return "never" if record is None else f"{_when(record.time)} {record.result}"


def _deployed(service: ServiceStatus) -> str:
    """The state, and which version the service uses when it is not the one on disk: the
    leaf fingerprint of an older managed version, or the name of a foreign object."""
    state = service.state
    if state is Deployment.BEHIND:
        leaves = sorted(
            {
                m.leaf_sha256[:HASH_CHARS]
                for m in service.mounts
                if m.state is state and m.leaf_sha256
            }
        )
        return f"{state.label} ({', '.join(leaves)})" if leaves else state.label
    if state is Deployment.REVERTED:
        names = sorted({m.mounted for m in service.mounts if m.state is state and m.mounted})
        return f"{state.label} ({', '.join(names)})"
    return state.label


def _rows(report: StatusReport, cert: CertStatus) -> list[tuple[str, ...]]:
    disk = cert.disk
    days = disk.days_left(report.now)
    head = (
        cert.name,
        _when(disk.not_after) if disk.not_after else "-",
        f"{days:.1f}" if days is not None else "-",
        disk.sha256[:HASH_CHARS] if disk.sha256 else "-",
    )
    tail = (_run(cert.history.last_rotation), _run(cert.history.last_verify))
    if not cert.services:
        return [(*head, "-", "no services", *tail)]
    return [(*head, s.service, _deployed(s), *tail) for s in cert.services]


def status_text(report: StatusReport) -> str:
    rows: list[tuple[str, ...]] = [HEADERS]
    notes: dict[int, list[str]] = {}  # row index -> lines shown under it
    for cert in report.certificates:
        cert_rows = _rows(report, cert)
        first = len(rows)
        rows.extend(cert_rows)
        if cert.disk.error:
            notes.setdefault(first, []).append(f"! certificate: {cert.disk.error}")
        if cert.history.backoff_until is not None:
            notes.setdefault(first, []).append(
                f"! rollout failed {cert.history.failures} time(s); next try after "
                f"{_when(cert.history.backoff_until)} UTC (`phoenix-cert rotate {cert.name} "
                "--force` tries now)"
            )
        if cert.history.held_leaf and cert.history.held_leaf == cert.disk.sha256:
            notes.setdefault(first, []).append(
                f"! held after `phoenix-cert rollback`: `phoenix-cert rotate {cert.name} "
                "--force` deploys the certificate on disk"
            )
        for offset, service in enumerate(cert.services):
            notes.setdefault(first + offset, []).extend(
                f"! {service.service}: {d}" for d in service.details
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        lines.extend(f"    {note}" for note in notes.get(index, ()))
    lines.extend(_open_intent_lines(report))
    states = Counter(s.state.label for c in report.certificates for s in c.services)
    broken = sum(1 for c in report.certificates if not c.disk.ok)
    summary = f"{len(report.certificates)} certificate(s)"
    if broken:
        summary += f" ({broken} with a problem on disk)"
    if states:
        summary += ": " + ", ".join(f"{n} {label}" for label, n in sorted(states.items()))
    if report.open_intents:
        summary += f"; {len(report.open_intents)} open intent(s)"
    lines.append(summary)
    return "\n".join(lines)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "age unknown"
    if seconds < 5400:
        return f"{max(seconds, 0) / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def _open_intent_lines(report: StatusReport) -> list[str]:
    if not report.open_intents:
        return []
    lines = [
        "Open intents (an update a run did not finish; the next `phoenix-cert rotate`, or "
        "the timer, finishes or undoes it):"
    ]
    for intent in report.open_intents:
        if intent.error:
            lines.append(f"    ! {intent.path}: cannot be read ({intent.error})")
            continue
        phase = intent.phase.value if intent.phase else "?"
        lines.append(
            f"    ! {intent.service}: {', '.join(intent.certs) or '-'}, phase {phase}, since "
            f"{_when(intent.created)} UTC ({_age(intent.age_s(report.now))})"
        )
    return lines


def _intent_json(intent: OpenIntent, now: dt.datetime) -> dict[str, Any]:
    age = intent.age_s(now)
    return {
        "service": intent.service or None,
        "service_id": intent.service_id or None,
        "certificates": list(intent.certs),
        "phase": intent.phase.value if intent.phase else None,
        "created": intent.created.isoformat() if intent.created else None,
        "age_s": round(age, 1) if age is not None else None,
        "file": str(intent.path),
        "error": intent.error or None,
    }


def _record_json(record: RunRecord | None, with_urls: bool) -> dict[str, Any] | None:
    if record is None:
        return None
    doc: dict[str, Any] = {
        "time": record.time.isoformat() if record.time else None,
        "result": record.result,
    }
    if with_urls:
        doc["urls"] = dict(record.urls)
    return doc


def _cert_json(report: StatusReport, cert: CertStatus) -> dict[str, Any]:
    disk = cert.disk
    days = disk.days_left(report.now)
    return {
        "name": cert.name,
        "certificate": {
            "ok": disk.ok,
            "not_after": disk.not_after.isoformat() if disk.not_after else None,
            "days_left": round(days, 2) if days is not None else None,
            "sha256": disk.sha256,
            "error": disk.error,
            "check": disk.check,
        },
        "services": [
            {
                "service": s.service,
                "state": s.state.value,
                "detail": s.detail or None,
                "mounts": [
                    {
                        "kind": m.kind,
                        "target": m.target,
                        "base": m.base,
                        "mounted": m.mounted,
                        "state": m.state.value,
                        "leaf_sha256": m.leaf_sha256,
                        "detail": m.detail or None,
                    }
                    for m in s.mounts
                ],
            }
            for s in cert.services
        ],
        "last_rotation": _record_json(cert.history.last_rotation, with_urls=False),
        "last_verify": _record_json(cert.history.last_verify, with_urls=True),
        "held": bool(cert.history.held_leaf and cert.history.held_leaf == disk.sha256),
        "failures": cert.history.failures or 0,
        "backoff_until": (
            cert.history.backoff_until.isoformat() if cert.history.backoff_until else None
        ),
    }


def status_json(report: StatusReport) -> dict[str, Any]:
    return {
        "manifest": str(report.manifest),
        "time": report.now.isoformat(),
        "ok": report.ok,
        "certificates": [_cert_json(report, c) for c in report.certificates],
        "open_intents": [_intent_json(i, report.now) for i in report.open_intents],
    }
