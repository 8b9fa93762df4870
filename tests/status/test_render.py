"""The status table and its JSON document."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

from phoenix_certbot.status.render import HEADERS, status_json, status_text
from tests.status.reports import GOOD, OLD, open_intents, sample_report


def test_table_has_one_row_per_certificate_and_service_with_problems_under_them() -> None:
    lines = status_text(sample_report()).splitlines()
    assert lines[0].split("  ")[0] == HEADERS[0]
    rows = [line for line in lines[1:] if not line.startswith(" ")]
    assert len(rows) == 5 + 1  # web x3, broken, lonely, and the summary line
    web = [line for line in lines if line.startswith("web ")]
    assert len(web) == 3
    # Disk facts: not-after, days left, short SHA-256.
    assert all("2026-04-01 12:00" in line and "89.0" in line and GOOD[:12] in line for line in web)
    assert "up to date" in web[0]
    assert f"behind ({OLD[:12]})" in web[1]  # the leaf the older version carries
    assert "reverted (web_fixed)" in web[2]
    assert all("2026-01-01 12:00 ok" in line and "2026-01-01 12:00 failed" in line for line in web)

    text = "\n".join(lines)
    assert "    ! prod_old: web.crt mounts web.crt_bbbbbbbbbbbb" in text
    (broken,) = [line for line in lines if line.startswith("broken ")]
    assert "missing" in broken and "never" in broken
    assert lines[lines.index(broken) + 1] == (
        "    ! certificate: /le/live/broken: certbot lineage directory not found"
    )
    assert lines[lines.index(broken) + 2] == "    ! gone: service does not exist"
    (lonely,) = [line for line in lines if line.startswith("lonely ")]
    assert "no services" in lonely and "-1.0" in lonely
    assert lines[-1] == (
        "3 certificate(s) (1 with a problem on disk): 1 behind, 1 missing, 1 reverted, 1 up to date"
    )


def test_json_document_carries_every_field() -> None:
    doc = status_json(sample_report())
    json.dumps(doc)  # serialisable as is
    assert doc["manifest"] == "/etc/m.json" and doc["ok"] is False
    web, broken, lonely = doc["certificates"]
    assert web["certificate"] == {
        "ok": True,
        "not_after": "2026-04-01T12:00:00+00:00",
        "days_left": 89.0,
        "sha256": GOOD,
        "error": None,
        "check": None,
    }
    assert [s["state"] for s in web["services"]] == ["up_to_date", "behind", "reverted"]
    assert web["services"][1]["mounts"][0] == {
        "kind": "secret",
        "target": "web.crt",
        "base": "web.crt",
        "mounted": "web.crt_bbbbbbbbbbbb",
        "state": "behind",
        "leaf_sha256": OLD,
        "detail": "web.crt mounts web.crt_bbbbbbbbbbbb",
    }
    assert web["last_rotation"] == {"time": "2026-01-01T12:00:00+00:00", "result": "ok"}
    assert web["last_verify"]["urls"] == {"https://10.0.0.1:9443/": True, 'https://q"x/': False}
    assert broken["certificate"]["ok"] is False and broken["certificate"]["check"] == "missing"
    assert broken["services"][0] == {
        "service": "gone",
        "state": "missing",
        "detail": "service does not exist",
        "mounts": [],
    }
    assert broken["last_rotation"] is None and broken["last_verify"] is None
    assert lonely["services"] == []
    assert doc["open_intents"] == []


def test_open_intents_are_listed_with_service_certificates_phase_and_age() -> None:
    report = dataclasses.replace(sample_report(), open_intents=open_intents())
    lines = status_text(report).splitlines()
    assert lines[-4:] == [
        "Open intents (an update a run did not finish; the next `phoenix-cert rotate`, or the "
        "timer, finishes or undoes it):",
        "    ! prod_web: web, api, phase rollback, since 2026-01-02 09:00 UTC (3.0 h ago)",
        "    ! /var/lib/phoenix-certbot/journal/svc2.json: cannot be read (Expecting value: "
        "line 1 column 1 (char 0))",
        "3 certificate(s) (1 with a problem on disk): 1 behind, 1 missing, 1 reverted, "
        "1 up to date; 2 open intent(s)",
    ]
    doc = status_json(report)
    assert doc["ok"] is False
    assert doc["open_intents"] == [
        {
            "service": "prod_web",
            "service_id": "svc1",
            "certificates": ["web", "api"],
            "phase": "rollback",
            "created": "2026-01-02T09:00:00+00:00",
            "age_s": 10800.0,
            "file": "/var/lib/phoenix-certbot/journal/svc1.json",
            "error": None,
        },
        {
            "service": None,
            "service_id": None,
            "certificates": [],
            "phase": None,
            "created": None,
            "age_s": None,
            "file": "/var/lib/phoenix-certbot/journal/svc2.json",
            "error": "Expecting value: line 1 column 1 (char 0)",
        },
    ]


def test_a_held_certificate_says_how_to_deploy_it() -> None:
    report = sample_report()
    web = report.certificates[0]
    held = dataclasses.replace(web, history=dataclasses.replace(web.history, held_leaf=GOOD))
    report = dataclasses.replace(report, certificates=(held, *report.certificates[1:]))
    assert "! held after `phoenix-cert rollback`: `phoenix-cert rotate web --force`" in status_text(
        report
    )
    assert [c["held"] for c in status_json(report)["certificates"]] == [True, False, False]


def test_a_backoff_says_when_the_next_try_is() -> None:
    report = sample_report()
    web = report.certificates[0]
    until = dt.datetime(2026, 1, 1, 14, 0, tzinfo=dt.timezone.utc)
    waiting = dataclasses.replace(
        web, history=dataclasses.replace(web.history, failures=2, backoff_until=until)
    )
    report = dataclasses.replace(report, certificates=(waiting, *report.certificates[1:]))
    assert (
        "! rollout failed 2 time(s); next try after 2026-01-01 14:00 UTC "
        "(`phoenix-cert rotate web --force` tries now)"
    ) in status_text(report)
    assert [(c["failures"], c["backoff_until"]) for c in status_json(report)["certificates"]] == [
        (2, "2026-01-01T14:00:00+00:00"),
        (0, None),
        (0, None),
    ]
