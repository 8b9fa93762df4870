"""Read stack files into `ComposeFile`s: YAML with line numbers, interpolated, merged.

PyYAML's `compose()` gives a node graph with positions; we copy it into our own tree
(`compose.tree`) and drop PyYAML there. Interpolation applies, as in docker/cli, to the
values (never the keys) of the `services`, `networks`, `volumes`, `secrets` and `configs`
sections; `version` and top-level `x-` extension fields are taken as written.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from phoenix_certbot.compose.envfile import resolve_environment
from phoenix_certbot.compose.interpolate import InterpolationError, interpolate
from phoenix_certbot.compose.merge import merge_documents
from phoenix_certbot.compose.model import ComposeFile, UnsetVariable
from phoenix_certbot.compose.ports import (
    InvalidPort,
    PortSpec,
    parse_port,
    parse_ports,
    parse_short_port,
)
from phoenix_certbot.compose.tree import Entry, MapNode, Node, Scalar, SeqNode
from phoenix_certbot.errors import ComposeError

__all__ = [
    "InvalidPort",
    "PortSpec",
    "load_compose",
    "parse_compose",
    "parse_port",
    "parse_ports",
    "parse_short_port",
]

INTERPOLATED_SECTIONS = frozenset({"services", "networks", "volumes", "secrets", "configs"})
_MERGE_TAG = "tag:yaml.org,2002:merge"


def load_compose(
    paths: Sequence[str | Path],
    *,
    env_files: Sequence[str | Path] = (),
    environ: Mapping[str, str] | None = None,
) -> ComposeFile:
    """Load `paths` as `docker stack deploy -c P1 -c P2 ...` would, merged in order.

    `environ` defaults to the process environment; see `compose.envfile` for how it
    layers over `.env` (next to the first file) and `env_files`.
    """
    if not paths:
        raise ComposeError("-", None, "no compose file given")
    env = resolve_environment(
        Path(paths[0]),
        [Path(p) for p in env_files],
        os.environ if environ is None else environ,
    )
    return merge_documents([_read(Path(p), env) for p in paths])


def _read(path: Path, env: Mapping[str, str]) -> ComposeFile:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ComposeError(str(path), None, f"cannot read: {exc}") from exc
    return parse_compose(text, str(path), env)


def parse_compose(text: str, file: str, env: Mapping[str, str]) -> ComposeFile:
    """One stack file's text, interpolated with `env` (pure: no file system)."""
    try:
        document = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise ComposeError(file, _line(exc), _problem(exc)) from exc
    except yaml.YAMLError as exc:
        raise ComposeError(file, None, f"invalid YAML: {exc}") from exc
    if not isinstance(document, yaml.MappingNode):
        line = document.start_mark.line + 1 if document is not None else None
        raise ComposeError(file, line, "the top level must be a mapping (services: ...)")
    builder = _Builder(file, env)
    root = builder.mapping(document, interpolated=False, top_level=True)
    _check_sections(root)
    return ComposeFile((file,), root, tuple(dict.fromkeys(builder.unset)))


def _line(exc: yaml.MarkedYAMLError) -> int | None:
    mark = exc.problem_mark or exc.context_mark
    return None if mark is None else mark.line + 1


def _problem(exc: yaml.MarkedYAMLError) -> str:
    parts = [p for p in (exc.context, exc.problem) if p]
    return "invalid YAML: " + ": ".join(parts) if parts else "invalid YAML"


def _check_sections(root: MapNode) -> None:
    services = root.entry("services")
    if services is None or (isinstance(services.value, Scalar) and services.value.is_null):
        return
    if not isinstance(services.value, MapNode):
        raise ComposeError(services.key.file, services.key.line, "'services' must be a mapping")
    for service in services.value.entries:
        if not isinstance(service.value, MapNode):
            raise ComposeError(
                service.key.file,
                service.key.line,
                f"service {service.key.text!r} must be a mapping",
            )


@dataclass
class _Builder:
    """Copies a PyYAML node graph into our tree, interpolating where Docker does."""

    file: str
    env: Mapping[str, str]

    def __post_init__(self) -> None:
        self.unset: list[UnsetVariable] = []
        self._active: set[int] = set()  # guards against recursive aliases

    def node(self, node: yaml.Node, interpolated: bool) -> Node:
        if id(node) in self._active:
            raise ComposeError(self.file, node.start_mark.line + 1, "recursive YAML alias")
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, interpolated)
            if isinstance(node, yaml.SequenceNode):
                items = tuple(self.node(item, interpolated) for item in node.value)
                return SeqNode(items, self.file, node.start_mark.line + 1)
            assert isinstance(node, yaml.ScalarNode)  # noqa: S101 - the only other kind
            return self.scalar(node, interpolated)
        finally:
            self._active.discard(id(node))

    def scalar(self, node: yaml.ScalarNode, interpolated: bool) -> Scalar:
        line = node.start_mark.line + 1
        plain = node.style is None
        value = str(node.value)
        if not interpolated or "$" not in value:
            return Scalar(value, self.file, line, plain=plain)
        try:
            result = interpolate(value, self.env)
        except InterpolationError as exc:
            raise ComposeError(self.file, line, str(exc)) from exc
        self.unset.extend(UnsetVariable(name, self.file, line) for name in result.unset)
        return Scalar(result.text, self.file, line, raw=value, plain=plain)

    def mapping(
        self, node: yaml.MappingNode, interpolated: bool, top_level: bool = False
    ) -> MapNode:
        explicit: dict[str, Entry] = {}
        merged: dict[str, Entry] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                # `<<: *anchor` or `<<: [*a, *b]`: earlier maps win, explicit keys win.
                for entry in self._merge_sources(value_node, interpolated):
                    merged.setdefault(entry.key.text, entry)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise ComposeError(
                    self.file, key_node.start_mark.line + 1, "mapping keys must be strings"
                )
            key = Scalar(str(key_node.value), self.file, key_node.start_mark.line + 1)
            if key.text in explicit:
                first = explicit[key.text].key.line
                raise ComposeError(
                    self.file, key.line, f"duplicate key {key.text!r} (first at line {first})"
                )
            section = interpolated or (top_level and key.text in INTERPOLATED_SECTIONS)
            explicit[key.text] = Entry(key, self.node(value_node, section))
        entries = list(explicit.values())
        entries.extend(e for k, e in merged.items() if k not in explicit)
        return MapNode(tuple(entries), self.file, node.start_mark.line + 1)

    def _merge_sources(self, node: yaml.Node, interpolated: bool) -> list[Entry]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        entries: list[Entry] = []
        for source in sources:
            built = self.node(source, interpolated)
            if not isinstance(built, MapNode):
                raise ComposeError(
                    self.file, built.line, "'<<' merges mappings only (an alias to a mapping)"
                )
            entries.extend(built.entries)
        return entries
