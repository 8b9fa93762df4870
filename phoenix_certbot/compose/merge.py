"""Merge several stack files the way `docker stack deploy -c a.yml -c b.yml` does, for linting.

Mappings merge key by key, recursively; a later file's scalar or list replaces the earlier
one. As in docker/cli, a service's `ports` are combined (an identical port is kept once)
and its `secrets`/`configs` are combined by `source`, a later one replacing an earlier one.
Every value keeps the file and line it came from, so findings point at the file that
actually sets the value.
"""

from __future__ import annotations

from collections.abc import Sequence

from phoenix_certbot.compose.model import ComposeFile
from phoenix_certbot.compose.ports import parse_port
from phoenix_certbot.compose.tree import Entry, MapNode, Node, Scalar, SeqNode

_KEYED_LISTS = frozenset({"ports", "secrets", "configs"})


def merge_documents(documents: Sequence[ComposeFile]) -> ComposeFile:
    merged = documents[0]
    for document in documents[1:]:
        root = _merge(merged.root, document.root, ())
        assert isinstance(root, MapNode)  # noqa: S101 - two mappings merge into a mapping
        merged = ComposeFile(merged.files + document.files, root, merged.unset + document.unset)
    return merged


def _merge(base: Node, over: Node, path: tuple[str, ...]) -> Node:
    if isinstance(base, MapNode) and isinstance(over, MapNode):
        return _merge_mappings(base, over, path)
    if (
        isinstance(base, SeqNode)
        and isinstance(over, SeqNode)
        and len(path) == 3
        and path[0] == "services"
        and path[2] in _KEYED_LISTS
    ):
        return _merge_keyed(base, over, path[2])
    return over


def _merge_mappings(base: MapNode, over: MapNode, path: tuple[str, ...]) -> MapNode:
    entries = list(base.entries)
    position = {entry.key.text: i for i, entry in enumerate(entries)}
    for entry in over.entries:
        i = position.get(entry.key.text)
        if i is None:
            position[entry.key.text] = len(entries)
            entries.append(entry)
            continue
        old = entries[i]
        value = _merge(old.value, entry.value, (*path, entry.key.text))
        # A merged mapping stays where it was first defined; a replaced value moves
        # to the later file's key.
        key = old.key if isinstance(value, MapNode) and value is not entry.value else entry.key
        entries[i] = Entry(key, value)
    return MapNode(tuple(entries), base.file, base.line)


def _merge_keyed(base: SeqNode, over: SeqNode, kind: str) -> SeqNode:
    items: dict[object, Node] = {}
    for item in (*base.items, *over.items):
        items[_item_key(item, kind)] = item
    return SeqNode(tuple(items.values()), base.file, base.line)


def _item_key(item: Node, kind: str) -> object:
    if kind == "ports":
        try:
            return tuple((p.published, p.target, p.protocol, p.mode) for p in parse_port(item))
        except ValueError:
            return ("invalid", item.file, item.line)
    if isinstance(item, Scalar):
        return item.text
    if isinstance(item, MapNode):
        source = item.text("source")
        if source is not None:
            return source
    return ("unkeyed", item.file, item.line)
