"""A real `certbot renew --force-renewal` against Pebble runs our hooks from its
renewal-hooks/ folders and rotates a stand-in service: once, for two renewed lineages."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from phoenix_certbot.naming import content_sha256, versioned_name
from phoenix_certbot.rotation.state import StateStore
from tests.harness.certbot_runner import Certbot
from tests.hooks.test_hook_scripts import DEPLOY, POST
from tests.rotation.lab import (
    CERT_TARGET,
    KEY_TARGET,
    Lab,
    Standin,
    invoke,
    leaf_sha256_of,
    served_sha256,
    spec_updates,
)

pytestmark = [pytest.mark.docker, pytest.mark.pebble]

PHOENIX_CERT = Path(sys.executable).parent / "phoenix-cert"
SERVED = "a.test"  # the lineage whose certificate the stand-in serves
EXTRA = "b.test"  # a second lineage the same service mounts as another secret
EXTRA_TARGET = "extra-cert.pem"


def issue(certbot: Certbot, name: str) -> None:
    result = certbot.run(
        "certonly",
        "--standalone",
        "--http-01-port", str(certbot.http_port),
        "--http-01-address", "127.0.0.1",
        "-d", name,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def install_hooks(certbot: Certbot) -> None:
    """What the operator does: copy the hooks into certbot's renewal-hooks folders."""
    for hook, kind in ((DEPLOY, "deploy"), (POST, "post")):
        folder = certbot.config_dir / "renewal-hooks" / kind
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy2(hook, folder / "phoenix-cert")  # keeps the executable bits


def entries(lab: Lab, certbot: Certbot, web: Standin) -> list[dict[str, Any]]:
    extra_base = lab.resources.name("web.extra")
    return [
        {
            "name": SERVED,
            "sans": [SERVED],
            "lineage": str(certbot.live / SERVED),
            "services": [lab.binding(web)],
            "verify": [{"url": web.url, "server_name": SERVED}],
        },
        {
            "name": EXTRA,
            "sans": [EXTRA],
            "lineage": str(certbot.live / EXTRA),
            "services": [
                {
                    "service": web.name,
                    "secrets": [{"name": extra_base, "source": "cert", "target": EXTRA_TARGET}],
                }
            ],
        },
    ]


def test_forced_renewal_rotates_the_service_once_through_the_hooks(
    lab: Lab, certbot: Certbot
) -> None:
    issue(certbot, SERVED)
    issue(certbot, EXTRA)
    web = lab.deploy("web")
    manifest = lab.manifest(entries(lab, certbot, web), live_dir=certbot.live)
    # The service starts on the versions of the certificates as first issued.
    first = invoke("rotate", "--manifest", manifest, "--all")
    assert first.exit_code == 0, first.output
    old_leaf = leaf_sha256_of(certbot.live / SERVED / "cert.pem")
    assert served_sha256(web.port) == old_leaf
    tasks_before = len(lab.tasks(web))
    install_hooks(certbot)

    since = time.time()
    renewal = certbot.run(
        "renew",
        "--force-renewal",
        env={"PHOENIX_CERT_BIN": str(PHOENIX_CERT), "PHOENIX_CERT_MANIFEST": str(manifest)},
        timeout=300,
    )
    until = time.time()

    log = (certbot.logs_dir / "letsencrypt.log").read_text(errors="replace")
    assert renewal.returncode == 0, f"{renewal.stderr}\n--- certbot log tail ---\n{log[-4000:]}"
    # certbot ran our hooks from its folders (this log is of the renew run only): the
    # deploy hook once per lineage, the post hook once at the end.
    hooks = certbot.config_dir / "renewal-hooks"
    assert log.count(f"Running deploy-hook command: {hooks}/deploy/phoenix-cert\n") == 2
    assert log.count(f"Running post-hook command: {hooks}/post/phoenix-cert\n") == 1

    new_leaf = leaf_sha256_of(certbot.live / SERVED / "cert.pem")
    assert new_leaf != old_leaf
    assert served_sha256(web.port) == new_leaf
    # Both renewed lineages reached the service, in a single spec update.
    mounted = lab.mounted(web)
    fullchain = (certbot.live / SERVED / "fullchain.pem").read_bytes()
    extra = (certbot.live / EXTRA / "cert.pem").read_bytes()
    assert mounted[CERT_TARGET] == versioned_name(web.cert_base, content_sha256(fullchain))
    assert mounted[EXTRA_TARGET] == versioned_name(
        lab.resources.name("web.extra"), content_sha256(extra)
    )
    assert KEY_TARGET in mounted
    assert spec_updates(lab.events(since, until), web.name) == 1
    assert len(lab.tasks(web)) == tasks_before + 1
    # Nothing is left pending for a later post hook.
    assert StateStore(lab.state_dir).pending() == []
