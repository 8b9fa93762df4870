"""`phoenix-cert status`: exit codes, and the whole table against the real daemon."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from phoenix_certbot.cli.main import cli
from phoenix_certbot.rotation.state import StateStore
from phoenix_certbot.swarm.client import SwarmClient
from tests.rotation.lab import (
    PHOENIX_CERT,
    SAN,
    Lab,
    intent_files,
    invoke,
    killed_at,
    served_sha256,
    write_private,
)
from tests.status.promtool import check_metrics
from tests.status.test_metrics import samples


class CountingApi:
    """Passes every call on to the real Docker API client and counts them by name."""

    def __init__(self, api: Any) -> None:
        self._api = api
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._api, name)
        if not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return attr(*args, **kwargs)

        return counted


def counting_connect(monkeypatch: pytest.MonkeyPatch, api: Any) -> CountingApi:
    counting = CountingApi(api)

    def connect(cls: type[SwarmClient], timeout_s: float = 30.0) -> SwarmClient:
        return cls(counting, where="test")

    monkeypatch.setattr(SwarmClient, "connect", classmethod(connect))
    return counting


def small_manifest(tmp_path: Path) -> Path:
    document = {
        "version": 2,
        "settings": {
            "certbot_live_dir": str(tmp_path / "live"),
            "state_dir": str(tmp_path / "state"),
        },
        "certificates": [{"name": "web", "sans": ["web.test"]}],
    }
    return write_private(tmp_path / "manifest.json", json.dumps(document))


def test_bad_manifest_exits_2(tmp_path: Path) -> None:
    path = write_private(tmp_path / "bad.json", '{"version": 2, "certificates": "no"}')
    result = CliRunner().invoke(cli, ["status", "--manifest", str(path)])
    assert result.exit_code == 2
    assert f"{path}: $.certificates: expected array" in result.output


def test_unreachable_docker_exits_3(tmp_path: Path) -> None:
    # A process of its own: the docker SDK leaks its socket when it cannot connect.
    env = dict(os.environ, DOCKER_HOST=f"unix://{tmp_path}/no-such.sock")
    result = subprocess.run(
        [str(PHOENIX_CERT), "status", "--manifest", str(small_manifest(tmp_path))],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3, result.stderr
    assert "cannot reach Docker" in result.stderr
    assert result.stdout == ""


def ghost_entry(lab: Lab) -> dict[str, Any]:
    """A certificate whose lineage does not exist, for a service that does not exist."""
    return {
        "name": "ghost",
        "sans": [SAN],
        "services": [
            {
                "service": lab.resources.name("ghost"),
                "secrets": [{"name": lab.resources.name("ghost.sslcert"), "source": "fullchain"}],
            }
        ],
    }


@pytest.mark.docker
def test_status_shows_every_state_in_one_snapshot_and_writes_valid_metrics(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh, stale, redeployed = (lab.deploy(n) for n in ("fresh", "stale", "redeployed"))
    lineages = {n: lab.lineage(n) for n in ("fresh", "stale", "redeployed")}
    manifest = lab.manifest(
        [
            lab.entry("fresh", [fresh]),
            lab.entry("stale", [stale]),
            lab.entry("redeployed", [redeployed]),
            ghost_entry(lab),
        ]
    )
    rotated = invoke("rotate", "--manifest", manifest, "fresh", "stale")
    assert rotated.exit_code == 0, rotated.output
    renewed = lineages["stale"].renew()  # on disk, not deployed: "stale" is now behind

    counting = counting_connect(monkeypatch, lab.api)
    textfile = lab.root / "metrics" / "phoenix-cert.prom"
    result = invoke("status", "--manifest", manifest, "--json", "--textfile", textfile)

    assert result.exit_code == 0, result.output
    # One snapshot: services, secrets, configs; nothing per certificate or service.
    assert counting.calls == {"services": 1, "secrets": 1, "configs": 1}
    doc = json.loads(result.stdout)
    certs = {c["name"]: c for c in doc["certificates"]}
    states = {n: [s["state"] for s in c["services"]] for n, c in certs.items()}
    assert states == {
        "fresh": ["up_to_date"],
        "stale": ["behind"],
        "redeployed": ["reverted"],
        "ghost": ["missing"],
    }
    assert certs["fresh"]["certificate"]["sha256"] == lineages["fresh"].leaf.sha256
    assert certs["stale"]["certificate"]["sha256"] == renewed.leaf.sha256
    # "behind" names what it still uses: the version of the leaf that was rotated in.
    behind = certs["stale"]["services"][0]["mounts"]
    assert {m["leaf_sha256"] for m in behind} == {lineages["stale"].leaf.sha256}
    reverted = certs["redeployed"]["services"][0]["mounts"]
    assert reverted[0]["mounted"] == lab.resources.name("redeployed-bootstrap-cert")
    assert certs["ghost"]["certificate"]["ok"] is False
    assert certs["ghost"]["certificate"]["check"] == "missing"
    assert certs["fresh"]["last_rotation"]["result"] == "ok"
    assert certs["fresh"]["last_verify"] == {
        "time": certs["fresh"]["last_verify"]["time"],
        "result": "ok",
        "urls": {fresh.url: True},
    }
    assert certs["redeployed"]["last_rotation"] is None

    metrics = textfile.read_text()
    assert stat.S_IMODE(textfile.stat().st_mode) == 0o644
    values = samples(metrics)
    assert values[f'phoenix_cert_deployed{{cert="fresh",service="{fresh.name}"}}'] == 1
    assert values[f'phoenix_cert_deployed{{cert="stale",service="{stale.name}"}}'] == 0
    assert values[f'phoenix_cert_deployed{{cert="redeployed",service="{redeployed.name}"}}'] == 0
    assert values[f'phoenix_cert_verify_ok{{cert="fresh",url="{fresh.url}"}}'] == 1
    assert values['phoenix_cert_files_ok{cert="ghost"}'] == 0
    assert 'phoenix_cert_last_rotation_timestamp_seconds{cert="stale",result="ok"}' in values
    assert values['phoenix_cert_last_rotation_ok{cert="stale"}'] == 1
    check_metrics(metrics)

    # The same three calls for a manifest of one certificate: the count does not grow.
    one = lab.manifest([lab.entry("fresh", [fresh])], name="one.json")
    counting.calls.clear()
    assert invoke("status", "--manifest", one).exit_code == 0
    assert counting.calls == {"services": 1, "secrets": 1, "configs": 1}


@pytest.mark.docker
def test_status_table_for_people(lab: Lab) -> None:
    web = lab.deploy("web")
    lineage = lab.lineage("web")
    manifest = lab.manifest([lab.entry("web", [web]), ghost_entry(lab)])
    assert invoke("rotate", "--manifest", manifest, "web").exit_code == 0

    result = invoke("status", "--manifest", manifest)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()

    def row(name: str) -> str:
        return next(line for line in lines if line.startswith(name + " "))

    assert lineage.leaf.sha256[:12] in row("web")
    assert web.name in row("web") and "up to date" in row("web")
    assert row("web").count(" ok") == 2  # last rotation and last verification
    ghost = row("ghost")
    assert "missing" in ghost and "never" in ghost
    assert lines[lines.index(ghost) + 1].startswith("    ! certificate: ")
    assert "lineage directory not found" in lines[lines.index(ghost) + 1]
    assert lines[-1] == "2 certificate(s) (1 with a problem on disk): 1 missing, 1 up to date"


@pytest.mark.docker
def test_status_and_verify_show_what_a_killed_run_left_and_resolve_nothing(lab: Lab) -> None:
    standin = lab.deploy("web")
    lineage = lab.lineage("web")
    manifest = lab.manifest([lab.entry("web", [standin])])
    killed_at("service-updated", "rotate", "--manifest", manifest, "--all")
    (left,) = intent_files(lab.state_dir)
    journaled, mounted = left.read_bytes(), lab.mounted(standin)
    textfile = lab.root / "metrics" / "phoenix-cert.prom"

    # Held by "another run": a command that took the lock, or resolved the intent, would
    # wait here or change the journal.
    with StateStore(lab.state_dir).locked():
        as_json = invoke("status", "--manifest", manifest, "--json", "--textfile", textfile)
        as_text = invoke("status", "--manifest", manifest)
        verified = invoke("verify", "--json", "--timeout", "20", "--manifest", manifest)

    assert as_json.exit_code == 0, as_json.output
    doc = json.loads(as_json.stdout)
    assert doc["ok"] is False
    (shown,) = doc["open_intents"]
    assert (shown["service"], shown["certificates"], shown["phase"]) == (
        standin.name,
        ["web"],
        "update",
    )
    assert shown["file"] == str(left) and shown["error"] is None
    assert 0 <= shown["age_s"] < 600
    assert samples(textfile.read_text())["phoenix_cert_open_intents"] == 1
    check_metrics(textfile.read_text())
    assert f"    ! {standin.name}: web, phase update, since " in as_text.stdout
    assert as_text.stdout.splitlines()[-1].endswith("; 1 open intent(s)")
    findings = json.loads(verified.stdout)["findings"]
    (warning,) = [f for f in findings if f["id"] == "state.open-intent"]
    assert warning["severity"] == "warning" and warning["service"] == standin.name
    assert warning["file"] == str(left)
    assert left.read_bytes() == journaled and lab.mounted(standin) == mounted

    # The next run resolves it (finishes the good update); then nothing is open.
    assert invoke("rotate", "--manifest", manifest, "--all").exit_code == 0
    after = invoke("status", "--manifest", manifest, "--json", "--textfile", textfile)
    assert json.loads(after.stdout)["open_intents"] == []
    assert samples(textfile.read_text())["phoenix_cert_open_intents"] == 0
    assert served_sha256(standin.port) == lineage.leaf.sha256
