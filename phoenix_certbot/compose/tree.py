"""A small typed YAML tree: every value knows the file and 1-based line it came from.

The loader turns PyYAML's node graph into these frozen types so nothing past
`phoenix_certbot.compose.load` sees a PyYAML object. Scalars stay text: YAML 1.1 typing
would turn an unquoted `22:22` port into the integer 1342, and Docker's Go YAML does not.
Callers ask for the type they need (`as_int`, `as_bool`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeAlias

_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_TRUE = frozenset({"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"})
_FALSE = frozenset({"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"})
_INT = re.compile(r"[-+]?(0|[1-9][0-9_]*)")
# `$$` is an escaped dollar, not a variable; anything else after `$` is an interpolation.
_VARIABLE = re.compile(r"(?<!\$)(\$\$)*\$[{A-Za-z_]")


@dataclass(frozen=True)
class Scalar:
    text: str  # after interpolation
    file: str
    line: int
    raw: str | None = None  # as written, when interpolation changed or may change it
    plain: bool = True  # unquoted: YAML's implicit typing (null, bool, int) applies

    @property
    def written(self) -> str:
        return self.text if self.raw is None else self.raw

    @property
    def has_variables(self) -> bool:
        """True when the value as written uses `${VAR}`/`$VAR` interpolation."""
        return bool(_VARIABLE.search(self.written))

    @property
    def is_null(self) -> bool:
        # Judged on the text as written: Docker types the YAML before interpolating, so
        # `name: ${UNSET}` is an empty string, not null.
        return self.plain and self.written in _NULLS

    def as_int(self) -> int | None:
        """The value as an integer, quoted or not (`docker stack deploy` casts `"2"`)."""
        text = self.text.strip()
        if not _INT.fullmatch(text):
            return None
        return int(text.replace("_", ""))

    def as_bool(self) -> bool | None:
        if self.text in _TRUE:
            return True
        if self.text in _FALSE:
            return False
        return None


@dataclass(frozen=True)
class Entry:
    key: Scalar
    value: Node


@dataclass(frozen=True)
class MapNode:
    entries: tuple[Entry, ...]
    file: str
    line: int

    def entry(self, key: str) -> Entry | None:
        for item in self.entries:
            if item.key.text == key:
                return item
        return None

    def get(self, key: str) -> Node | None:
        item = self.entry(key)
        return None if item is None else item.value

    def keys(self) -> tuple[str, ...]:
        return tuple(item.key.text for item in self.entries)

    def mapping(self, key: str) -> MapNode | None:
        value = self.get(key)
        return value if isinstance(value, MapNode) else None

    def sequence(self, key: str) -> SeqNode | None:
        value = self.get(key)
        return value if isinstance(value, SeqNode) else None

    def scalar(self, key: str) -> Scalar | None:
        value = self.get(key)
        if isinstance(value, Scalar) and not value.is_null:
            return value
        return None

    def text(self, key: str) -> str | None:
        value = self.scalar(key)
        return None if value is None else value.text


@dataclass(frozen=True)
class SeqNode:
    items: tuple[Node, ...]
    file: str
    line: int


Node: TypeAlias = Scalar | MapNode | SeqNode
