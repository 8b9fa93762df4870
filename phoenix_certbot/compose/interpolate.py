"""Variable interpolation in compose values, the way `docker stack deploy` does it.

Forms: `$$` (a literal `$`), `$VAR`, `${VAR}`, `${VAR:-default}` (unset or empty),
`${VAR-default}` (unset), `${VAR:?message}` (error if unset or empty), `${VAR?message}`
(error if unset). An unset `$VAR`/`${VAR}` becomes the empty string; Docker prints a
warning then, so we report the name to the caller. Any other `$` is an error, as in Docker.

Defaults and messages may themselves hold `${...}` (the Compose specification allows
nesting; older docker/cli releases take the default literally up to the first `}`). They are
interpolated only when used, so `${A:-${B:?x}}` fails only when A is unset.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", ":?", "-", "?")


class InterpolationError(ValueError):
    """The value cannot be interpolated; the message is one line, without file or line."""


@dataclass(frozen=True)
class Interpolated:
    text: str
    unset: tuple[str, ...] = ()  # variables used without a default that were not set


def interpolate(text: str, env: Mapping[str, str]) -> Interpolated:
    out: list[str] = []
    unset: list[str] = []
    i = 0
    while i < len(text):
        dollar = text.find("$", i)
        if dollar < 0:
            out.append(text[i:])
            break
        out.append(text[i:dollar])
        i = _substitute(text, dollar, env, out, unset)
    return Interpolated("".join(out), tuple(dict.fromkeys(unset)))


def _substitute(
    text: str, dollar: int, env: Mapping[str, str], out: list[str], unset: list[str]
) -> int:
    """Handle the `$` at `dollar`; append its value to `out`; return where to go on."""
    after = text[dollar + 1 : dollar + 2]
    if after == "$":
        out.append("$")
        return dollar + 2
    if after == "{":
        end = _closing_brace(text, dollar + 2)
        if end < 0:
            raise InterpolationError(f"invalid interpolation format in {text!r}: missing '}}'")
        out.append(_braced(text[dollar + 2 : end], text, env, unset))
        return end + 1
    name = _NAME.match(text, dollar + 1)
    if name is None:
        raise InterpolationError(
            f"invalid interpolation format in {text!r}: write '$$' for a literal '$'"
        )
    if name.group() in env:
        out.append(env[name.group()])
    else:
        unset.append(name.group())
    return name.end()


def _closing_brace(text: str, start: int) -> int:
    """Index of the `}` closing a `${` whose body starts at `start`, or -1."""
    depth = 0
    i = start
    while i < len(text):
        if text.startswith("$$", i):
            i += 2
            continue
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    return -1


def _braced(body: str, whole: str, env: Mapping[str, str], unset: list[str]) -> str:
    name = _NAME.match(body)
    if name is None:
        raise InterpolationError(f"invalid interpolation format in {whole!r}: '${{{body}}}'")
    var = name.group()
    rest = body[name.end() :]
    if not rest:
        if var not in env:
            unset.append(var)
        return env.get(var, "")
    operator = next((op for op in _OPERATORS if rest.startswith(op)), None)
    if operator is None:
        raise InterpolationError(f"invalid interpolation format in {whole!r}: '${{{body}}}'")
    argument = rest[len(operator) :]
    value = env.get(var)
    # ":" makes an empty value count as missing, as in the shell.
    missing = value is None or (operator.startswith(":") and value == "")
    if not missing:
        return value or ""
    nested = interpolate(argument, env)
    if operator.endswith("-"):
        unset.extend(nested.unset)
        return nested.text
    message = f"required variable {var} is missing a value"
    raise InterpolationError(f"{message}: {nested.text}" if nested.text else message)
