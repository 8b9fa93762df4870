"""`phoenix-cert plan` against the real daemon: what it would do, as text and as JSON."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.rotation.lab import (
    CERT_TARGET,
    KEY_TARGET,
    SAN,
    Lab,
    Lineage,
    Standin,
    invoke,
    phoenix_cert,
)

pytestmark = pytest.mark.docker


@dataclass(frozen=True)
class Setup:
    web: Standin
    other: Standin
    web_cert: Lineage
    api_cert: Lineage


@pytest.fixture(scope="module")
def setup(module_lab: Lab) -> Iterator[Setup]:
    yield Setup(
        web=module_lab.deploy("web"),
        other=module_lab.deploy("other"),
        web_cert=module_lab.lineage("web"),
        api_cert=module_lab.lineage("api"),
    )


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _payloads(lineage: Lineage) -> tuple[str, str]:
    """SHA-256 of the fullchain and privkey payloads the tool would ship."""
    return _sha(lineage.leaf.cert_pem + lineage.ca.cert_pem), _sha(lineage.leaf.key_pem)


def _plan(lab: Lab, manifest: Path, *args: str) -> tuple[str, dict[str, object]]:
    before = (lab.secret_names(), lab.service_versions())
    since = time.time()
    text = invoke("plan", "--manifest", manifest, *args)
    as_json = invoke("plan", "--manifest", manifest, "--json", *args)
    assert text.exit_code == 0, text.output
    assert as_json.exit_code == 0, as_json.output
    # A plan changes nothing.
    assert lab.events(since, time.time()) == []
    assert (lab.secret_names(), lab.service_versions()) == before
    document: dict[str, object] = json.loads(as_json.stdout)
    return text.stdout, document


def test_plan_for_one_certificate_of_one_service(module_lab: Lab, setup: Setup) -> None:
    web = setup.web
    manifest = module_lab.manifest([module_lab.entry("web", [web])], name="one.json")
    fullchain, privkey = _payloads(setup.web_cert)
    cert_name = f"{web.cert_base}_{fullchain[:12]}"
    key_name = f"{web.key_base}_{privkey[:12]}"
    bootstrap = module_lab.mounted(web)

    text, document = _plan(module_lab, manifest)

    assert document == {
        "certificates": ["web"],
        "create": [
            {"kind": "secret", "name": cert_name, "base": web.cert_base, "certificate": "web",
             "source": "fullchain", "sha256": fullchain},
            {"kind": "secret", "name": key_name, "base": web.key_base, "certificate": "web",
             "source": "privkey", "sha256": privkey},
        ],
        "services": [
            {
                "service": web.name,
                "certificates": ["web"],
                "force": False,
                "mounts": [
                    {"kind": "secret", "target": CERT_TARGET, "from": bootstrap[CERT_TARGET],
                     "to": cert_name, "uid": "0", "gid": "0", "mode": "0444"},
                    {"kind": "secret", "target": KEY_TARGET, "from": bootstrap[KEY_TARGET],
                     "to": key_name, "uid": "0", "gid": "0", "mode": "0400"},
                ],
                "files": [],
            }
        ],
        "verify": [
            {"certificate": "web", "url": web.url, "server_name": SAN,
             "expect_sha256": setup.web_cert.leaf.sha256},
        ],
        "up_to_date": [],
        "problems": [],
        "skipped": {},
    }  # fmt: skip
    assert text.splitlines() == [
        f"create secret {cert_name} (web fullchain)",
        f"create secret {key_name} (web privkey)",
        f"update service {web.name} once: web",
        f"  secret {CERT_TARGET}: {bootstrap[CERT_TARGET]} -> {cert_name}",
        f"  secret {KEY_TARGET}: {bootstrap[KEY_TARGET]} -> {key_name}",
        f"verify {web.url} (SNI {SAN}) serves {setup.web_cert.leaf.sha256[:16]}",
    ]


def test_plan_updates_a_service_with_two_certificates_once(module_lab: Lab, setup: Setup) -> None:
    web = setup.web
    api_binding = module_lab.binding(web, label="api", cert_target="api.crt", key_target="api.key")
    manifest = module_lab.manifest(
        [
            module_lab.entry("web", [web]),
            module_lab.entry("api", [web], verify=[], bindings=[api_binding]),
        ],
        name="two-certs.json",
    )
    text, document = _plan(module_lab, manifest)
    services = document["services"]
    assert isinstance(services, list)
    assert [(s["service"], s["certificates"]) for s in services] == [(web.name, ["web", "api"])]
    mounts = services[0]["mounts"]
    assert [(m["target"], m["from"]) for m in mounts] == [
        (CERT_TARGET, module_lab.mounted(web)[CERT_TARGET]),
        (KEY_TARGET, module_lab.mounted(web)[KEY_TARGET]),
        ("api.crt", None),
        ("api.key", None),
    ]
    assert len(document["create"]) == 4  # type: ignore[arg-type]
    assert [v["certificate"] for v in document["verify"]] == ["web"]  # type: ignore[attr-defined]
    assert text.count("update service") == 1
    assert f"update service {web.name} once: web, api" in text
    assert "  secret api.crt: (not mounted) -> " in text

    # Naming only `api` still plans the one update with both: they share the service.
    _, only_api = _plan(module_lab, manifest, "api")
    assert only_api["services"] == services


def test_plan_updates_each_service_of_a_shared_certificate(module_lab: Lab, setup: Setup) -> None:
    shared = [
        module_lab.binding(setup.web, label="shared"),
        module_lab.binding(setup.other, label="shared"),
    ]
    manifest = module_lab.manifest(
        [module_lab.entry("web", [setup.web, setup.other], bindings=shared)], name="shared.json"
    )
    _, document = _plan(module_lab, manifest)
    services = document["services"]
    assert isinstance(services, list)
    assert [(s["service"], s["certificates"]) for s in services] == [
        (setup.other.name, ["web"]),
        (setup.web.name, ["web"]),
    ]
    # The versions are created once, for both services.
    assert len(document["create"]) == 2  # type: ignore[arg-type]
    assert [v["url"] for v in document["verify"]] == [setup.web.url, setup.other.url]  # type: ignore[attr-defined]


def test_rotate_dry_run_does_not_wait_for_the_run_lock(module_lab: Lab, setup: Setup) -> None:
    import filelock

    manifest = module_lab.manifest([module_lab.entry("web", [setup.web])], name="dry.json")
    module_lab.state_dir.mkdir(parents=True, exist_ok=True)
    # Another run holds the lock (its default wait is 600 s).
    with filelock.FileLock(str(module_lab.state_dir / "lock"), timeout=0):
        started = time.monotonic()
        result = phoenix_cert("rotate", "--manifest", manifest, "--all", "--dry-run", timeout=60)
        took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert f"update service {setup.web.name} once: web" in result.stdout
    assert "another phoenix-cert run holds" not in result.stderr
    assert took < 30
