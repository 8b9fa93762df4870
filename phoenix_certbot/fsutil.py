"""Atomic file writes: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import grp
import os
import pwd
import tempfile
from collections.abc import Sequence
from pathlib import Path


def resolve_owner(owner: str | None) -> tuple[int, int] | None:
    """ "user" or "user:group" (names or numbers) to (uid, gid); None keeps the default."""
    if not owner:
        return None
    user, _, group = owner.partition(":")
    uid = int(user) if user.isdigit() else pwd.getpwnam(user).pw_uid
    if group:
        gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    else:
        gid = pwd.getpwuid(uid).pw_gid
    return uid, gid


def write_atomic(path: Path, data: bytes, mode: int = 0o644, owner: str | None = None) -> None:
    """Write `data` to a temporary file beside `path`, apply mode and owner, then rename.

    The mode is set on the still-empty file, so key material is never readable by others,
    not even for a moment.
    """
    ids = resolve_owner(owner)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        if ids is not None:
            os.fchown(fd, *ids)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _sync_directory(directory: Path) -> None:
    """Make a rename or an unlink in `directory` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durable_all(files: Sequence[tuple[Path, bytes]], mode: int = 0o600) -> None:
    """`write_atomic` for each file, then one fsync of each folder for all of them (not
    one per file): every file and its name are on disk when this returns."""
    for path, data in files:
        write_atomic(path, data, mode)
    for directory in sorted({path.parent for path, _ in files}):
        _sync_directory(directory)


def remove_durable_all(paths: Sequence[Path]) -> None:
    """Unlink each file (if there), then fsync each folder once."""
    for path in paths:
        path.unlink(missing_ok=True)
    for directory in sorted({path.parent for path in paths}):
        _sync_directory(directory)
