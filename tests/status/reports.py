"""A `StatusReport` with one certificate in each state, for the render and metrics tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from phoenix_certbot.rotation.journal import OpenIntent, Phase
from phoenix_certbot.status.model import (
    CertHistory,
    CertStatus,
    Deployment,
    DiskStatus,
    MountStatus,
    RunRecord,
    ServiceStatus,
    StatusReport,
)

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
NOW = T0 + dt.timedelta(days=1)
GOOD = "a" * 64
OLD = "b" * 64


def mount(
    state: Deployment, mounted: str | None, leaf: str | None, detail: str = ""
) -> MountStatus:
    return MountStatus("secret", "web.crt", "web.crt", mounted, state, detail, leaf)


def sample_report() -> StatusReport:
    history = CertHistory(
        last_rotation=RunRecord(time=T0, result="ok"),
        last_verify=RunRecord(
            time=T0,
            result="failed",
            urls=(("https://10.0.0.1:9443/", True), ('https://q"x/', False)),
        ),
    )
    web = CertStatus(
        name="web",
        disk=DiskStatus(not_after=T0 + dt.timedelta(days=90), sha256=GOOD),
        services=(
            ServiceStatus(
                "prod_web",
                Deployment.UP_TO_DATE,
                (mount(Deployment.UP_TO_DATE, "web.crt_aaaaaaaaaaaa", GOOD),),
            ),
            ServiceStatus(
                "prod_old",
                Deployment.BEHIND,
                (
                    mount(
                        Deployment.BEHIND,
                        "web.crt_bbbbbbbbbbbb",
                        OLD,
                        "web.crt mounts web.crt_bbbbbbbbbbbb",
                    ),
                ),
            ),
            ServiceStatus(
                "prod_stack",
                Deployment.REVERTED,
                (mount(Deployment.REVERTED, "web_fixed", None, "web.crt mounts web_fixed"),),
            ),
        ),
        history=history,
    )
    broken = CertStatus(
        name="broken",
        disk=DiskStatus(
            error="/le/live/broken: certbot lineage directory not found", check="missing"
        ),
        services=(ServiceStatus("gone", Deployment.MISSING, detail="service does not exist"),),
        history=CertHistory(),
    )
    lonely = CertStatus(
        name="lonely", disk=DiskStatus(not_after=T0, sha256=OLD), services=(), history=CertHistory()
    )
    return StatusReport(manifest=Path("/etc/m.json"), now=NOW, certificates=(web, broken, lonely))


def open_intents() -> tuple[OpenIntent, ...]:
    """One intent an interrupted run left 3 hours before NOW, and one unreadable file."""
    journal = Path("/var/lib/phoenix-certbot/journal")
    return (
        OpenIntent(
            journal / "svc1.json",
            "svc1",
            "prod_web",
            ("web", "api"),
            Phase.ROLLBACK,
            NOW - dt.timedelta(hours=3),
        ),
        OpenIntent(journal / "svc2.json", error="Expecting value: line 1 column 1 (char 0)"),
    )
