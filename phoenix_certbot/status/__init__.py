"""`phoenix-cert status`: a pure core (`model`, `history`, `build`, `render`, `metrics`) and
one adapter (`collect`) that reads disk, the swarm and the state directory."""

from __future__ import annotations

from phoenix_certbot.status.build import build_status
from phoenix_certbot.status.model import (
    CertStatus,
    Deployment,
    DiskProblem,
    History,
    ServiceStatus,
    StatusReport,
)

__all__ = [
    "CertStatus",
    "Deployment",
    "DiskProblem",
    "History",
    "ServiceStatus",
    "StatusReport",
    "build_status",
]
