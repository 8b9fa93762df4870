"""verify's findings for intents left in the journal (pure)."""

from __future__ import annotations

from phoenix_certbot.findings import Severity
from phoenix_certbot.verify.intents import open_intent_findings
from tests.status.reports import NOW, open_intents


def test_an_open_intent_warns_and_an_unreadable_one_is_an_error_naming_its_file() -> None:
    found, damaged = open_intent_findings(open_intents(), NOW)
    assert (found.id, found.severity) == ("state.open-intent", Severity.WARNING)
    assert found.message == (
        "an update of prod_web (web, api) was not finished (phase rollback), since "
        "2026-01-02 09:00 UTC (3.0 h)"
    )
    assert found.fix.startswith("run `phoenix-cert rotate`")
    assert (found.service, found.certificate) == ("prod_web", None)
    assert found.file == "/var/lib/phoenix-certbot/journal/svc1.json"
    assert (damaged.id, damaged.severity) == ("state.intent-unreadable", Severity.ERROR)
    assert damaged.file == "/var/lib/phoenix-certbot/journal/svc2.json"
    assert "Expecting value" in damaged.message
