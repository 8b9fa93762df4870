"""The `phoenix-swarm` certbot installer, run by the real certbot against Pebble."""

from __future__ import annotations

import json

import pytest

from tests.harness.certbot_runner import Certbot
from tests.rotation.lab import (
    SAN,
    Lab,
    leaf_sha256_of,
    run_certbot,
    served_sha256,
    write_private,
)
from tests.support.receiver import TOKEN, json_receiver

pytestmark = [pytest.mark.docker, pytest.mark.pebble]


def test_installer_rotates_at_issue_and_renewal_remembers_it(lab: Lab, certbot: Certbot) -> None:
    standin = lab.deploy("web")
    bootstrap = served_sha256(standin.port)
    manifest = lab.manifest([lab.entry("web", [standin])], live_dir=certbot.live)

    with json_receiver() as receiver:
        document = json.loads(manifest.read_text())
        document["settings"] |= {"notify_urls": [receiver.url], "notify_on": ["success"]}
        write_private(manifest, json.dumps(document))

        issued = run_certbot(
            certbot,
            "run", "-a", "standalone", "-i", "phoenix-swarm",
            "--phoenix-swarm-manifest", str(manifest),
            "--http-01-port", str(certbot.http_port), "--http-01-address", "127.0.0.1",
            "-d", SAN, "--cert-name", "web",
        )  # fmt: skip
        assert issued.returncode == 0, issued.stderr
        first = leaf_sha256_of(certbot.live / "web" / "cert.pem")
        assert first != bootstrap
        assert served_sha256(standin.port) == first
        renewal = (certbot.config_dir / "renewal" / "web.conf").read_text()
        assert "installer = phoenix-swarm" in renewal

        renewed = run_certbot(certbot, "renew", "--force-renewal")
        assert renewed.returncode == 0, renewed.stderr
        second = leaf_sha256_of(certbot.live / "web" / "cert.pem")
        assert second != first
        assert served_sha256(standin.port) == second

        # The plugin sends a run's notifications as the CLI does: one per rotation.
        bodies = receiver.wait_for(2)
    assert [(b["type"], b["title"].rsplit(": ", 1)[-1]) for b in bodies] == [
        ("success", "rotated web"),
        ("success", "rotated web"),
    ]
    logs = (certbot.logs_dir / "letsencrypt.log").read_text()
    assert TOKEN not in issued.stderr + renewed.stderr + logs
