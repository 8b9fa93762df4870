from __future__ import annotations

from pathlib import Path

import pytest

from phoenix_certbot.compose.envfile import read_env_file, resolve_environment
from phoenix_certbot.errors import ComposeError


def test_read_env_file_syntax(tmp_path: Path) -> None:
    env = tmp_path / "stack.env"
    env.write_text(
        "# comment\n"
        "\n"
        "PLAIN=value\n"
        "export EXPORTED=yes\n"
        "SPACED = padded  \n"
        "COMMENTED=abc # trailing comment\n"
        "HASH=a#b\n"
        'DOUBLE="two words # kept\\n"\n'
        "SINGLE='$raw \\n'\n"
        "EMPTY=\n"
        "BARE\n"
        "EQUALS=a=b\n",
        encoding="utf-8",
    )
    assert read_env_file(env) == {
        "PLAIN": "value",
        "EXPORTED": "yes",
        "SPACED": "padded",
        "COMMENTED": "abc",
        "HASH": "a#b",
        "DOUBLE": "two words # kept\n",
        "SINGLE": "$raw \\n",
        "EMPTY": "",
        "EQUALS": "a=b",
    }


def test_bad_line_names_file_and_line(tmp_path: Path) -> None:
    env = tmp_path / "bad.env"
    env.write_text("OK=1\n2BAD=x\n", encoding="utf-8")
    with pytest.raises(ComposeError) as raised:
        read_env_file(env)
    assert (raised.value.file, raised.value.line) == (str(env), 2)


def test_unterminated_quote(tmp_path: Path) -> None:
    env = tmp_path / "bad.env"
    env.write_text('A="open\n', encoding="utf-8")
    with pytest.raises(ComposeError, match="unterminated"):
        read_env_file(env)


def test_missing_env_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ComposeError) as raised:
        resolve_environment(tmp_path / "stack.yml", [tmp_path / "nope.env"], {})
    assert raised.value.file == str(tmp_path / "nope.env")


def test_missing_dotenv_is_fine(tmp_path: Path) -> None:
    assert resolve_environment(tmp_path / "stack.yml", [], {"A": "1"}) == {"A": "1"}


def test_precedence_process_over_env_files_over_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("A=dotenv\nB=dotenv\nC=dotenv\nD=dotenv\n", encoding="utf-8")
    first = tmp_path / "first.env"
    first.write_text("B=first\nC=first\nD=first\n", encoding="utf-8")
    second = tmp_path / "second.env"
    second.write_text("C=second\nD=second\n", encoding="utf-8")
    env = resolve_environment(tmp_path / "stack.yml", [first, second], {"D": "process"})
    assert {k: env[k] for k in "ABCD"} == {
        "A": "dotenv",
        "B": "first",
        "C": "second",
        "D": "process",
    }


def test_dotenv_is_read_next_to_the_first_compose_file(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / ".env").write_text("WHERE=a\n", encoding="utf-8")
    (tmp_path / "b" / ".env").write_text("WHERE=b\n", encoding="utf-8")
    assert resolve_environment(tmp_path / "a" / "stack.yml", [], {}) == {"WHERE": "a"}
