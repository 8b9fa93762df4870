"""Findings for intents left in the journal by a run that did not finish (pure).

`verify` only reads the journal (`Journal.peek`: no lock, nothing resolved); the next run
that takes the lock (`rotate`, the hooks, the timer) finishes or undoes each intent first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from phoenix_certbot.findings import Finding, Severity
from phoenix_certbot.rotation.journal import OpenIntent


def _since(intent: OpenIntent, now: dt.datetime) -> str:
    age = intent.age_s(now)
    if intent.created is None or age is None:
        return "at an unknown time"
    when = intent.created.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
    return f"since {when} UTC ({age / 3600:.1f} h)"


def open_intent_findings(intents: Iterable[OpenIntent], now: dt.datetime) -> list[Finding]:
    findings = []
    for intent in intents:
        if intent.error:
            findings.append(
                Finding(
                    "state.intent-unreadable",
                    Severity.ERROR,
                    f"the intent of an interrupted update cannot be read ({intent.error}); "
                    "every rotation stops with exit 4 until it is dealt with",
                    "check that the service it names serves a valid certificate, then delete "
                    "the file",
                    file=str(intent.path),
                )
            )
            continue
        phase = intent.phase.value if intent.phase else "?"
        certs = ", ".join(intent.certs) or "-"
        findings.append(
            Finding(
                "state.open-intent",
                Severity.WARNING,
                f"an update of {intent.service} ({certs}) was not finished (phase {phase}), "
                f"{_since(intent, now)}",
                "run `phoenix-cert rotate` (the hourly timer does): it finishes or undoes the "
                "update before anything else; if it exits 4, see docs/troubleshooting.md",
                file=str(intent.path),
                service=intent.service,
                certificate=intent.certs[0] if len(intent.certs) == 1 else None,
            )
        )
    return findings
