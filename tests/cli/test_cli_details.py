"""CLI details a new user trips over: -v/-q placement, logging under systemd, the
manifest lookup, one --timeout name, one way to load stack-env."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from phoenix_certbot.cli.main import _COMMANDS, LazyGroup, cli
from phoenix_certbot.cli.options import LOG, configure_logging
from phoenix_certbot.errors import ManifestError
from phoenix_certbot.manifest import load as manifest_load
from tests.cli.test_notify_cmd import manifest as notify_manifest
from tests.conftest import REPO_ROOT
from tests.support.receiver import json_receiver

PHOENIX_CERT = Path(sys.executable).parent / "phoenix-cert"


def every_command() -> list[list[str]]:
    group = LazyGroup()
    ctx = click.Context(cli)
    found = []
    for name in _COMMANDS:
        command = group.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            found += [[name, sub] for sub in command.commands]
        else:
            found.append([name])
    return found


@pytest.mark.parametrize("path", every_command(), ids=" ".join)
def test_every_command_takes_v_and_q_after_its_name(path: list[str]) -> None:
    result = CliRunner().invoke(cli, [*path, "-v", "-q", "--help"])
    assert result.exit_code == 0, result.output
    assert "--verbose" in result.output and "--quiet" in result.output


def test_v_and_q_before_and_after_the_subcommand_add_up() -> None:
    runner = CliRunner()
    missing = ["--manifest", "/nonexistent/m.json"]
    for args, level in (
        (["status", *missing, "-v"], logging.INFO),
        (["-v", "status", *missing, "-v"], logging.DEBUG),
        (["status", *missing, "-q"], logging.ERROR),
        (["-v", "manifest", "check", *missing, "-q"], logging.WARNING),
    ):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, result.output  # the missing manifest, not the option
        assert "file not found" in result.output
        assert LOG.level == level, args


def test_under_the_journal_progress_is_info_with_priority_prefixes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (tmp_path / "stderr").open("w") as stream:
        st = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        configure_logging(stream=stream)
        assert LOG.level == logging.INFO
        logging.getLogger("phoenix_certbot.x").info("updating %s", "svc")
        logging.getLogger("phoenix_certbot.x").warning("slow")
    assert (tmp_path / "stderr").read_text().splitlines() == [
        "<6>phoenix-cert: INFO: updating svc",
        "<4>phoenix-cert: WARNING: slow",
    ]
    # Another stream (a pipe to certbot, a terminal): warnings only, no prefixes.
    other = io.StringIO()
    configure_logging(stream=other)
    logging.getLogger("phoenix_certbot.x").info("hidden")
    logging.getLogger("phoenix_certbot.x").warning("shown")
    assert other.getvalue() == "phoenix-cert: WARNING: shown\n"


def test_a_real_process_logs_info_to_the_journal_stream_only(tmp_path: Path) -> None:
    with json_receiver() as receiver:
        path = notify_manifest(tmp_path, receiver.url)
        outputs = {}
        for journal in (True, False):
            err = tmp_path / f"stderr-{journal}"
            with err.open("w") as stream:
                st = os.fstat(stream.fileno())
                env = dict(os.environ, PYTHONWARNINGS="ignore")
                env.pop("JOURNAL_STREAM", None)
                if journal:
                    env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
                subprocess.run(
                    [str(PHOENIX_CERT), "notify-test", "--manifest", str(path)],
                    stdout=subprocess.DEVNULL,
                    stderr=stream,
                    env=env,
                    timeout=60,
                    check=True,
                )
            outputs[journal] = err.read_text()
    assert "<6>phoenix-cert: INFO: test notification sent to 1 of 1 URL(s)" in outputs[True]
    assert outputs[False] == ""


def test_two_manifests_in_the_lookup_order_are_refused_naming_both(tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text("{}")
    second.write_text("{}")
    with pytest.raises(ManifestError) as exc:
        manifest_load.locate(None, env={}, locations=(first, second))
    assert str(exc.value) == (
        f"manifests at both {first} and {second}: remove one, or choose with --manifest "
        "or $PHOENIX_CERT_MANIFEST"
    )
    assert exc.value.exit_code == 2
    assert manifest_load.locate(None, env={}, locations=(tmp_path / "x", second)) == second
    with pytest.raises(ManifestError) as none:
        manifest_load.locate(None, env={}, locations=(tmp_path / "x",))
    assert str(none.value).startswith("no manifest given (--manifest or $PHOENIX_CERT_MANIFEST)")


def test_the_url_check_timeout_is_called_timeout_everywhere_the_old_name_still_works() -> None:
    runner = CliRunner()
    for command in ("verify", "rotate", "rollback"):
        shown = runner.invoke(cli, [command, "--help"]).output
        assert "--timeout" in shown and "--verify-timeout" not in shown, command
    result = runner.invoke(
        cli, ["rollback", "--manifest", "/nonexistent/m.json", "web", "--verify-timeout", "5"]
    )
    assert result.exit_code == 2 and "file not found" in result.output


def test_readme_docs_and_help_load_stack_env_the_same_one_way() -> None:
    way = "env $(phoenix-cert stack-env) docker stack deploy"
    help_text = CliRunner().invoke(cli, ["stack-env", "--help"]).output
    assert way in help_text
    for text in (
        help_text,
        (REPO_ROOT / "README.md").read_text(),
        (REPO_ROOT / "docs" / "operations.md").read_text(),
        (REPO_ROOT / "docs" / "troubleshooting.md").read_text(),
    ):
        uses = re.findall(r"[^\n`]*phoenix-cert stack-env\)[^\n`]*", text)
        assert uses and all(way in use for use in uses), uses
