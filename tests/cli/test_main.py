from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from phoenix_certbot import __version__
from phoenix_certbot.cli.main import _COMMANDS, cli


def test_help_lists_every_command_and_the_exit_codes() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in _COMMANDS:
        assert name in result.output
    assert "3 Docker unreachable" in result.output


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_help_does_not_import_docker_certbot_or_the_notification_and_metrics_libraries() -> None:
    code = (
        "import sys\n"
        "from phoenix_certbot.cli.main import cli\n"
        "try:\n"
        "    cli(['--help'], prog_name='phoenix-cert')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = {'docker', 'certbot', 'acme', 'requests', 'apprise', 'prometheus_client'}\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "HEAVY []" in done.stdout


def test_every_registered_command_imports() -> None:
    runner = CliRunner()
    for name in _COMMANDS:
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)


def test_unknown_command_is_a_usage_error() -> None:
    assert CliRunner().invoke(cli, ["nope"]).exit_code == 2
