"""A leaf whose rollout failed is not tried again every hour: backoff on the real daemon."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from phoenix_certbot.rotation.backoff import Backoff, after_failure
from tests.rotation.lab import SAN, Lab, invoke, served_sha256, spec_updates
from tests.support import pki

pytestmark = pytest.mark.docker
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(
    ("failures", "hours"), [(1, 1), (2, 2), (3, 4), (5, 16), (6, 24), (40, 24)]
)
def test_the_wait_doubles_from_an_hour_to_a_day(failures: int, hours: int) -> None:
    backoff: Backoff | None = None
    for _ in range(failures):
        backoff = after_failure(backoff, "a" * 64, T0)
    assert backoff is not None and backoff.failures == failures
    assert backoff.until == T0 + dt.timedelta(hours=hours)
    assert after_failure(backoff, "b" * 64, T0).failures == 1  # another leaf starts over


def status(lab: Lab, manifest: object) -> dict[str, object]:
    result = invoke("status", "--manifest", str(manifest), "--json")
    assert result.exit_code == 0, result.output
    (cert,) = json.loads(result.stdout)["certificates"]
    return {"failures": cert["failures"], "backoff_until": cert["backoff_until"]}


def test_a_failed_leaf_waits_until_force_or_a_new_leaf(lab: Lab) -> None:
    refused = pki.issue([SAN], lab.ca)
    bootstrap = pki.issue([SAN], lab.ca)
    standin = lab.deploy("web", bootstrap, env={"STANDIN_FAIL_IF_CERT_SHA256": refused.sha256})
    lineage = lab.lineage("web", refused)
    manifest = lab.manifest([lab.entry("web", [standin])])
    assert status(lab, manifest) == {"failures": 0, "backoff_until": None}

    first = invoke("rotate", "--manifest", manifest, "--all")
    assert first.exit_code == 1 and "rolled-back" in first.stdout, first.output
    after_one = status(lab, manifest)
    assert after_one["failures"] == 1 and after_one["backoff_until"] is not None

    # The timer's next run: no service update for it, says when, exit 1.
    since = time.time()
    again = invoke("rotate", "--manifest", manifest, "--all")
    assert again.exit_code == 1, again.output
    assert "backing off: web (rollout failed 1 time(s); next try after" in again.stdout
    assert spec_updates(lab.events(since, time.time()), standin.name) == 0
    metrics = lab.root / "phoenix.prom"
    assert invoke("status", "--manifest", manifest, "--textfile", metrics).exit_code == 0
    text = metrics.read_text()
    assert 'phoenix_cert_rollout_failures{cert="web"} 1.0' in text
    assert 'phoenix_cert_backoff_until_timestamp_seconds{cert="web"}' in text

    # --force tries it now; a second failure doubles the wait.
    forced = invoke("rotate", "--manifest", manifest, "--all", "--force")
    assert forced.exit_code == 1 and "rolled-back" in forced.stdout, forced.output
    after_two = status(lab, manifest)
    assert after_two["failures"] == 2
    until = dt.datetime.fromisoformat(str(after_two["backoff_until"]))
    assert until - dt.datetime.now(dt.timezone.utc) > dt.timedelta(hours=1, minutes=50)
    assert served_sha256(standin.port) == bootstrap.sha256

    # A renewal puts another leaf on disk: tried at once, and it works.
    renewed = lineage.renew()
    assert status(lab, manifest)["backoff_until"] is None
    good = invoke("rotate", "--manifest", manifest, "--all")
    assert good.exit_code == 0, good.output
    assert served_sha256(standin.port) == renewed.leaf.sha256
    assert status(lab, manifest) == {"failures": 0, "backoff_until": None}
