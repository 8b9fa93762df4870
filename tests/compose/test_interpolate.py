from __future__ import annotations

import pytest

from phoenix_certbot.compose.interpolate import InterpolationError, interpolate

ENV = {"SET": "value", "EMPTY": ""}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("${SET}", "value"),
        ("$SET", "value"),
        ("a-$SET-b", "a-value-b"),
        ("$SET.pem", "value.pem"),
        ("${SET:-default}", "value"),
        ("${EMPTY:-default}", "default"),
        ("${UNSET:-default}", "default"),
        ("${SET-default}", "value"),
        ("${EMPTY-default}", ""),
        ("${UNSET-default}", "default"),
        ("${UNSET:-}", ""),
        ("${SET:?needed}", "value"),
        ("${EMPTY?needed}", ""),
        ("${SET?needed}", "value"),
        ("$$", "$"),
        ("$$SET", "$SET"),
        ("$${SET}", "${SET}"),
        ("$$$SET", "$value"),
        ("${UNSET:-${SET}}", "value"),
        ("${UNSET:-a:b/c}", "a:b/c"),
        ("${SET:-${UNSET:?never evaluated}}", "value"),
        ("x${SET}y${SET}z", "xvalueyvaluez"),
    ],
)
def test_forms(text: str, expected: str) -> None:
    result = interpolate(text, ENV)
    assert result.text == expected
    assert result.unset == ()


@pytest.mark.parametrize(
    ("text", "expected", "unset"),
    [
        ("${UNSET}", "", ("UNSET",)),
        ("$UNSET/x", "/x", ("UNSET",)),
        ("${A}${B}${A}", "", ("A", "B")),
        ("${UNSET:-${INNER}}", "", ("INNER",)),
    ],
)
def test_unset_without_default_is_empty_and_reported(
    text: str, expected: str, unset: tuple[str, ...]
) -> None:
    result = interpolate(text, ENV)
    assert (result.text, result.unset) == (expected, unset)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "${UNSET:?run phoenix-cert stack-env}",
            "required variable UNSET is missing a value: run phoenix-cert stack-env",
        ),
        (
            "${EMPTY:?must not be empty}",
            "required variable EMPTY is missing a value: must not be empty",
        ),
        ("${UNSET?}", "required variable UNSET is missing a value"),
        ("${UNSET:?${SET} needed}", "required variable UNSET is missing a value: value needed"),
    ],
)
def test_required(text: str, message: str) -> None:
    with pytest.raises(InterpolationError) as raised:
        interpolate(text, ENV)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    "text", ["${SET", "$", "cost: 5$", "$1", "${}", "${9X}", "${SET:x}", "${SET/x}"]
)
def test_invalid(text: str) -> None:
    with pytest.raises(InterpolationError, match="invalid interpolation format"):
        interpolate(text, ENV)
