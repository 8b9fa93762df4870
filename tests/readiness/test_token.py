"""The Portainer token comes from its file only, and is refused from an open file as root."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoenix_certbot.errors import EXIT_BAD_INPUT
from phoenix_certbot.readiness.token import TokenFileError, read_token

TOKEN = "ptr_" + "Ab1" * 14


def token_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "portainer.token"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_one_line_is_the_token(tmp_path: Path) -> None:
    token = read_token(token_file(tmp_path, f"\n{TOKEN}\n"), euid=0)
    assert token.value == TOKEN
    assert TOKEN not in repr(token) and TOKEN not in str(token)
    assert token.redact(f"x {TOKEN} y") == "x <token> y"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_a_file_others_may_read_is_refused_for_root(tmp_path: Path, mode: int) -> None:
    path = token_file(tmp_path, TOKEN, mode)
    with pytest.raises(TokenFileError) as info:
        read_token(path, euid=0)
    assert info.value.exit_code == EXIT_BAD_INPUT
    assert str(info.value) == (
        f"{path}: readable by group or others (mode {mode:04o}) while running as root; "
        f"run: chmod 600 {path}"
    )
    assert read_token(path, euid=1000).value == TOKEN  # the user's own business


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "the token file is empty"),
        (f"{TOKEN}\n{TOKEN}\n", "one API access token on one line"),
        ("ptr with spaces", "one API access token on one line"),
        ("short", "one API access token on one line"),
    ],
)
def test_anything_but_one_token_is_refused_without_quoting_it(
    tmp_path: Path, text: str, words: str
) -> None:
    with pytest.raises(TokenFileError, match=words) as info:
        read_token(token_file(tmp_path, text), euid=0)
    assert TOKEN not in str(info.value)


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError, match="token file not found"):
        read_token(tmp_path / "nope", euid=0)
