"""Bad input and an unreachable Docker: the right exit code, and nothing changed."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.rotation.lab import SAN, Lab, Standin, invoke, phoenix_cert, served_sha256, write_private
from tests.support import pki

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def web(module_lab: Lab) -> Iterator[Standin]:
    yield module_lab.deploy("web")


def _expired(lab: Lab) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    leaf = pki.issue(
        [SAN], lab.ca, not_before=now - dt.timedelta(days=100), not_after=now - dt.timedelta(days=1)
    )
    pki.write_lineage(lab.config_dir, "expired", leaf, lab.ca)


def _san_not_covered(lab: Lab) -> None:
    leaf = pki.issue(["other.example.test"], lab.ca)
    pki.write_lineage(lab.config_dir, "elsewhere", leaf, lab.ca)


def _key_mismatch(lab: Lab) -> None:
    leaf = pki.issue([SAN], lab.ca)
    stranger = pki.issue([SAN], lab.ca)
    pki.write_lineage(lab.config_dir, "mismatch", pki.Issued(leaf.cert, stranger.key), lab.ca)


BAD_LINEAGES: dict[str, tuple[Callable[[Lab], None], str]] = {
    "expired": (_expired, "expired on"),
    "elsewhere": (_san_not_covered, "does not cover portainer.example.test"),
    "mismatch": (_key_mismatch, "private key does not match"),
}


def _nothing_changed(
    lab: Lab, standin: Standin, since: float, before: tuple[int, set[str]]
) -> None:
    assert lab.events(since, time.time()) == []
    assert (lab.version(standin), lab.secret_names()) == before


@pytest.mark.parametrize("name", sorted(BAD_LINEAGES))
@pytest.mark.parametrize("command", ["rotate", "plan"])
def test_bad_certificate_exits_2_and_changes_nothing(
    module_lab: Lab, web: Standin, name: str, command: str
) -> None:
    make, message = BAD_LINEAGES[name]
    if not (module_lab.live_dir / name).exists():
        make(module_lab)
    manifest = module_lab.manifest([module_lab.entry(name, [web])], name=f"{name}.json")
    before = (module_lab.version(web), module_lab.secret_names())
    served = served_sha256(web.port)

    since = time.time()
    result = invoke(command, "--manifest", manifest, name)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    _nothing_changed(module_lab, web, since, before)
    assert served_sha256(web.port) == served


@pytest.mark.parametrize(
    "document",
    [
        "{not json",
        json.dumps({"version": 2, "certificates": [{"name": "web"}]}),
        json.dumps({"version": 3, "certificates": []}),
    ],
    ids=["not-json", "no-sans", "wrong-version"],
)
def test_malformed_manifest_exits_2_and_changes_nothing(
    module_lab: Lab, web: Standin, tmp_path: Path, document: str
) -> None:
    manifest = write_private(tmp_path / "manifest.json", document)
    before = (module_lab.version(web), module_lab.secret_names())
    since = time.time()
    result = invoke("rotate", "--manifest", manifest, "--all")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"phoenix-cert: error: {manifest}: ")
    _nothing_changed(module_lab, web, since, before)


@pytest.mark.parametrize("command", ["rotate", "plan", "rollback", "stack-env", "deploy-hook"])
def test_unreachable_docker_exits_3_with_one_line_and_changes_nothing(
    module_lab: Lab, web: Standin, command: str
) -> None:
    if not (module_lab.live_dir / "web").exists():
        module_lab.lineage("web")
    manifest = module_lab.manifest([module_lab.entry("web", [web])], name="web.json")
    args = {"rotate": ["--all"], "rollback": ["web"]}.get(command, [])
    before = (module_lab.version(web), module_lab.secret_names())
    since = time.time()
    result = phoenix_cert(
        command,
        "--manifest",
        manifest,
        *args,
        env={
            "DOCKER_HOST": "unix:///nonexistent.sock",
            "RENEWED_LINEAGE": str(module_lab.live_dir / "web"),
        },
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("phoenix-cert: error: ")
    assert "Traceback" not in result.stderr
    _nothing_changed(module_lab, web, since, before)


def test_post_hook_keeps_deferred_lineages_when_docker_is_unreachable(
    module_lab: Lab, web: Standin
) -> None:
    if not (module_lab.live_dir / "web").exists():
        module_lab.lineage("web")
    manifest = module_lab.manifest([module_lab.entry("web", [web])], name="web.json")
    lineage = {"RENEWED_LINEAGE": str(module_lab.live_dir / "web")}
    deferred = invoke("deploy-hook", "--defer", "--manifest", manifest, env=lineage)
    assert deferred.exit_code == 0, deferred.output
    pending = module_lab.state_dir / "pending.json"
    assert json.loads(pending.read_text())["lineages"] == [lineage["RENEWED_LINEAGE"]]

    before = (module_lab.version(web), module_lab.secret_names())
    since = time.time()
    unreachable = {"DOCKER_HOST": "unix:///nonexistent.sock"}
    result = phoenix_cert("post-hook", "--manifest", manifest, env=unreachable)
    assert result.returncode == 3, result.stdout + result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    _nothing_changed(module_lab, web, since, before)
    # Still pending: the next post-hook deploys it.
    assert json.loads(pending.read_text())["lineages"] == [lineage["RENEWED_LINEAGE"]]
    pending.unlink()
