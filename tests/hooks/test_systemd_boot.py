"""The units under a real systemd: PID 1 of a throwaway machine (systemd-nspawn, see
tests/harness/nspawn.py) with phoenix-certbot installed and the host's Docker socket.

`phoenix-cert install-systemd` writes the units inside the machine; the timers are enabled;
`systemctl start phoenix-cert-rotate.service` rotates a stand-in service on the shared swarm
through the hardened unit, and `phoenix-cert-renew.service` renews against the session's
Pebble and rotates through the renewal hooks; the served leaf is checked from the host. One
machine serves the module's tests; each test has its own stand-in, manifest and drop-in.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from phoenix_certbot.cli.systemd_cmd import TIMERS
from tests.conftest import Installed, unavailable
from tests.harness import nspawn
from tests.harness.pebble import Pebble
from tests.harness.ports import free_port
from tests.hooks.test_hook_scripts import DEPLOY, POST
from tests.rotation.lab import SAN, Lab, leaf_sha256_of, served_sha256
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


def drop_in(booted: Booted, unit: str, **environment: str | Path) -> None:
    """What an operator does with `systemctl edit UNIT`: variables in a drop-in."""
    path = booted.machine.path(f"/etc/systemd/system/{unit}.d/test.conf")
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"Environment={name}={value}" for name, value in environment.items()]
    path.write_text("[Service]\n" + "\n".join(lines) + "\n")
    booted.machine.run("systemctl", "daemon-reload")


def inside(booted: Booted, path: Path) -> Path:
    """A path of the lab's folder as the machine sees it."""
    return LAB_INSIDE / path.relative_to(booted.lab.root)


def manifest_for(
    booted: Booted, entry: dict[str, Any], name: str, live_dir: Path | None = None
) -> Path:
    """A manifest in the lab's folder, with the paths the machine sees; the state in the
    units' StateDirectory=."""
    return booted.lab.manifest(
        [entry],
        live_dir=live_dir or inside(booted, booted.lab.live_dir),
        state_dir=STATE_DIR,
        name=name,
    )


def start(booted: Booted, unit: str) -> tuple[int, float]:
    """`systemctl start` of a oneshot service: returns when its run is over."""
    started = time.monotonic()
    result = booted.machine.run("systemctl", "start", unit, timeout=180, check=False)
    return result.returncode, time.monotonic() - started


def show(booted: Booted, *properties: str, unit: str = ROTATE) -> dict[str, str]:
    result = booted.machine.run("systemctl", "show", unit, *(f"--property={p}" for p in properties))
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def journal(booted: Booted, unit: str = ROTATE) -> list[dict[str, Any]]:
    """The journal entries of the unit's last run (its invocation id)."""
    invocation = show(booted, "InvocationID", unit=unit)["InvocationID"]
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
    manifest = manifest_for(booted, lab.entry("unit-ok", [web]), "unit-ok.json")
    drop_in(booted, ROTATE, PHOENIX_CERT_MANIFEST=inside(booted, manifest))

    code, seconds = start(booted, ROTATE)
    print(f"\nrotation through the unit: {seconds:.1f} s")
    entries = journal(booted)
    assert code == 0, "\n".join(messages(entries))
    assert show(booted, "Result")["Result"] == "success"
    # The rotation really happened: the stand-in serves the new leaf, seen from the host.
    assert served_sha256(web.port) == lineage.leaf.sha256
    # The state directory (StateDirectory=, the only writable place) holds the run's record.
    state = booted.machine.path(STATE_DIR)
    assert any(p.is_file() for p in state.rglob("*")), f"nothing written under {STATE_DIR}"
    # Its progress, as it happened, and its report reached the journal at INFO, and nothing
    # went wrong on the way (a warning would be the first sign of something the hardening
    # forbids).
    info = messages(entries, INFO)
    progress = [
        f"created secret {web.cert_base}_",
        f"{web.name}: updated, waiting for convergence",
    ]
    for start_of_line in progress:
        assert any(start_of_line in line for line in info), (start_of_line, info)
    assert any(line.startswith(f"{web.name}: updated (") for line in info), info
    assert any(line.startswith(f"verify {web.url}: ok") for line in info), info
    assert not [line for line in messages(entries) if "WARNING" in line or "ERROR" in line]


