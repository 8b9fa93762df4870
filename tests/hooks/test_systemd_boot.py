"""The units under a real systemd: PID 1 of a throwaway machine (systemd-nspawn, see
tests/harness/nspawn.py) with phoenix-certbot installed and the host's Docker socket.

`phoenix-cert install-systemd` writes the units inside the machine; the timers are enabled;
`systemctl start phoenix-cert-rotate.service` rotates a stand-in service on the shared swarm
through the hardened unit, and the served leaf is checked from the host. One machine serves
the module's tests; each test has its own stand-in, manifest and drop-in.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from phoenix_certbot.cli.systemd_cmd import TIMERS
from tests.conftest import Installed, unavailable
from tests.harness import nspawn
from tests.rotation.lab import SAN, Lab, served_sha256
from tests.support import pki

pytestmark = pytest.mark.docker

ROTATE = "phoenix-cert-rotate.service"
RENEW = "phoenix-cert-renew.service"
CERTBOT_DIRS = ("/etc/letsencrypt", "/var/lib/letsencrypt", "/var/log/letsencrypt")
LAB_INSIDE = Path("/srv/phoenix-lab")  # the lab's folder, as the machine sees it
STATE_DIR = Path("/var/lib/phoenix-certbot")  # the units' StateDirectory=
DOCKER_SOCKET = Path("/run/docker.sock")
INFO = "6"  # syslog priority, as journald records it


@dataclass(frozen=True)
class Booted:
    machine: nspawn.Machine
    lab: Lab
    phoenix_cert: Path


@pytest.fixture(scope="module")
def booted(
    module_lab: Lab, debian_venv: Installed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Booted]:
    """A booted machine with the units installed by `phoenix-cert install-systemd` and both
    timers enabled."""
    problem = nspawn.prerequisites_problem()
    if problem:
        unavailable(problem)
    if not DOCKER_SOCKET.is_socket():
        unavailable(f"{DOCKER_SOCKET} is not a socket")
    phoenix_cert = debian_venv.bin("phoenix-cert")
    binds = (
        nspawn.Bind(debian_venv.venv),
        nspawn.Bind(module_lab.root, LAB_INSIDE),
        nspawn.Bind(DOCKER_SOCKET, read_only=False),
    )
    started = time.monotonic()
    with nspawn.boot(tmp_path_factory.mktemp("machine"), binds) as machine:
        print(f"\nmachine booted in {machine.boot_seconds:.1f} s")
        installed = machine.run(phoenix_cert, "install-systemd")
        assert f"/etc/systemd/system/{ROTATE}" in installed.stdout
        machine.run("systemctl", "daemon-reload")
        machine.run("systemctl", "enable", "--now", *TIMERS)
        yield Booted(machine, module_lab, phoenix_cert)
    print(f"\nmachine up, used and removed in {time.monotonic() - started:.1f} s")


def use_manifest(booted: Booted, manifest: Path) -> None:
    """What an operator does with `systemctl edit`: name the manifest in a drop-in."""
    dropin = booted.machine.path(f"/etc/systemd/system/{ROTATE}.d/manifest.conf")
    dropin.parent.mkdir(parents=True, exist_ok=True)
    inside = LAB_INSIDE / manifest.relative_to(booted.lab.root)
    dropin.write_text(f"[Service]\nEnvironment=PHOENIX_CERT_MANIFEST={inside}\n")
    booted.machine.run("systemctl", "daemon-reload")


def manifest_for(booted: Booted, entry: dict[str, Any], name: str) -> Path:
    return booted.lab.manifest(
        [entry],
        live_dir=LAB_INSIDE / booted.lab.live_dir.relative_to(booted.lab.root),
        state_dir=STATE_DIR,
        name=name,
    )


def start_rotate(booted: Booted) -> tuple[int, float]:
    """`systemctl start` of the oneshot rotate service: returns when the run is over."""
    started = time.monotonic()
    result = booted.machine.run("systemctl", "start", ROTATE, timeout=180, check=False)
    return result.returncode, time.monotonic() - started


def show(booted: Booted, *properties: str, unit: str = ROTATE) -> dict[str, str]:
    result = booted.machine.run("systemctl", "show", unit, *(f"--property={p}" for p in properties))
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def journal(booted: Booted) -> list[dict[str, Any]]:
    """The journal entries of the unit's last run (its invocation id)."""
    invocation = show(booted, "InvocationID")["InvocationID"]
    result = booted.machine.run(
        "journalctl", "--no-pager", "--output=json", f"_SYSTEMD_INVOCATION_ID={invocation}"
    )
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def messages(entries: list[dict[str, Any]], priority: str | None = None) -> list[str]:
    return [
        str(e["MESSAGE"])
        for e in entries
        if isinstance(e.get("MESSAGE"), str) and (priority is None or e["PRIORITY"] == priority)
    ]


