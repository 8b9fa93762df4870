"""A `files` target whose owner this host does not know is bad input, found before anything
is written: it used to raise KeyError after the service's earlier files were written."""

from __future__ import annotations

import pytest

from tests.rotation.lab import Lab, invoke

pytestmark = pytest.mark.docker


def test_an_unknown_file_owner_is_exit_2_naming_the_field_and_nothing_changes(lab: Lab) -> None:
    standin = lab.deploy("web")
    lab.lineage("web")
    first, second = lab.root / "out" / "first.pem", lab.root / "out" / "second.pem"
    binding = lab.binding(standin) | {
        "files": [
            {"path": str(first), "source": "fullchain"},
            {"path": str(second), "source": "privkey", "owner": "phx-no-such-user"},
        ]
    }
    manifest = lab.manifest([lab.entry("web", [standin], bindings=[binding])])
    version = lab.version(standin)

    result = invoke("rotate", "--manifest", manifest, "--all")

    assert result.exit_code == 2, result.output
    assert f"files[{second}].owner" in result.stderr and "phx-no-such-user" in result.stderr
    assert not first.exists() and not second.exists()
    assert lab.version(standin) == version
    assert lab.managed(standin.cert_base) == []
