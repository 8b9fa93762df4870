"""A real renewal: `certbot renew` (Pebble) runs `phoenix-cert deploy-hook`, which is
SIGKILLed once swarm accepted its update; then the hourly timer (`phoenix-cert rotate
--all`). Shared swarm.

The rule: the next run finishes what the killed hook left: the renewed leaf served, exactly
one update of the service, nothing left in the journal; certbot says the hook failed.
"""

from __future__ import annotations

import time

import pytest

from tests.faults.rig import FAILPOINT_ENV, FaultRig
from tests.faults.runs import Run
from tests.harness.certbot_runner import Certbot
from tests.hooks.test_certbot_renew import issue
from tests.rotation.lab import PHOENIX_CERT, SAN, leaf_sha256_of

pytestmark = [pytest.mark.docker, pytest.mark.pebble]


def test_deploy_hook_sigkilled_during_certbot_renew_then_the_timer_finishes(
    rig: FaultRig, certbot: Certbot
) -> None:
    issue(certbot, SAN)
    live = certbot.live / SAN
    rig.setup(entry=lambda r: r.lab.entry("web", [r.standin], lineage=live))
    first = rig.rotate()  # the service starts on the leaf as first issued
    assert first.returncode == 0, first.report
    rig.old_leaf = leaf_sha256_of(live / "cert.pem")
    rig.settled(rig.old_leaf)
    hook = f"{PHOENIX_CERT} deploy-hook --manifest {rig.manifest}"
    with rig.watch():
        started, began = time.time(), time.monotonic()
        done = certbot.run(
            "renew", "--force-renewal", "--deploy-hook", hook,
            env={k: rig.env("service-updated")[k] for k in ("DOCKER_HOST", FAILPOINT_ENV)},
            timeout=300,
        )  # fmt: skip
        renewal = Run(("certbot renew",), done.returncode, done.stdout, done.stderr, started,
                      time.monotonic() - began)  # fmt: skip
        rig.runs.append(renewal)
        rig.new_leaf = leaf_sha256_of(live / "cert.pem")
        assert rig.new_leaf != rig.old_leaf, renewal.report
        log = (certbot.logs_dir / "letsencrypt.log").read_text(errors="replace")
        # certbot ran the hook through a shell, which reports the kill as 128 + 9.
        assert "Hook 'deploy-hook' reported error code 137" in log, log[-3000:]
        timer = rig.rotate()
        assert timer.returncode == 0, timer.report
        settled_at = rig.settled(rig.new_leaf)
    assert rig.updates(renewal.started, timer.ended) == 1
    archive = certbot.config_dir / "archive" / SAN
    rig.keys += [p.read_bytes() for p in sorted(archive.glob("privkey*.pem"))]
    rig.conclude("certbot-renew-hook-killed", renewal, timer, settled_at)
