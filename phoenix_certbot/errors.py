"""One error hierarchy for the whole tool; each class carries the CLI exit code.

Exit codes (documented in README.md):
  0 success
  1 operation failed, nothing left broken (e.g. rollout rolled back)
  2 bad input: manifest, certificate, compose file or arguments; nothing changed
  3 Docker unreachable or this node is not a swarm manager; nothing changed
  4 partial failure that needs an operator
"""

from __future__ import annotations

from typing import ClassVar

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_DOCKER = 3
EXIT_PARTIAL = 4


class PhoenixError(Exception):
    """Base of every error this tool raises on purpose. `str()` is one line."""

    exit_code: ClassVar[int] = EXIT_FAILED


class OperationFailed(PhoenixError):
    """The operation did not succeed, but every service is left serving a valid certificate."""


class LockTimeout(OperationFailed):
    """Another run holds the state lock longer than we are willing to wait."""


class WriteConflict(OperationFailed):
    """The swarm refused a write because another writer came first: the name is taken, or
    the object changed (its version index moved) or went away since we read it."""


class BadInput(PhoenixError):
    """Input is wrong; nothing was changed."""

    exit_code: ClassVar[int] = EXIT_BAD_INPUT


class NothingValid(BadInput):
    """A run that skips invalid certificates (`--all`, the post hook) found none valid.
    `skipped`: certificate -> the one-line reason, for the failure notification."""

    def __init__(self, first: BadInput, skipped: dict[str, str]) -> None:
        super().__init__(str(first))
        self.skipped = skipped


class UsageError(BadInput):
    """Command-line arguments that do not make sense together."""


class ManifestError(BadInput):
    """The manifest cannot be used. Names the file and the JSON path of the field."""

    def __init__(self, file: str, path: str, message: str) -> None:
        self.file = file
        self.path = path
        self.message = message
        super().__init__(": ".join(part for part in (file, path, message) if part))


class ComposeError(BadInput):
    """A compose/stack file cannot be read (YAML syntax, missing variable, ...)."""

    def __init__(self, file: str, line: int | None, message: str) -> None:
        self.file = file
        self.line = line
        self.message = message
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {message}")


class CertificateError(BadInput):
    """A certificate check failed. Subclasses name the check; `file` is the offending file."""

    check: ClassVar[str] = "certificate"

    def __init__(self, file: str, message: str) -> None:
        self.file = file
        self.message = message
        super().__init__(f"{file}: {message}")


class CertFileMissing(CertificateError):
    check = "missing"


class CertParseError(CertificateError):
    check = "unparsable"


class PayloadEmpty(CertificateError):
    check = "empty"


class PayloadTooLarge(CertificateError):
    check = "oversize"


class KeyMismatch(CertificateError):
    check = "key-mismatch"


class ChainBroken(CertificateError):
    check = "chain"


class CertExpired(CertificateError):
    check = "expired"


class CertNotYetValid(CertificateError):
    check = "not-yet-valid"


class SanNotCovered(CertificateError):
    check = "san"


class DockerUnavailable(PhoenixError):
    """Docker cannot be reached, or this node cannot manage the swarm; nothing changed."""

    exit_code: ClassVar[int] = EXIT_DOCKER


class NotSwarmManager(DockerUnavailable):
    pass


class PartialFailure(PhoenixError):
    """Some services could not be returned to a verified state; an operator must look."""

    exit_code: ClassVar[int] = EXIT_PARTIAL
