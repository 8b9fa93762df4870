"""A finding is one problem (or note) reported by `phoenix-cert verify` or the compose lint."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Finding:
    id: str  # stable check id, e.g. "compose.ports-under-deploy"
    severity: Severity
    message: str  # one line
    fix: str  # one line
    file: str | None = None
    line: int | None = None
    service: str | None = None
    certificate: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.value
        return data

    def to_text(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        return f"{self.severity.value}: {where}[{self.id}] {self.message} (fix: {self.fix})"
