"""Names of deployed Docker objects and of stack environment variables (pure)."""

from __future__ import annotations

import hashlib
import re

HASH_CHARS = 12
MAX_NAME = 64  # Docker's limit for secret and config names
_NOT_ENV = re.compile(r"[^A-Z0-9]")


def content_sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def versioned_name(base: str, sha256_hex: str) -> str:
    """`<base>_<first 12 hex of the content's SHA-256>`: a new name for every new content,
    because Docker secrets and configs cannot be changed once created."""
    name = f"{base}_{sha256_hex[:HASH_CHARS]}"
    if len(name) > MAX_NAME:
        raise ValueError(f"versioned name {name!r} is longer than {MAX_NAME} characters")
    return name


def env_var(base: str) -> str:
    """Stack-file variable for a base name: `portainer.sslcert` -> `PORTAINER_SSLCERT`."""
    return _NOT_ENV.sub("_", base.upper())
