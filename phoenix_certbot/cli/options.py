"""Options shared by several subcommands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def manifest_option(func: F) -> F:
    decorator = click.option(
        "--manifest",
        "manifest_path",
        type=click.Path(dir_okay=False),
        default=None,
        help="Manifest file (default: $PHOENIX_CERT_MANIFEST, then "
        "/usr/local/phoenix_hypervisor/etc/certificate-manifest.json, then "
        "/etc/phoenix-certbot/certificate-manifest.json).",
    )
    return decorator(func)


def json_option(func: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON document on stdout."
    )(func)
