"""`phoenix-cert install-systemd`: write the packaged systemd units with real paths.

The canonical units are package data (`phoenix_certbot/data/systemd/`) with placeholders
for the executables; rendering them is pure, writing them is one atomic write per unit.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import click

from phoenix_certbot.errors import UsageError

PLACEHOLDERS = {"phoenix_cert": "@PHOENIX_CERT@", "certbot": "@CERTBOT@"}
DEFAULT_UNIT_DIR = Path("/etc/systemd/system")
TIMERS = ("phoenix-cert-renew.timer", "phoenix-cert-rotate.timer")
RENEWAL_HOOKS = Path("/etc/letsencrypt/renewal-hooks")
# Characters that systemd would read as something else in ExecStart= or Environment=:
# whitespace splits words, quotes and backslashes quote, `%` starts a specifier and `$`
# an environment variable.
_SPECIAL = frozenset(" \t\n\"'\\%$;")
# What the units hide from the programs they run: ProtectHome=yes and PrivateTmp=yes.
HIDDEN = {
    Path("/home"): "ProtectHome=",
    Path("/root"): "ProtectHome=",
    Path("/run/user"): "ProtectHome=",
    Path("/tmp"): "PrivateTmp=",  # noqa: S108 - a path the units hide, not a temp file
    Path("/var/tmp"): "PrivateTmp=",  # noqa: S108
}


def unit_templates() -> dict[str, str]:
    """File name -> text of every packaged unit, placeholders still in."""
    folder = resources.files("phoenix_certbot").joinpath("data/systemd")
    return {
        item.name: item.read_text(encoding="utf-8")
        for item in sorted(folder.iterdir(), key=lambda i: i.name)
        if item.name.endswith((".service", ".timer"))
    }


def _checked(what: str, path: Path) -> str:
    text = str(path)
    if not path.is_absolute():
        raise UsageError(f"--{what.replace('_', '-')}: {text}: must be an absolute path")
    bad = sorted(set(text) & _SPECIAL)
    if bad:
        raise UsageError(
            f"--{what.replace('_', '-')}: {text}: systemd would misread {' '.join(map(repr, bad))}"
            " in a unit file; use a path (or a symlink) without them"
        )
    return text


def render_units(templates: Mapping[str, str], phoenix_cert: Path, certbot: Path) -> dict[str, str]:
    """Replace the placeholders with the executables' paths (pure)."""
    values = {
        PLACEHOLDERS["phoenix_cert"]: _checked("phoenix_cert", phoenix_cert),
        PLACEHOLDERS["certbot"]: _checked("certbot", certbot),
    }
    rendered = {}
    for name, template in templates.items():
        text = template
        for placeholder, value in values.items():
            text = text.replace(placeholder, value)
        rendered[name] = text
    return rendered


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def default_phoenix_cert() -> Path | None:
    """The phoenix-cert being run (as invoked: a symlink such as /usr/local/bin/phoenix-cert
    is kept, so that the units survive a reinstall of the venv behind it), else on PATH."""
    invoked = Path(sys.argv[0])
    if invoked.name == "phoenix-cert" and _executable(invoked):
        return invoked.absolute()
    found = shutil.which("phoenix-cert")
    if found:
        return Path(found).absolute()
    beside = Path(sys.executable).parent / "phoenix-cert"
    return beside if _executable(beside) else None


def default_certbot(phoenix_cert: Path) -> Path | None:
    """The certbot installed next to phoenix-cert (the same venv), else the one on PATH."""
    beside = phoenix_cert.parent / "certbot"
    if _executable(beside):
        return beside
    found = shutil.which("certbot")
    return Path(found).absolute() if found else None


def _interpreter(script: Path) -> Path | None:
    """The program named on a script's `#!` line (a console script's Python), if any."""
    try:
        with script.open("rb") as handle:
            first = handle.readline(4096)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode(errors="replace").split()
    return Path(words[0]) if words else None


def hidden_by_units(executable: Path) -> tuple[Path, str] | None:
    """(path, directive) when the executable, or the interpreter it starts, really lies
    where the units hide it: systemd would then fail to start it (status=203/EXEC)."""
    candidates = [executable]
    interpreter = _interpreter(executable)
    if interpreter is not None:
        candidates.append(interpreter)
    for candidate in candidates:
        real = candidate.resolve()
        for folder, directive in HIDDEN.items():
            if real.is_relative_to(folder):
                return real, directive
    return None


def _hooks_note() -> str | None:
    missing = [
        str(RENEWAL_HOOKS / kind / "phoenix-cert")
        for kind in ("deploy", "post")
        if not _executable(RENEWAL_HOOKS / kind / "phoenix-cert")
    ]
    if not missing:
        return None
    return (
        "note: phoenix-cert-renew.service relies on certbot's renewal hooks; missing: "
        f"{', '.join(missing)}: copy phoenix-certbot's hooks/deploy/phoenix-cert and "
        "hooks/post/phoenix-cert there (or use the phoenix-swarm installer)"
    )


@click.command("install-systemd")
@click.option("--dry-run", is_flag=True, help="Print the units and write nothing.")
@click.option(
    "--unit-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_UNIT_DIR,
    show_default=True,
    help="Where to write the units.",
)
@click.option(
    "--phoenix-cert",
    "phoenix_cert",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="phoenix-cert executable the units run (default: this one).",
)
@click.option(
    "--certbot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="certbot executable (default: the one next to phoenix-cert, else on PATH).",
)
def install_systemd_command(
    dry_run: bool, unit_dir: Path, phoenix_cert: Path | None, certbot: Path | None
) -> None:
    """Write phoenix-cert-renew.service/.timer (certbot renew with the renewal hooks, twice
    a day) and phoenix-cert-rotate.service/.timer (rotate --all, hourly, for certificates
    from an internal CA), hardened, with the executables' absolute paths.

    \b
    Then: systemctl daemon-reload
          systemctl enable --now phoenix-cert-renew.timer phoenix-cert-rotate.timer
    """
    from phoenix_certbot.fsutil import write_atomic

    phoenix_cert = phoenix_cert or default_phoenix_cert()
    if phoenix_cert is None:
        raise UsageError("cannot tell where phoenix-cert is installed; pass --phoenix-cert PATH")
    certbot = certbot or default_certbot(phoenix_cert)
    if certbot is None:
        raise UsageError("no certbot next to phoenix-cert nor on PATH; pass --certbot PATH")
    units = render_units(unit_templates(), phoenix_cert, certbot)
    for what, path in (("phoenix-cert", phoenix_cert), ("certbot", certbot)):
        if not _executable(path):
            click.echo(f"warning: {what} {path} is not an executable file (yet)", err=True)
            continue
        hidden = hidden_by_units(path)
        if hidden:
            click.echo(
                f"warning: {what} {path} runs {hidden[0]}, which the units hide ({hidden[1]}):"
                " they would fail with status=203/EXEC; install it outside /home, /root and"
                " /tmp, e.g. python3 -m venv /opt/phoenix-certbot",
                err=True,
            )
    if dry_run:
        for name, text in units.items():
            click.echo(f"# {unit_dir / name}\n{text}")
        return
    for name, text in units.items():
        write_atomic(unit_dir / name, text.encode(), 0o644)
        click.echo(str(unit_dir / name))
    note = _hooks_note()
    if note:
        click.echo(note, err=True)
    click.echo(
        "next: systemctl daemon-reload && systemctl enable --now " + " ".join(TIMERS), err=True
    )
