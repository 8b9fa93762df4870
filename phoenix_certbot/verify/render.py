"""`verify` output: text for people, one JSON document for programs (pure)."""

from __future__ import annotations

from typing import Any

from phoenix_certbot.findings import Finding, Severity
from phoenix_certbot.verify.model import VerifyReport


def report_json(report: VerifyReport) -> dict[str, Any]:
    """The contract: {"ok", "findings": [Finding.to_json()...], "checked": {...}}."""
    return {
        "ok": report.ok,
        "findings": [finding.to_json() for finding in report.findings],
        "checked": report.checked.to_json(),
    }


def _where(finding: Finding) -> str:
    if finding.file:
        place = f"{finding.file}:{finding.line}" if finding.line else finding.file
        if finding.certificate and finding.id.startswith("cert."):
            return f"{place} (certificate {finding.certificate})"
        return place
    parts = []
    if finding.service:
        parts.append(f"service {finding.service}")
    if finding.certificate:
        parts.append(f"certificate {finding.certificate}")
    return ", ".join(parts)


def finding_text(finding: Finding) -> str:
    """Two lines: severity, where, [id] and the message; then the fix, indented."""
    where = _where(finding)
    head = f"{finding.severity.value}: {where + ': ' if where else ''}[{finding.id}] "
    return f"{head}{finding.message}\n    fix: {finding.fix}"


def _plural(count: int, word: str) -> str:
    plural = count != 1 and word != "info"
    return f"{count} {word}{'s' if plural else ''}"


def summary_text(report: VerifyReport) -> str:
    counts = report.counts()
    checked = report.checked
    ran = (
        f"{_plural(checked.compose_files, 'compose file')}, "
        f"{_plural(checked.certificates, 'certificate')}, "
        f"{_plural(checked.services, 'service')}, {_plural(checked.urls, 'URL')}, "
        f"{_plural(checked.nodes, 'node')}, {_plural(checked.agents, 'agent')}, "
        f"{_plural(checked.swarm_nodes, 'swarm node')}"
    )
    skipped = "; ".join(f"{group.value}: {why}" for group, why in checked.skipped.items())
    verdict = "ok" if report.ok else "FAILED"
    found = ", ".join(
        _plural(counts[s], s.value) for s in (Severity.ERROR, Severity.WARNING, Severity.INFO)
    )
    text = f"verify {verdict} (exit {report.exit_code}): {found}; checked {ran}"
    return text + (f"; skipped {skipped}" if skipped else "")


def report_text(report: VerifyReport) -> str:
    lines = [finding_text(finding) for finding in report.findings]
    lines.append(summary_text(report))
    return "\n".join(lines)
