"""Every finding id the code can emit is explained in docs/troubleshooting.md."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# A quoted id such as "live.san"; "cert.pem" and "state.json" are file names, not ids.
ID = re.compile(
    r"""["']((?:compose|manifest|cert|live|portainer|swarm|state)\.(?!pem\b|json\b)[a-z][a-z0-9-]+)["']"""
)


def test_every_finding_id_is_documented() -> None:
    sources = (REPO / "phoenix_certbot").rglob("*.py")
    ids = {m for path in sources for m in ID.findall(path.read_text())}
    assert len(ids) > 40  # the scan found the rule tables
    doc = (REPO / "docs" / "troubleshooting.md").read_text()
    assert sorted(i for i in ids if f"`{i}`" not in doc) == []
