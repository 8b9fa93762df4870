"""Notifications of a real rollout: a receiver on loopback behind Apprise's json://."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.rotation.lab import SAN, Lab, phoenix_cert, served_sha256, write_private
from tests.support import pki
from tests.support.receiver import TOKEN, json_receiver

pytestmark = pytest.mark.docker


def key_lines(key_pem: bytes) -> list[str]:
    """The base64 lines of a PEM private key: none may appear anywhere."""
    return [line for line in key_pem.decode().splitlines() if line and "-----" not in line]


def notify_to(manifest: Path, url: str) -> None:
    document = json.loads(manifest.read_text())
    document["settings"]["notify_urls"] = [url]
    write_private(manifest, json.dumps(document))


def test_a_failed_rollout_sends_exactly_one_message_and_a_no_op_run_none(lab: Lab) -> None:
    refused = pki.issue([SAN], lab.ca)
    failing = lab.deploy("web", env={"STANDIN_FAIL_IF_CERT_SHA256": refused.sha256})
    healthy = lab.deploy("good")
    lab.lineage("web", refused)
    good = lab.lineage("good")
    path = lab.manifest([lab.entry("web", [failing]), lab.entry("good", [healthy])])

    with json_receiver() as receiver:
        notify_to(path, receiver.url)

        rotated = phoenix_cert("rotate", "--manifest", path, "--all")
        assert rotated.returncode == 1, rotated.stderr
        assert served_sha256(healthy.port) == good.leaf.sha256
        # One message, and no second one trickling in later.
        assert len(receiver.wait_for(2, timeout=2.0)) == 1
        [body] = receiver.bodies
        assert body["type"] == "failure"
        assert body["title"].endswith("rollout failed for web")
        assert f"- certificate web, service {failing.name}: rolled back (" in body["message"]
        assert "good" not in body["message"]  # rotated fine: failures only by default

        again = phoenix_cert("rotate", "--manifest", path, "good")
        assert again.returncode == 0, again.stderr
        assert "nothing to do" in again.stdout
        assert len(receiver.wait_for(2, timeout=2.0)) == 1  # a no-op run sends nothing

    outputs = rotated.stdout + rotated.stderr + again.stdout + again.stderr
    received = b"".join(receiver.raw).decode()
    for text in (outputs, received):
        assert TOKEN not in text and receiver.url not in text
        for line in key_lines(refused.key_pem) + key_lines(good.leaf.key_pem):
            assert line not in text


def test_a_timer_run_whose_every_certificate_is_invalid_tells_it_once_a_day(lab: Lab) -> None:
    """The usual single-certificate manifest: its lineage goes bad (SAN no longer covered).
    `rotate --all` and the post hook change nothing (exit 2) but the operator hears of it,
    once: the hourly runs after it stay silent."""
    standin = lab.deploy("web")
    bad = pki.issue(["other.test"], lab.ca)
    lineage = lab.lineage("web", bad)
    path = lab.manifest([lab.entry("web", [standin])])
    version = lab.version(standin)

    with json_receiver() as receiver:
        notify_to(path, receiver.url)

        first = phoenix_cert("rotate", "--manifest", path, "--all")
        assert first.returncode == 2, first.stderr
        assert len(receiver.wait_for(1)) == 1
        [body] = receiver.bodies
        assert body["type"] == "failure"
        assert "- certificate web: skipped: fails its checks (" in body["message"]
        assert SAN in body["message"]  # the reason: which name is not covered

        dry = phoenix_cert("rotate", "--manifest", path, "--all", "--dry-run")
        again = phoenix_cert("rotate", "--manifest", path, "--all")
        pending = phoenix_cert(
            "deploy-hook", "--manifest", path, "--defer", env={"RENEWED_LINEAGE": str(lineage.live)}
        )
        post = phoenix_cert("post-hook", "--manifest", path)
        assert (dry.returncode, again.returncode, post.returncode) == (2, 2, 2), post.stderr
        assert pending.returncode == 0, pending.stderr
        assert len(receiver.wait_for(2, timeout=2.0)) == 1  # told already today
        assert lab.version(standin) == version

    received = b"".join(receiver.raw).decode()
    for line in key_lines(bad.key_pem):
        assert line not in received


def test_a_timer_run_that_cannot_reach_docker_tells_it_once_a_day(lab: Lab) -> None:
    """Docker away (a socket nobody listens on): `rotate --all` exits 3, nothing changed,
    and the operator hears of it once; the hourly runs after it stay silent."""
    standin = lab.deploy("web")
    new = lab.lineage("web")
    path = lab.manifest([lab.entry("web", [standin])])
    away = {"DOCKER_HOST": f"unix://{lab.root / 'no-docker.sock'}"}

    with json_receiver() as receiver:
        notify_to(path, receiver.url)

        first = phoenix_cert("rotate", "--manifest", path, "--all", env=away)
        assert first.returncode == 3, first.stderr
        assert len(receiver.wait_for(1)) == 1
        [body] = receiver.bodies
        assert body["type"] == "failure"
        assert body["title"].endswith(": rotate failed (exit 3)")
        assert "no-docker.sock" in body["message"]

        again = phoenix_cert("rotate", "--manifest", path, "--all", env=away)
        assert again.returncode == 3, again.stderr
        back = phoenix_cert("rotate", "--manifest", path, "--all")
        assert back.returncode == 0, back.stderr
        assert served_sha256(standin.port) == new.leaf.sha256
        # Told already today; a good run sends nothing (notify_on is failures only).
        assert len(receiver.wait_for(2, timeout=2.0)) == 1

    assert TOKEN not in b"".join(receiver.raw).decode()