def test_both_timers_are_listed_by_systemctl(booted: Booted) -> None:
    result = booted.machine.run("systemctl", "list-timers", "--no-pager", "--no-legend")
    for timer in TIMERS:
        assert timer in result.stdout, result.stdout
    enabled = booted.machine.run("systemctl", "is-enabled", *TIMERS)
    assert enabled.stdout.split() == ["enabled", "enabled"]


def test_rotate_service_rotates_through_the_hardened_unit(booted: Booted) -> None:
    lab = booted.lab
    web = lab.deploy("unit-ok")
    lineage = lab.lineage("unit-ok")
    use_manifest(booted, manifest_for(booted, lab.entry("unit-ok", [web]), "unit-ok.json"))

    code, seconds = start_rotate(booted)
    print(f"\nrotation through the unit: {seconds:.1f} s")
    entries = journal(booted)
    assert code == 0, "\n".join(messages(entries))
    assert show(booted, "Result")["Result"] == "success"
    # The rotation really happened: the stand-in serves the new leaf, seen from the host.
    assert served_sha256(web.port) == lineage.leaf.sha256
    # The state directory (StateDirectory=, the only writable place) holds the run's record.
    state = booted.machine.path(STATE_DIR)
    assert any(p.is_file() for p in state.rglob("*")), f"nothing written under {STATE_DIR}"
    # Its report reached the journal at INFO, and nothing went wrong on the way (a
    # warning would be the first sign of something the hardening forbids).
    info = messages(entries, INFO)
    assert any(line.startswith(f"{web.name}: updated") for line in info), info
    assert any(line.startswith(f"verify {web.url}: ok") for line in info), info
    assert not [line for line in messages(entries) if "WARNING" in line or "ERROR" in line]


def test_a_failed_rotation_leaves_the_unit_failed(booted: Booted) -> None:
    lab = booted.lab
    refused = pki.issue([SAN], lab.ca)
    bootstrap = pki.issue([SAN], lab.ca)
    web = lab.deploy("unit-bad", bootstrap, env={"STANDIN_FAIL_IF_CERT_SHA256": refused.sha256})
    lab.lineage("unit-bad", refused)
    use_manifest(booted, manifest_for(booted, lab.entry("unit-bad", [web]), "unit-bad.json"))

    code, seconds = start_rotate(booted)
    print(f"\nfailed rotation through the unit: {seconds:.1f} s")
    entries = journal(booted)
    assert code != 0, "\n".join(messages(entries))
    assert booted.machine.run("systemctl", "is-failed", ROTATE, check=False).stdout.strip() == (
        "failed"
    )
    assert show(booted, "Result", "ExecMainStatus") == {
        "Result": "exit-code",
        "ExecMainStatus": "1",  # failed, rolled back: nothing left broken
    }
    assert served_sha256(web.port) == bootstrap.sha256
    assert any("rolled-back" in line for line in messages(entries)), messages(entries)


def test_renew_service_runs_certbot_on_a_host_without_certificates_yet(booted: Booted) -> None:
    # A fresh host: none of certbot's folders exists. The unit makes them (writable only
    # there), so `certbot renew` starts, finds nothing to renew and succeeds.
    for folder in CERTBOT_DIRS:
        assert not booted.machine.path(folder).exists()
    result = booted.machine.run("systemctl", "start", RENEW, timeout=180, check=False)
    status = booted.machine.run("systemctl", "status", RENEW, "--no-pager", check=False)
    assert result.returncode == 0, status.stdout
    assert show(booted, "Result", unit=RENEW)["Result"] == "success"
    for folder in CERTBOT_DIRS:
        assert booted.machine.path(folder).is_dir(), folder
    assert (booted.machine.path("/var/log/letsencrypt") / "letsencrypt.log").is_file()
