"""Fixtures of the fault matrix (issue 8): a `FaultRig` on the shared swarm, and the gate
for rules that only the engine rework (intent journal, failpoints, backoff) can meet."""

from __future__ import annotations

import importlib.util

import pytest

from tests.faults.rig import FaultRig
from tests.rotation.lab import Lab

# The engine rework adds phoenix_certbot/failpoints.py; until it has landed, a row that
# needs it is expected to fail (strictly: a pass would mean the gate is stale).
ENGINE_LANDED = importlib.util.find_spec("phoenix_certbot.failpoints") is not None


def engine_rule(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(
        not ENGINE_LANDED, strict=True, reason=f"needs the engine rework (issue 8): {reason}"
    )


@pytest.fixture
def rig(lab: Lab) -> FaultRig:
    """A rig on the shared swarm; the row calls `rig.setup(...)` with its own service."""
    return FaultRig(lab)
