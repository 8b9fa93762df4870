"""docs/manifest.md must describe every field the schema accepts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from phoenix_certbot.manifest.legacy import KNOWN_KEYS

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "manifests" / "certificate-manifest.schema.json"
DOC = REPO / "docs" / "manifest.md"


def properties(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.get("properties", {}).items():
            yield key
            yield from properties(value)
        for key, value in node.items():
            if key != "properties":
                yield from properties(value)
    elif isinstance(node, list):
        for item in node:
            yield from properties(item)


def test_every_schema_property_is_documented() -> None:
    names = set(properties(json.loads(SCHEMA.read_text())))
    assert len(names) > 20  # the walk found the nested definitions too
    doc = DOC.read_text()
    missing = sorted(n for n in names if f"`{n}`" not in doc)
    assert missing == [], f"docs/manifest.md does not describe: {missing}"


def test_every_legacy_key_is_documented() -> None:
    doc = DOC.read_text()
    assert sorted(k for k in KNOWN_KEYS if f"`{k}`" not in doc) == []


def test_documented_defaults_match_the_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    doc = DOC.read_text()
    for key, spec in schema["properties"]["settings"]["properties"].items():
        default = spec.get("default")
        shown = default if isinstance(default, (str, int)) else json.dumps(default)
        cell = f" `{shown}` " if default is not None else " "
        assert f"| `{key}` |{cell}|" in doc, key
