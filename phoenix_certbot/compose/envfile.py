"""The variables a stack file is interpolated with: process environment and env files.

Precedence, highest first (our choice, documented for `phoenix-cert verify`):
  1. the process environment;
  2. `--env-file` files, a later file overriding an earlier one;
  3. `.env` in the directory of the first compose file.

Why: `docker stack deploy` itself reads only the process environment (it has no
`--env-file` and ignores `.env`), while `docker compose` reads `.env` from the project
directory (the first file's directory), lets `--env-file` replace it, and lets the shell
environment win over both. Operators run either tool from scripts that export the values
(`phoenix-cert stack-env`) or keep them in env files, so the lint layers all three instead
of replacing `.env`: a value supplied any of these ways counts as set, and the process
environment wins, as it does in both tools.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from phoenix_certbot.errors import ComposeError

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def read_env_file(path: Path) -> dict[str, str]:
    """Parse `KEY=VALUE` lines (`export KEY=...`, quotes and `# comments` allowed)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ComposeError(str(path), None, f"cannot read env file: {exc}") from exc
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        stripped = stripped.removeprefix("export ").lstrip()
        key, sep, value = stripped.partition("=")
        key = key.strip()
        if not _KEY.fullmatch(key):
            raise ComposeError(str(path), number, f"not a KEY=VALUE line: {line!r}")
        if not sep:
            # A bare KEY means "take it from the environment", which wins anyway.
            continue
        values[key] = _value(value.strip(), str(path), number)
    return values


def _value(value: str, file: str, line: int) -> str:
    if value[:1] in {'"', "'"}:
        quote = value[0]
        end = _closing_quote(value, quote)
        if end < 0:
            raise ComposeError(file, line, f"unterminated {quote} quote")
        inner = value[1:end]
        return _unescape(inner) if quote == '"' else inner
    # Unquoted: a ` #` starts a comment, as in docker compose's dotenv parser.
    comment = value.find(" #")
    return (value if comment < 0 else value[:comment]).rstrip()


def _closing_quote(value: str, quote: str) -> int:
    i = 1
    while i < len(value):
        if value[i] == "\\" and quote == '"':
            i += 2
            continue
        if value[i] == quote:
            return i
        i += 1
    return -1


def _unescape(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in _ESCAPES:
            out.append(_ESCAPES[text[i + 1]])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def resolve_environment(
    compose_file: Path, env_files: Sequence[Path], environ: Mapping[str, str]
) -> dict[str, str]:
    """The interpolation environment for a stack whose first file is `compose_file`."""
    env: dict[str, str] = {}
    dotenv = compose_file.parent / ".env"
    if dotenv.is_file():
        env.update(read_env_file(dotenv))
    for env_file in env_files:
        env.update(read_env_file(env_file))
    env.update(environ)
    return env