def test_a_failed_rotation_leaves_the_unit_failed(booted: Booted) -> None:
    lab = booted.lab
    refused = pki.issue([SAN], lab.ca)
    bootstrap = pki.issue([SAN], lab.ca)
    web = lab.deploy("unit-bad", bootstrap, env={"STANDIN_FAIL_IF_CERT_SHA256": refused.sha256})
    lab.lineage("unit-bad", refused)
    manifest = manifest_for(booted, lab.entry("unit-bad", [web]), "unit-bad.json")
    drop_in(booted, ROTATE, PHOENIX_CERT_MANIFEST=inside(booted, manifest))

    code, seconds = start(booted, ROTATE)
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
    assert any(f"{web.name}: rolling back" in line for line in messages(entries, INFO))


def test_renew_service_renews_and_rotates_through_the_renewal_hooks(
    booted: Booted, pebble: Pebble
) -> None:
    machine, lab = booted.machine, booted.lab
    # A fresh host: none of certbot's folders exists. The unit makes them (writable only
    # there), so `certbot renew` starts, finds nothing to renew and succeeds.
    for folder in CERTBOT_DIRS:
        assert not machine.path(folder).exists()
    code, _ = start(booted, RENEW)
    assert code == 0, "\n".join(messages(journal(booted, RENEW)))
    for folder in CERTBOT_DIRS:
        assert machine.path(folder).is_dir(), folder

    # A lineage issued by the certbot the unit runs, in the machine's /etc/letsencrypt;
    # the hooks copied where certbot runs them; certbot.ini as an operator could set it
    # (renew now, no random sleep first).
    certbot = unit_certbot(booted)
    ca_bundle = lab.root / "pebble-ca.pem"
    shutil.copy(pebble.listener_ca_path, ca_bundle)
    issued = machine.run(
        certbot, "certonly", "--standalone", "--non-interactive", "--agree-tos",
        "-m", "admin@example.test", "--server", pebble.directory_url,
        "--http-01-port", str(free_port()), "--http-01-address", "127.0.0.1",
        "-d", SAN, "--cert-name", "unit-renew",
        env={"REQUESTS_CA_BUNDLE": str(inside(booted, ca_bundle))},
        timeout=120, check=False,
    )  # fmt: skip
    assert issued.returncode == 0, issued.stderr
    for kind, hook in (("deploy", DEPLOY), ("post", POST)):
        target = machine.path(f"/etc/letsencrypt/renewal-hooks/{kind}/phoenix-cert")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(hook, target)
    machine.path("/etc/letsencrypt/cli.ini").write_text(
        "force-renewal = True\nno-random-sleep-on-renew = True\n"
    )
    live = Path("/etc/letsencrypt/live")
    web = lab.deploy("unit-renew")
    manifest = manifest_for(booted, lab.entry("unit-renew", [web]), "unit-renew.json", live)
    drop_in(
        booted,
        RENEW,
        PHOENIX_CERT_MANIFEST=inside(booted, manifest),
        REQUESTS_CA_BUNDLE=inside(booted, ca_bundle),
    )

    code, seconds = start(booted, RENEW)
    print(f"\nrenewal and rotation through the unit: {seconds:.1f} s")
    entries = journal(booted, RENEW)
    assert code == 0, "\n".join(messages(entries))
    renewed = leaf_sha256_of(machine.path(live / "unit-renew" / "cert.pem"))
    assert machine.path(live / "unit-renew" / "cert.pem").resolve().name == "cert2.pem"
    # The deploy hook recorded the lineage, the post hook deployed it: served now.
    assert served_sha256(web.port) == renewed
    assert not [line for line in messages(entries) if "WARNING" in line or "ERROR" in line]


def unit_certbot(booted: Booted) -> str:
    """The certbot that phoenix-cert-renew.service runs (install-systemd chose it)."""
    text = booted.machine.path(f"/etc/systemd/system/{RENEW}").read_text()
    (line,) = [line for line in text.splitlines() if line.startswith("ExecStart=")]
    return line.removeprefix("ExecStart=").split()[0]
